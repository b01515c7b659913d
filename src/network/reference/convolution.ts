import { stridesOf } from "../../ir/tensor.js";
import type { ConvolutionLayer, DeconvolutionLayer } from "../layers/convolution.js";
import { read, write } from "./data.js";
import type { LayerRunner } from "./types.js";

/** Iterates every index of `shape` (row-major), calling fn with the index array (reused between calls). */
function forEachIndex(shape: readonly number[], fn: (idx: number[]) => void): void {
  const idx = new Array<number>(shape.length).fill(0);
  if (shape.some((d) => d === 0)) return;
  for (;;) {
    fn(idx);
    let a = shape.length - 1;
    for (; a >= 0; a--) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
    if (a < 0) return;
  }
}

export const runConvolution: LayerRunner<ConvolutionLayer> = (layer, [xt, wt, bt], out) => {
  const x = read(xt);
  const w = read(wt);
  const b = bt ? read(bt) : null;
  const [n, cout] = out.shape;
  const cin = xt.shape[1];
  const g = layer.groups;
  const cinG = cin / g;
  const coutG = cout / g;
  const sp = out.shape.slice(2);
  const ks = wt.shape.slice(2);
  const inSp = xt.shape.slice(2);
  const xs = stridesOf(xt.shape);
  const ws = stridesOf(wt.shape);
  const spatial = sp.reduce((a, d) => a * d, 1);
  const res = new Float64Array(n * cout * spatial);
  let o = 0;
  for (let bi = 0; bi < n; bi++) {
    for (let co = 0; co < cout; co++) {
      const grp = Math.floor(co / coutG);
      forEachIndex(sp, (oi) => {
        let acc = b ? b[co] : 0;
        for (let ci = 0; ci < cinG; ci++) {
          const xc = bi * xs[0] + (grp * cinG + ci) * xs[1];
          const wc = co * ws[0] + ci * ws[1];
          forEachIndex(ks, (ki) => {
            let xo = xc;
            let wo = wc;
            for (let d = 0; d < ki.length; d++) {
              const pos = oi[d] * layer.stride[d] - layer.padding[d] + ki[d] * layer.dilation[d];
              if (pos < 0 || pos >= inSp[d]) return;
              xo += pos * xs[d + 2];
              wo += ki[d] * ws[d + 2];
            }
            acc += x[xo] * w[wo];
          });
        }
        res[o++] = acc;
      });
    }
  }
  return write(out, res);
};

/** Scatter form: each input element adds its kernel-weighted contribution to the output window. */
export const runDeconvolution: LayerRunner<DeconvolutionLayer> = (layer, [xt, wt, bt], out) => {
  const x = read(xt);
  const w = read(wt);
  const [n, cout] = out.shape;
  const cin = xt.shape[1];
  const g = layer.groups;
  const cinG = cin / g;
  const coutG = cout / g;
  const outSp = out.shape.slice(2);
  const ks = wt.shape.slice(2);
  const inSp = xt.shape.slice(2);
  const xs = stridesOf(xt.shape);
  const ws = stridesOf(wt.shape);
  const os = stridesOf(out.shape);
  const res = new Float64Array(out.shape.reduce((a, d) => a * d, 1));
  for (let bi = 0; bi < n; bi++) {
    for (let ci = 0; ci < cin; ci++) {
      const grp = Math.floor(ci / cinG);
      forEachIndex(inSp, (ii) => {
        let xo = bi * xs[0] + ci * xs[1];
        for (let d = 0; d < ii.length; d++) xo += ii[d] * xs[d + 2];
        const xv = x[xo];
        for (let cg = 0; cg < coutG; cg++) {
          const co = grp * coutG + cg;
          forEachIndex(ks, (ki) => {
            let oo = bi * os[0] + co * os[1];
            let wo = ci * ws[0] + cg * ws[1];
            for (let d = 0; d < ki.length; d++) {
              const pos = ii[d] * layer.stride[d] - layer.padding[d] + ki[d] * layer.dilation[d];
              if (pos < 0 || pos >= outSp[d]) return;
              oo += pos * os[d + 2];
              wo += ki[d] * ws[d + 2];
            }
            res[oo] += xv * w[wo];
          });
        }
      });
    }
  }
  if (bt) {
    const b = read(bt);
    const inner = os[1];
    for (let i = 0; i < res.length; i++) res[i] += b[Math.floor(i / inner) % cout];
  }
  return write(out, res);
};

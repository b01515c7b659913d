import { numel } from "../../ir/tensor.js";
import type { AdaptivePoolingLayer, PoolingLayer } from "../layers/pooling.js";
import { read, write } from "./data.js";
import type { LayerRunner } from "./types.js";

/** Walks every output position of a [planes, …spatial] view, giving the input window per spatial axis. */
function pool(
  inShape: readonly number[],
  outShape: readonly number[],
  sp: number,
  window: (axis: number, o: number) => { start: number; end: number; step: number },
  reduce: (values: number[], windows: { start: number; end: number; step: number }[]) => number,
  x: Float64Array,
): Float64Array {
  const lead = inShape.length - sp;
  const planes = numel(inShape.slice(0, lead));
  const inSp = inShape.slice(lead);
  const outSp = outShape.slice(lead);
  const planeIn = numel(inSp);
  const planeOut = numel(outSp);
  const res = new Float64Array(planes * planeOut);
  const oi = new Array<number>(sp).fill(0);
  for (let p = 0; p < planes; p++) {
    for (let k = 0; k < planeOut; k++) {
      let rem = k;
      for (let a = sp - 1; a >= 0; a--) {
        oi[a] = rem % outSp[a];
        rem = Math.floor(rem / outSp[a]);
      }
      const wins = oi.map((o, a) => window(a, o));
      const values: number[] = [];
      // Padded positions are skipped, so they never read memory nor count in an average.
      const collect = (a: number, off: number) => {
        if (a === sp) {
          values.push(x[p * planeIn + off]);
          return;
        }
        const w = wins[a];
        for (let i = w.start; i < w.end; i += w.step) {
          if (i >= 0 && i < inSp[a]) collect(a + 1, off * inSp[a] + i);
        }
      };
      collect(0, 0);
      res[p * planeOut + k] = reduce(values, wins);
    }
  }
  return res;
}

export const runPooling: LayerRunner<PoolingLayer> = (layer, [xt], out) => {
  const sp = layer.kernel.length;
  const lead = xt.shape.length - sp;
  const window = (a: number, o: number) => {
    const start = o * layer.stride[a] - layer.padding[a];
    return { start, end: start + (layer.kernel[a] - 1) * layer.dilation[a] + 1, step: layer.dilation[a] };
  };
  const reduce = (values: number[], wins: { start: number; end: number }[]): number => {
    if (layer.mode === "max") {
      let m = Number.NEGATIVE_INFINITY;
      for (const v of values) {
        if (Number.isNaN(v)) return v;
        if (v > m) m = v;
      }
      return m;
    }
    const sum = values.reduce((s, v) => s + v, 0);
    if (layer.divisorOverride !== null) return sum / layer.divisorOverride;
    if (!layer.countIncludePad) return sum / values.length;
    // PyTorch counts the window clipped to the padded extent (input + padding), not to the input.
    let size = 1;
    wins.forEach((w, a) => {
      const end = Math.min(w.end, xt.shape[lead + a] + layer.padding[a]);
      size *= end - w.start;
    });
    return sum / size;
  };
  return write(out, pool(xt.shape, out.shape, sp, window, reduce, read(xt)));
};

export const runAdaptivePooling: LayerRunner<AdaptivePoolingLayer> = (layer, [xt], out) => {
  const sp = layer.outputSize.length;
  const lead = xt.shape.length - sp;
  const window = (a: number, o: number) => {
    const inp = xt.shape[lead + a];
    const n = layer.outputSize[a];
    return { start: Math.floor((o * inp) / n), end: Math.ceil(((o + 1) * inp) / n), step: 1 };
  };
  const reduce = (values: number[]): number => {
    if (layer.mode === "avg") return values.reduce((s, v) => s + v, 0) / values.length;
    let m = Number.NEGATIVE_INFINITY;
    for (const v of values) {
      if (Number.isNaN(v)) return v;
      if (v > m) m = v;
    }
    return m;
  };
  return write(out, pool(xt.shape, out.shape, sp, window, reduce, read(xt)));
};

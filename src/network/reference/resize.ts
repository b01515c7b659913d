import { numel } from "../../ir/tensor.js";
import type { ResizeLayer } from "../layers/resize.js";
import { read, write } from "./data.js";
import type { LayerRunner } from "./types.js";

const f32 = Math.fround;

// PyTorch computes the index mapping in float (compute_scales_value<float>), which decides ties; mirror it.
function nearestScale(inp: number, outp: number, scale: number | null): number {
  return scale !== null && scale > 0 ? f32(1 / scale) : f32(inp / outp);
}

/** Input indices and weights per output index along one axis: [i0, i1, w0, w1]. */
function axisTaps(
  layer: ResizeLayer,
  inp: number,
  outp: number,
  scale: number | null,
): [number, number, number, number][] {
  const taps: [number, number, number, number][] = [];
  for (let o = 0; o < outp; o++) {
    if (layer.mode === "nearest") {
      const i =
        outp === inp
          ? o
          : outp === 2 * inp
            ? o >> 1
            : Math.min(Math.floor(f32(o * nearestScale(inp, outp, scale))), inp - 1);
      taps.push([i, i, 1, 0]);
    } else if (layer.mode === "nearest_exact") {
      const i = Math.min(Math.floor(f32(f32(o + 0.5) * nearestScale(inp, outp, scale))), inp - 1);
      taps.push([i, i, 1, 0]);
    } else {
      let src: number;
      if (layer.alignCorners) {
        src = outp > 1 ? (o * (inp - 1)) / (outp - 1) : 0;
      } else {
        const s = scale !== null && scale > 0 ? 1 / scale : inp / outp;
        src = Math.max(s * (o + 0.5) - 0.5, 0);
      }
      const i0 = Math.min(Math.floor(src), inp - 1);
      const i1 = i0 < inp - 1 ? i0 + 1 : i0;
      const w1 = src - i0;
      taps.push([i0, i1, 1 - w1, w1]);
    }
  }
  return taps;
}

/** Separable: resample one spatial axis at a time. */
export const runResize: LayerRunner<ResizeLayer> = (layer, [xt], out) => {
  let x = read(xt);
  const shape = [...xt.shape];
  const sp = layer.outputSize.length;
  const lead = shape.length - sp;
  for (let a = 0; a < sp; a++) {
    const axis = lead + a;
    const inp = shape[axis];
    const outp = layer.outputSize[a];
    const taps = axisTaps(layer, inp, outp, layer.scales[a]);
    const outer = numel(shape.slice(0, axis));
    const inner = numel(shape.slice(axis + 1));
    const next = new Float64Array(outer * outp * inner);
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < outp; j++) {
        const [i0, i1, w0, w1] = taps[j];
        for (let k = 0; k < inner; k++) {
          const v0 = x[(o * inp + i0) * inner + k];
          next[(o * outp + j) * inner + k] = w1 === 0 ? v0 : w0 * v0 + w1 * x[(o * inp + i1) * inner + k];
        }
      }
    }
    x = next;
    shape[axis] = outp;
  }
  return write(out, x);
};

import type { SoftmaxLayer } from "../layers/softmax.js";
import { axisSplit, read, write } from "./data.js";
import type { LayerRunner } from "./types.js";

/** Max-subtracted softmax; log-softmax as x − max − log Σ exp(x − max). */
export function softmaxInPlace(x: Float64Array, shape: readonly number[], axis: number, log: boolean): void {
  const { outer, size, inner } =
    shape.length === 0 ? { outer: 1, size: 1, inner: 1 } : axisSplit(shape, axis);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * size * inner + i;
      let m = Number.NEGATIVE_INFINITY;
      for (let k = 0; k < size; k++) m = Math.max(m, x[base + k * inner]);
      if (m === Number.NEGATIVE_INFINITY) m = 0;
      let s = 0;
      for (let k = 0; k < size; k++) s += Math.exp(x[base + k * inner] - m);
      const ls = Math.log(s);
      for (let k = 0; k < size; k++) {
        const j = base + k * inner;
        x[j] = log ? x[j] - m - ls : Math.exp(x[j] - m) / s;
      }
    }
  }
}

export const runSoftmax: LayerRunner<SoftmaxLayer> = (layer, [xt], out) => {
  const x = read(xt);
  softmaxInPlace(x, xt.shape, layer.axis, layer.log);
  return write(out, x);
};

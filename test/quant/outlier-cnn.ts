// tinyCnn with one deliberately int8-hostile layer: conv1's output channel 0 is scaled up 1000× and conv2's
// weights reading that channel down 1000×. ReLU is positively homogeneous, so float32 computes the same function
// (up to rounding), but conv2's input now has one channel 1000× larger than the rest: its per-tensor int8 scale
// flushes the other channels to zero, and its per-channel weight scales flush the small channel-0 weights.
import type { Graph } from "../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { tinyCnn } from "./tiny-cnn.js";

export const OUTLIER = 1000;

/** `t` with `f(value, index along dim 0, index along dim 1)` applied to every element. */
function mapTensor(t: Tensor, f: (v: number, i0: number, i1: number) => number): Tensor {
  const v = toFloat64Array(t);
  const per0 = v.length / t.shape[0];
  const per1 = t.shape.length > 1 ? per0 / t.shape[1] : 1;
  const out = Array.from(v, (x, i) => f(x, Math.floor(i / per0), Math.floor((i % per0) / per1)));
  return tensorFromNumbers("float32", t.shape, out);
}

export function outlierCnn(seed = 1): Graph {
  const g = tinyCnn(seed);
  const w = g.weights;
  const scaled = (name: string, f: (v: number, i0: number, i1: number) => number) => ({
    ...w[name],
    tensor: mapTensor(w[name].tensor as Tensor, f),
  });
  return {
    ...g,
    weights: {
      ...w,
      "conv1.weight": scaled("conv1.weight", (v, o) => (o === 0 ? v * OUTLIER : v)),
      "conv1.bias": scaled("conv1.bias", (v, o) => (o === 0 ? v * OUTLIER : v)),
      "conv2.weight": scaled("conv2.weight", (v, _o, i) => (i === 0 ? v / OUTLIER : v)),
    },
  };
}

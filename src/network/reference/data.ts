import type { TensorType } from "../../ir/graph.js";
import {
  numel,
  type Shape,
  stridesOf,
  type Tensor,
  tensorFromNumbers,
  toFloat64Array,
} from "../../ir/tensor.js";

// The reference reads every tensor as float64 and stores results in the layer's dtype, so float32 layers
// round once per layer, as a GPU kernel writing fp32 does, while sums accumulate in float64.

export const read = toFloat64Array;

export function write(type: TensorType, values: ArrayLike<number>): Tensor {
  return tensorFromNumbers(type.dtype, type.shape, values);
}

/** For each flat index of `out`, the flat index of the element of `inShape` that broadcasts onto it. */
export function broadcastIndex(inShape: Shape, out: Shape): Int32Array {
  const n = numel(out);
  const map = new Int32Array(n);
  const rank = out.length;
  const offset = rank - inShape.length;
  const inStrides = stridesOf(inShape);
  const stride = out.map((_d, i) => (i < offset || inShape[i - offset] === 1 ? 0 : inStrides[i - offset]));
  const idx = new Array<number>(rank).fill(0);
  let flat = 0;
  for (let k = 0; k < n; k++) {
    map[k] = flat;
    for (let a = rank - 1; a >= 0; a--) {
      idx[a]++;
      flat += stride[a];
      if (idx[a] < out[a]) break;
      flat -= stride[a] * idx[a];
      idx[a] = 0;
    }
  }
  return map;
}

/** Calls `fn(outer, inner)` for a tensor viewed as [outer, axisSize, inner] around `axis`. */
export function axisSplit(shape: Shape, axis: number): { outer: number; size: number; inner: number } {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return { outer, size: shape[axis] ?? 1, inner };
}

/** Copies `x` with its axes permuted (out axis i is input axis perm[i]). */
export function transpose(x: Float64Array, shape: Shape, perm: readonly number[]): Float64Array {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = stridesOf(shape);
  const stride = perm.map((p) => inStrides[p]);
  const n = x.length;
  const out = new Float64Array(n);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let k = 0; k < n; k++) {
    out[k] = x[src];
    for (let a = rank - 1; a >= 0; a--) {
      idx[a]++;
      src += stride[a];
      if (idx[a] < outShape[a]) break;
      src -= stride[a] * idx[a];
      idx[a] = 0;
    }
  }
  return out;
}

/** Round half to even, as PyTorch's `round` and `nearbyint`. */
export function roundHalfEven(v: number): number {
  if (!Number.isFinite(v)) return v;
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

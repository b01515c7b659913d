/**
 * Moving a batch between its own size and a bucket's: inputs padded with zero rows along the batch axis,
 * outputs cut back to the rows that were asked for. Valid because the graph keeps rows apart
 * (runtime/dynamic-rows.ts): padded rows change nothing in the real ones.
 */
import { allocData, numel, type Tensor } from "../ir/tensor.js";

/** `t` with `rows` entries along `axis` (≥ its own): its entries first, zeros after. */
export function padRows(t: Tensor, axis: number, rows: number): Tensor {
  const have = t.shape[axis];
  if (rows === have) return t;
  const shape = t.shape.map((d, k) => (k === axis ? rows : d));
  const data = allocData(t.dtype, numel(shape));
  const inner = numel(t.shape.slice(axis + 1));
  const outer = numel(t.shape.slice(0, axis));
  const src = t.data as unknown as { subarray(a: number, b: number): ArrayLike<number> };
  const dst = data as unknown as { set(a: ArrayLike<number>, at: number): void };
  for (let o = 0; o < outer; o++)
    dst.set(src.subarray(o * have * inner, (o + 1) * have * inner), o * rows * inner);
  return { dtype: t.dtype, shape, data };
}

/** The first `rows` entries of `t` along `axis`, copied into a tensor of their own. */
export function sliceRows(t: Tensor, axis: number, rows: number): Tensor {
  const have = t.shape[axis];
  if (rows === have) return t;
  const shape = t.shape.map((d, k) => (k === axis ? rows : d));
  const inner = numel(t.shape.slice(axis + 1));
  const outer = numel(t.shape.slice(0, axis));
  // one block when the batch leads: a copy of a prefix
  if (outer === 1) return { dtype: t.dtype, shape, data: t.data.slice(0, rows * inner) };
  const data = allocData(t.dtype, numel(shape));
  const src = t.data as unknown as { subarray(a: number, b: number): ArrayLike<number> };
  const dst = data as unknown as { set(a: ArrayLike<number>, at: number): void };
  for (let o = 0; o < outer; o++)
    dst.set(src.subarray(o * have * inner, o * have * inner + rows * inner), o * rows * inner);
  return { dtype: t.dtype, shape, data };
}

import type { DType } from "../../ir/dtype.js";
import { type Shape, tensorFromNumbers } from "../../ir/tensor.js";
import type { NetworkBuilder } from "../../network/builder.js";

// Small builders every family uses: constants, casts and rank/shape plumbing.

/** A constant filled with one value. */
export function fill(net: NetworkBuilder, dtype: DType, shape: Shape, value: number): string {
  const n = shape.reduce((a, d) => a * d, 1);
  return net.constant(tensorFromNumbers(dtype, shape, new Array<number>(n).fill(value)));
}

/** A 0-d constant, which broadcasts against anything. */
export function scalar(net: NetworkBuilder, dtype: DType, value: number): string {
  return fill(net, dtype, [], value);
}

export function cast(net: NetworkBuilder, t: string, dtype: DType): string {
  return net.typeOf(t).dtype === dtype ? t : net.add({ type: "cast", inputs: [t], to: dtype });
}

export function reshape(net: NetworkBuilder, t: string, shape: readonly number[]): string {
  const cur = net.typeOf(t).shape;
  if (cur.join() === shape.join()) return t;
  return net.add({
    type: "shuffle",
    inputs: [t],
    firstTranspose: null,
    reshape: [...shape],
    secondTranspose: null,
  });
}

export function permute(net: NetworkBuilder, t: string, perm: readonly number[]): string {
  if (perm.every((p, i) => p === i)) return t;
  return net.add({
    type: "shuffle",
    inputs: [t],
    firstTranspose: [...perm],
    reshape: null,
    secondTranspose: null,
  });
}

/** Swaps two axes (negative axes count from the end). */
export function transposeAxes(net: NetworkBuilder, t: string, a: number, b: number): string {
  const rank = net.typeOf(t).shape.length;
  const perm = [...Array(rank).keys()];
  const [x, y] = [normalizeDim(a, rank), normalizeDim(b, rank)];
  [perm[x], perm[y]] = [perm[y], perm[x]];
  return permute(net, t, perm);
}

export function broadcastTo(net: NetworkBuilder, t: string, shape: readonly number[]): string {
  if (net.typeOf(t).shape.join() === shape.join()) return t;
  return net.add({ type: "broadcast", inputs: [t], shape: [...shape] });
}

export function identity(net: NetworkBuilder, t: string): string {
  return net.add({ type: "identity", inputs: [t] });
}

/** Python's negative dims: -1 is the last axis. `rank` 0 accepts dims -1 and 0, as PyTorch does. */
export function normalizeDim(dim: number, rank: number): number {
  const r = Math.max(rank, 1);
  const d = dim < 0 ? dim + r : dim;
  if (d < 0 || d >= r) throw new RangeError(`dim ${dim} out of range for rank ${rank}`);
  return d;
}

/** Whether every dim lies in [-rank, rank) (rank 0 accepts -1 and 0). */
export function dimsInRange(dims: readonly number[], rank: number): boolean {
  const r = Math.max(rank, 1);
  return dims.every((d) => Number.isInteger(d) && d >= -r && d < r);
}

/**
 * Physical layouts. A layout lists the logical axes of a tensor in memory order, outermost first: the
 * identity `[0, 1, …, r-1]` is row-major (contiguous) and `[0, 2, 3, 1]` is NHWC for a logical NCHW tensor.
 * Pure helpers: strides, equivalence up to size-1 axes, the NHWC preference.
 */
import type { Shape } from "../../../ir/tensor.js";

export type Layout = readonly number[];

export function identityLayout(rank: number): number[] {
  return Array.from({ length: rank }, (_, i) => i);
}

/** Channels-last for an N C spatial… tensor: [0, 2, …, r-1, 1]. */
export function channelsLast(rank: number): number[] {
  return rank < 3 ? identityLayout(rank) : [0, ...identityLayout(rank).slice(2), 1];
}

/** Element strides per logical axis for `shape` stored in `layout`. */
export function layoutStrides(shape: Shape, layout: Layout): number[] {
  const strides = new Array<number>(shape.length).fill(0);
  let s = 1;
  for (let i = layout.length - 1; i >= 0; i--) {
    strides[layout[i]] = s;
    s *= shape[layout[i]];
  }
  return strides;
}

/** The layout with size-1 axes dropped: two layouts with the same key place every element at the same offset. */
export function layoutKey(shape: Shape, layout: Layout): string {
  return layout.filter((a) => shape[a] !== 1).join(",");
}

export function sameMemoryOrder(shape: Shape, a: Layout, b: Layout): boolean {
  return layoutKey(shape, a) === layoutKey(shape, b);
}

/** True when `layout` stores `shape` in row-major order (ignoring size-1 axes). */
export function isRowMajor(shape: Shape, layout: Layout): boolean {
  const nontrivial = layout.filter((a) => shape[a] !== 1);
  return nontrivial.every((a, i) => i === 0 || a > nontrivial[i - 1]);
}

export function isIdentity(layout: Layout): boolean {
  return layout.every((a, i) => a === i);
}

export function invertPermutation(p: readonly number[]): number[] {
  const inv = new Array<number>(p.length);
  p.forEach((v, i) => {
    inv[v] = i;
  });
  return inv;
}

export function formatLayout(shape: Shape, layout: Layout): string {
  if (isRowMajor(shape, layout)) return "row-major";
  if (shape.length >= 3 && sameMemoryOrder(shape, layout, channelsLast(shape.length))) return "channels-last";
  return `[${layout.join(",")}]`;
}

import type { DType } from "../ir/dtype.js";
import type { Shape } from "../ir/tensor.js";
import { LayerShapeError } from "./layers/base.js";

/** NumPy broadcasting of two shapes; throws naming the layer when they do not broadcast. */
export function broadcastShapes(layer: string, a: Shape, b: Shape): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new LayerShapeError(layer, `shapes [${a.join(", ")}] and [${b.join(", ")}] do not broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

export function checkAxis(layer: string, axis: number, rank: number): number {
  if (!Number.isInteger(axis) || axis < 0 || axis >= rank) {
    throw new LayerShapeError(layer, `axis ${axis} is out of range for rank ${rank}`);
  }
  return axis;
}

export function checkPermutation(layer: string, perm: readonly number[], rank: number): void {
  const seen = new Set(perm);
  if (
    perm.length !== rank ||
    seen.size !== rank ||
    perm.some((p) => !Number.isInteger(p) || p < 0 || p >= rank)
  ) {
    throw new LayerShapeError(layer, `[${perm.join(", ")}] is not a permutation of ${rank} axes`);
  }
}

export function isFloatType(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float16" || dtype === "bfloat16" || dtype === "float64";
}

export function requireFloat(layer: string, dtype: DType): void {
  if (!isFloatType(dtype)) throw new LayerShapeError(layer, `needs a floating-point input, got ${dtype}`);
}

export function requireSameDType(layer: string, a: DType, b: DType): void {
  if (a !== b) throw new LayerShapeError(layer, `input dtypes differ (${a} vs ${b}); insert a cast layer`);
}

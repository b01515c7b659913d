import type { TensorType } from "../../ir/graph.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/**
 * Strided slice with one entry per axis. Indices are absolute (converters resolve Python's negative
 * indices): an axis yields start, start+step, … while short of `end` (below it for negative steps).
 */
export interface SliceLayer extends LayerBase<"slice", readonly [input: string]> {
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  readonly steps: readonly number[];
}

export function sliceLength(start: number, end: number, step: number): number {
  return Math.max(0, step > 0 ? Math.ceil((end - start) / step) : Math.ceil((start - end) / -step));
}

export function inferSlice(layer: SliceLayer, [x]: InputTypes): TensorType {
  const rank = x.shape.length;
  if (layer.starts.length !== rank || layer.ends.length !== rank || layer.steps.length !== rank) {
    throw new LayerShapeError("slice", `needs ${rank} starts, ends and steps`);
  }
  const shape = x.shape.map((d, i) => {
    const [s, e, st] = [layer.starts[i], layer.ends[i], layer.steps[i]];
    if (!Number.isInteger(st) || st === 0) throw new LayerShapeError("slice", `step ${st} on axis ${i}`);
    const n = sliceLength(s, e, st);
    const last = s + (n - 1) * st;
    if (n > 0 && (s < 0 || s >= d || last < 0 || last >= d)) {
      throw new LayerShapeError("slice", `axis ${i}: [${s}:${e}:${st}] leaves a dimension of ${d}`);
    }
    return n;
  });
  return { dtype: x.dtype, shape };
}

import type { TensorType } from "../../ir/graph.js";
import { checkAxis, requireFloat } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/** `argmax`/`argmin` reduce exactly one axis and yield int64 indices (first occurrence wins, as PyTorch). */
export type ReduceOp = "sum" | "mean" | "max" | "min" | "prod" | "argmax" | "argmin" | "any" | "all";

export interface ReduceLayer extends LayerBase<"reduce", readonly [input: string]> {
  readonly op: ReduceOp;
  /** Distinct, ascending, non-negative. */
  readonly axes: readonly number[];
  readonly keepDims: boolean;
}

export function inferReduce(layer: ReduceLayer, [x]: InputTypes): TensorType {
  const name = `reduce ${layer.op}`;
  const rank = x.shape.length;
  layer.axes.forEach((a, i) => {
    checkAxis(name, a, rank);
    if (i > 0 && a <= layer.axes[i - 1])
      throw new LayerShapeError(name, "axes must be distinct and ascending");
  });
  if (layer.op === "mean") requireFloat(name, x.dtype);
  if ((layer.op === "argmax" || layer.op === "argmin") && layer.axes.length !== 1) {
    throw new LayerShapeError(name, "reduces exactly one axis");
  }
  if ((layer.op === "any" || layer.op === "all") && x.dtype !== "bool") {
    throw new LayerShapeError(name, `needs bool, got ${x.dtype}`);
  }
  const shape: number[] = [];
  x.shape.forEach((d, i) => {
    if (!layer.axes.includes(i)) shape.push(d);
    else if (layer.keepDims) shape.push(1);
  });
  const dtype = layer.op === "argmax" || layer.op === "argmin" ? "int64" : x.dtype;
  return { dtype, shape };
}

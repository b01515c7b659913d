import type { TensorType } from "../../ir/graph.js";
import { broadcastShapes, requireSameDType } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

export const ARITHMETIC_OPS = [
  "add",
  "sub",
  "mul",
  "div",
  "floor_div",
  "remainder",
  "fmod",
  "pow",
  "min",
  "max",
] as const;
export const COMPARISON_OPS = ["eq", "ne", "lt", "le", "gt", "ge"] as const;
export const LOGICAL_OPS = ["and", "or", "xor"] as const;

/**
 * `div` on integers truncates toward zero; `floor_div` floors; `remainder` takes the divisor's sign
 * (Python `%`), `fmod` the dividend's (C `fmod`). Comparisons and logical ops produce bool.
 */
export type ElementwiseOp =
  | (typeof ARITHMETIC_OPS)[number]
  | (typeof COMPARISON_OPS)[number]
  | (typeof LOGICAL_OPS)[number];

/** Binary op with NumPy broadcasting. Both operands have the same dtype (converters insert casts). */
export interface ElementwiseLayer extends LayerBase<"elementwise", readonly [a: string, b: string]> {
  readonly op: ElementwiseOp;
}

export function isComparison(op: ElementwiseOp): boolean {
  return (COMPARISON_OPS as readonly string[]).includes(op);
}

export function isLogical(op: ElementwiseOp): boolean {
  return (LOGICAL_OPS as readonly string[]).includes(op);
}

export function inferElementwise(layer: ElementwiseLayer, [a, b]: InputTypes): TensorType {
  requireSameDType(`elementwise ${layer.op}`, a.dtype, b.dtype);
  if (isLogical(layer.op) && a.dtype !== "bool") {
    throw new LayerShapeError(`elementwise ${layer.op}`, `needs bool operands, got ${a.dtype}`);
  }
  const shape = broadcastShapes(`elementwise ${layer.op}`, a.shape, b.shape);
  return { dtype: isComparison(layer.op) || isLogical(layer.op) ? "bool" : a.dtype, shape };
}

import type { TensorType } from "../../ir/graph.js";
import { broadcastShapes, requireSameDType } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/** where(condition, a, b) with broadcasting of all three. */
export interface SelectLayer
  extends LayerBase<"select", readonly [condition: string, a: string, b: string]> {}

export function inferSelect(_layer: SelectLayer, [c, a, b]: InputTypes): TensorType {
  if (c.dtype !== "bool") throw new LayerShapeError("select", `condition of dtype ${c.dtype}`);
  requireSameDType("select", a.dtype, b.dtype);
  const shape = broadcastShapes("select", broadcastShapes("select", c.shape, a.shape), b.shape);
  return { dtype: a.dtype, shape };
}

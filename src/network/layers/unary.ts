import type { TensorType } from "../../ir/graph.js";
import { isFloatType } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/** Ops defined on any numeric dtype; the rest need floating point (converters cast integers first). */
export const NUMERIC_UNARY_OPS = ["abs", "neg", "sign", "ceil", "floor", "round", "trunc"] as const;
export const FLOAT_UNARY_OPS = [
  "exp",
  "exp2",
  "expm1",
  "log",
  "log2",
  "log10",
  "log1p",
  "sqrt",
  "rsqrt",
  "reciprocal",
  "erf",
  "sin",
  "cos",
  "tan",
  "asin",
  "acos",
  "atan",
  "sinh",
  "cosh",
  "asinh",
  "acosh",
  "atanh",
] as const;

/** `round` rounds half to even, as PyTorch does; `not` is logical negation of bool; `isnan`/`isinf` give bool. */
export type UnaryOp =
  | (typeof NUMERIC_UNARY_OPS)[number]
  | (typeof FLOAT_UNARY_OPS)[number]
  | "not"
  | "isnan"
  | "isinf";

export interface UnaryLayer extends LayerBase<"unary", readonly [input: string]> {
  readonly op: UnaryOp;
}

export function inferUnary(layer: UnaryLayer, [x]: InputTypes): TensorType {
  const name = `unary ${layer.op}`;
  if (layer.op === "not") {
    if (x.dtype !== "bool") throw new LayerShapeError(name, `needs bool, got ${x.dtype}`);
    return x;
  }
  if (x.dtype === "bool") throw new LayerShapeError(name, "is not defined on bool");
  if (layer.op === "isnan" || layer.op === "isinf") return { dtype: "bool", shape: x.shape };
  if ((FLOAT_UNARY_OPS as readonly string[]).includes(layer.op) && !isFloatType(x.dtype)) {
    throw new LayerShapeError(name, `needs a floating-point input, got ${x.dtype}`);
  }
  return x;
}

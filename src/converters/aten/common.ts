import type { DType } from "../../ir/dtype.js";
import { isFloating } from "../../ir/dtype.js";
import type { Node, TensorType } from "../../ir/graph.js";
import { operandType, resultType } from "../../ops/data.js";
import type { Operand } from "../../ops/index.js";
import { cast, scalar } from "../impl/tensors.js";
import { type ConversionNet, type ConvertContext, refuse, SUPPORTED, type Support } from "../types.js";

// Helpers the per-family adapters share: reading operands and output types, and common support checks.

export function outType(node: Node, ctx: ConvertContext, i = 0): TensorType {
  return ctx.typeOf(node.outputs[i]);
}

/** The network tensor for an operand in `dtype`: a value (cast if needed) or a Python number as a 0-d constant. */
export function operand(net: ConversionNet, o: Operand, dtype: DType): string {
  return typeof o === "string" ? cast(net.net, net.input(o), dtype) : scalar(net.net, dtype, o.value);
}

/** PyTorch's result type of operands (tensors, 0-d tensors and wrapped numbers), used for comparisons. */
export function promotedType(ctx: ConvertContext, ...ops: Operand[]): DType {
  return resultType(...ops.map((o) => operandType(o, ctx.typeOf)));
}

export function needsFloat(dtype: DType, what = "input"): Support {
  return isFloating(dtype) ? SUPPORTED : refuse(`${what} must be floating point, got ${dtype}`);
}

export function notBool(dtype: DType, what = "input"): Support {
  return dtype === "bool" ? refuse(`${what} of dtype bool is not supported`) : SUPPORTED;
}

export const always = (): Support => SUPPORTED;

/** The dims a reduction covers: all of them for null or [] (PyTorch's convention), else normalized and sorted. */
export function reductionAxes(dims: readonly number[] | null, rank: number): number[] {
  if (dims === null || dims.length === 0) return [...Array(rank).keys()];
  const r = Math.max(rank, 1);
  return [...new Set(dims.map((d) => (d < 0 ? d + r : d)))].filter((d) => d < rank).sort((a, b) => a - b);
}

import type { DType } from "../../ir/dtype.js";
import { callAten, type EmitContext } from "./aten.js";
import { int, type Val } from "./values.js";

/** Python number operators → the aten op computing them on 0-d tensors, and the Python type of the result. */
const OPS: Record<string, { aten: string; result: "same" | "float" | "bool" | "int" }> = {
  add: { aten: "add", result: "same" },
  sub: { aten: "sub", result: "same" },
  mul: { aten: "mul", result: "same" },
  div: { aten: "div", result: "float" },
  floordiv: { aten: "floor_divide", result: "same" },
  floor_divide: { aten: "floor_divide", result: "same" },
  remainder: { aten: "remainder", result: "same" },
  pow: { aten: "pow", result: "same" },
  neg: { aten: "neg", result: "same" },
  abs: { aten: "abs", result: "same" },
  min: { aten: "minimum", result: "same" },
  max: { aten: "maximum", result: "same" },
  lt: { aten: "lt", result: "bool" },
  le: { aten: "le", result: "bool" },
  gt: { aten: "gt", result: "bool" },
  ge: { aten: "ge", result: "bool" },
  eq: { aten: "eq", result: "bool" },
  ne: { aten: "ne", result: "bool" },
  __and__: { aten: "logical_and", result: "bool" },
  __or__: { aten: "logical_or", result: "bool" },
  __xor__: { aten: "logical_xor", result: "bool" },
  __not__: { aten: "logical_not", result: "bool" },
  Int: { aten: "to", result: "int" },
  Float: { aten: "to", result: "float" },
  Bool: { aten: "ne", result: "bool" },
  floor: { aten: "floor", result: "int" },
  ceil: { aten: "ceil", result: "int" },
};

const DTYPE: Record<"int" | "float" | "bool", DType> = { int: "int64", float: "float64", bool: "bool" };
const CODE: Record<"int" | "float", number> = { int: 4, float: 7 };

function kindOf(v: Val): "int" | "float" | "bool" | undefined {
  if (v.k === "dyn") return v.type;
  if (v.k === "int" || v.k === "float" || v.k === "bool") return v.k;
  return undefined;
}

/**
 * Python arithmetic on numbers known only at run time (loop counters of a prim.Loop, `int(x.sum())`): computed
 * on 0-d tensors, the result again a run-time number. Undefined when no operand is such a number.
 */
export function dynScalarOp(name: string, args: Val[], cx: EmitContext): Val | undefined {
  const op = OPS[name];
  if (!op || !args.some((a) => a.k === "dyn") || !args.every((a) => kindOf(a) !== undefined))
    return undefined;
  const kinds = args.map((a) => kindOf(a)!);
  const result = op.result === "same" ? (kinds.every((k) => k !== "float") ? "int" : "float") : op.result;
  const operands = args.map((a) => (a.k === "dyn" ? ({ k: "tensor", box: a.box } as Val) : a));
  let out: Val;
  if (op.aten === "to") {
    out = callAten("to", [operands[0], int(CODE[result as "int" | "float"])], new Map(), cx);
    if (result === "int" && kinds[0] === "float")
      out = callAten("to", [callAten("trunc", [operands[0]], new Map(), cx), int(4)], new Map(), cx);
  } else if (name === "Bool") out = callAten("ne", [operands[0], int(0)], new Map(), cx);
  else out = callAten(op.aten, operands, new Map(), cx);
  if (out.k !== "tensor") return undefined;
  // keep Python's number types: ints as int64, floats as float64
  const want = DTYPE[result];
  if (out.box.type.dtype !== want && result !== "bool") {
    out = callAten("to", [out, int(result === "int" ? 4 : 7)], new Map(), cx);
    if (out.k !== "tensor") return undefined;
  }
  return { k: "dyn", type: result, box: out.box };
}

import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import type { OpName } from "../../../src/ops/index.js";
import { opCase, shapeArb, T, tensor, type ValueRange } from "../arbitraries.js";
import { type CaseSpec, spec } from "./types.js";

function unaryCase(op: OpName, dtypes: DType[] = ["float32"], range: ValueRange = {}) {
  return fc
    .tuple(shapeArb(0, 4), fc.constantFrom(...dtypes))
    .chain(([s, d]) => tensor(s, d, range).map((x) => opCase(op, { self: T("x") }, { x })));
}

const u = (op: string, converter: string, dtypes?: DType[], range?: ValueRange) =>
  spec(`aten.${op}.default` as OpName, converter, unaryCase(`aten.${op}.default` as OpName, dtypes, range));

const INTS: DType[] = ["float32", "int32", "int64"];
const positive = { min: 0.05, max: 4 };

export const UNARY_CASES: CaseSpec[] = [
  u("neg", "neg", INTS),
  u("abs", "abs", INTS),
  u("sign", "sign", INTS),
  u("sqrt", "sqrt", ["float32", "int64"], { min: 0, max: 9 }),
  u("rsqrt", "rsqrt", ["float32"], positive),
  u("reciprocal", "reciprocal", ["float32"], { awayFromZero: 0.05 }),
  u("exp", "exp", ["float32", "int32"]),
  u("exp2", "exp2"),
  u("expm1", "expm1"),
  u("log", "log", ["float32", "int64"], { min: 0.05, max: 9 }),
  u("log2", "log2", ["float32"], positive),
  u("log10", "log10", ["float32"], positive),
  u("log1p", "log1p", ["float32"], { min: -0.9, max: 4 }),
  u("erf", "erf"),
  u("sin", "sin"),
  u("cos", "cos"),
  u("tan", "tan", ["float32"], { min: -1.4, max: 1.4 }),
  u("atan", "atan"),
  u("floor", "floor", INTS),
  u("ceil", "ceil", INTS),
  u("round", "round", INTS, { min: -4, max: 4 }),
  u("trunc", "trunc", INTS),
  u("isnan", "isnan", ["float32", "int32"]),
  u("logical_not", "logical_not", ["float32", "int64", "bool"]),
  u("bitwise_not", "bitwise_not", ["bool", "int32", "int64", "uint8"]),
];

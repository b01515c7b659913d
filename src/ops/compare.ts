import { numel } from "../ir/tensor.js";
import {
  broadcastShapes,
  expandNums,
  fromF64,
  nums,
  operandTensor,
  operandType,
  resultType,
  tt,
} from "./data.js";
import { binaryOp, mapUnary, valueTypes } from "./pointwise.js";
import { defineOp, type Operand, opTable } from "./schema.js";

type Cmp = (x: number, y: number) => number;
const CMPS: Record<"eq" | "ne" | "lt" | "gt" | "le" | "ge", Cmp> = {
  eq: (x, y) => (x === y ? 1 : 0),
  ne: (x, y) => (x !== y ? 1 : 0),
  lt: (x, y) => (x < y ? 1 : 0),
  gt: (x, y) => (x > y ? 1 : 0),
  le: (x, y) => (x <= y ? 1 : 0),
  ge: (x, y) => (x >= y ? 1 : 0),
};

function compare<const K extends keyof typeof CMPS>(k: K) {
  return [
    binaryOp(`aten.${k}.Tensor`, "Tensor self, Tensor other", "bool", CMPS[k]),
    binaryOp(`aten.${k}.Scalar`, "Tensor self, Scalar other", "bool", CMPS[k]),
  ] as const;
}

export interface WhereArgs {
  readonly condition: string;
  readonly self: Operand;
  readonly other: Operand;
}

function whereOp<const N extends string>(name: N, schema: string) {
  return defineOp({
    name,
    schema,
    read: (r): WhereArgs => ({
      condition: r.tensor("condition"),
      self: r.operand("self"),
      other: r.operand("other"),
    }),
    infer: (a, typeOf) => {
      const s = operandType(a.self, typeOf);
      const o = operandType(a.other, typeOf);
      return [tt(resultType(s, o), broadcastShapes(name, typeOf(a.condition).shape, s.shape, o.shape))];
    },
    evaluate: (a, valueAt) => {
      const dtype = resultType(...valueTypes([a.self, a.other], valueAt));
      const ts = [valueAt(a.condition), operandTensor(a.self, valueAt), operandTensor(a.other, valueAt)];
      const shape = broadcastShapes(name, ...ts.map((t) => t.shape));
      const [c, x, y] = ts.map((t) => expandNums(t, shape));
      const n = numel(shape);
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = c[i] !== 0 ? x[i] : y[i];
      return [fromF64(dtype, shape, out)];
    },
  });
}

export interface MaskedFillArgs {
  readonly self: string;
  readonly mask: string;
  readonly value: Operand;
}

/** The result keeps self's shape and dtype; the mask broadcasts to it. */
function maskedFill<const N extends string>(name: N, schema: string) {
  return defineOp({
    name,
    schema,
    read: (r): MaskedFillArgs => ({
      self: r.tensor("self"),
      mask: r.tensor("mask"),
      value: r.operand("value"),
    }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      broadcastShapes(name, t.shape, typeOf(a.mask).shape);
      return [tt(t.dtype, t.shape)];
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      const m = expandNums(valueAt(a.mask), t.shape);
      const v = nums(operandTensor(a.value, valueAt))[0];
      const x = nums(t);
      const out = new Float64Array(x.length);
      for (let i = 0; i < out.length; i++) out[i] = m[i] !== 0 ? v : x[i];
      return [fromF64(t.dtype, t.shape, out)];
    },
  });
}

const logical = (f: (x: boolean, y: boolean) => boolean) => (x: number, y: number) =>
  f(x !== 0, y !== 0) ? 1 : 0;

export const COMPARE_OPS = opTable(
  ...compare("eq"),
  ...compare("ne"),
  ...compare("lt"),
  ...compare("gt"),
  ...compare("le"),
  ...compare("ge"),
  whereOp("aten.where.self", "Tensor condition, Tensor self, Tensor other"),
  whereOp("aten.where.ScalarOther", "Tensor condition, Tensor self, Scalar other"),
  whereOp("aten.where.ScalarSelf", "Tensor condition, Scalar self, Tensor other"),
  whereOp("aten.where.Scalar", "Tensor condition, Scalar self, Scalar other"),
  maskedFill("aten.masked_fill.Scalar", "Tensor self, Tensor mask, Scalar value"),
  maskedFill("aten.masked_fill.Tensor", "Tensor self, Tensor mask, Tensor value"),
  binaryOp(
    "aten.logical_and.default",
    "Tensor self, Tensor other",
    "bool",
    logical((x, y) => x && y),
  ),
  binaryOp(
    "aten.logical_or.default",
    "Tensor self, Tensor other",
    "bool",
    logical((x, y) => x || y),
  ),
  binaryOp(
    "aten.logical_xor.default",
    "Tensor self, Tensor other",
    "bool",
    logical((x, y) => x !== y),
  ),
  defineOp({
    name: "aten.logical_not.default",
    schema: "Tensor self",
    read: (r) => ({ self: r.tensor("self") }),
    infer: (a, typeOf) => [tt("bool", typeOf(a.self).shape)],
    evaluate: (a, valueAt) => [mapUnary(valueAt(a.self), "bool", (x) => (x === 0 ? 1 : 0))],
  }),
  defineOp({
    name: "aten.bitwise_not.default",
    schema: "Tensor self",
    read: (r) => ({ self: r.tensor("self") }),
    infer: (a, typeOf) => [tt(typeOf(a.self).dtype, typeOf(a.self).shape)],
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      return [mapUnary(t, t.dtype, t.dtype === "bool" ? (x) => (x === 0 ? 1 : 0) : (x) => -x - 1)];
    },
  }),
  defineOp({
    name: "aten.isnan.default",
    schema: "Tensor self",
    read: (r) => ({ self: r.tensor("self") }),
    infer: (a, typeOf) => [tt("bool", typeOf(a.self).shape)],
    evaluate: (a, valueAt) => [mapUnary(valueAt(a.self), "bool", (x) => (Number.isNaN(x) ? 1 : 0))],
  }),
);

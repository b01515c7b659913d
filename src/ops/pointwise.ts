import type { DType } from "../ir/dtype.js";
import { numel, type Tensor } from "../ir/tensor.js";
import {
  broadcastShapes,
  expandNums,
  fromF64,
  nums,
  type OperandType,
  operandTensor,
  operandType,
  resultType,
  scalarDtype,
  toFloating,
  tt,
} from "./data.js";
import { defineOp, isScalarOperand, type NamedOpDef, type Operand } from "./schema.js";
import type { TypeOf, ValueOf } from "./types.js";

/** How a pointwise op's result dtype follows from the promoted input dtype. */
export type DtypeRule = "same" | "float" | "bool";

export function ruleDtype(rule: DtypeRule, d: DType): DType {
  return rule === "same" ? d : rule === "float" ? toFloating(d) : "bool";
}

export function mapUnary(t: Tensor, dtype: DType, f: (x: number) => number): Tensor {
  const a = nums(t);
  const n = a.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f(a[i]);
  return fromF64(dtype, t.shape, out);
}

/** Elementwise over broadcast operands; `f` sees the operands' values as numbers. */
export function mapN(
  tensors: readonly Tensor[],
  dtype: DType,
  op: string,
  f: (...xs: number[]) => number,
): Tensor {
  const shape = broadcastShapes(op, ...tensors.map((t) => t.shape));
  const n = numel(shape);
  const out = new Float64Array(n);
  if (tensors.length === 2) {
    const a = expandNums(tensors[0], shape);
    const b = tensors[1];
    if (numel(b.shape) === 1) {
      const y = nums(b)[0];
      for (let i = 0; i < n; i++) out[i] = f(a[i], y);
    } else {
      const bb = expandNums(b, shape);
      for (let i = 0; i < n; i++) out[i] = f(a[i], bb[i]);
    }
  } else if (tensors.length === 3) {
    const [a, b, c] = tensors.map((t) => expandNums(t, shape));
    for (let i = 0; i < n; i++) out[i] = f(a[i], b[i], c[i]);
  } else {
    const xs = tensors.map((t) => expandNums(t, shape));
    const args = new Array<number>(xs.length);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < xs.length; k++) args[k] = xs[k][i];
      out[i] = f(...args);
    }
  }
  return fromF64(dtype, shape, out);
}

/** The operand types seen at evaluation time (numbers stay "wrapped" for promotion). */
export function valueTypes(ops: readonly Operand[], valueAt: ValueOf): OperandType[] {
  return ops.map((o) => {
    if (isScalarOperand(o)) return { dtype: scalarDtype(o), shape: [], wrapped: true };
    const t = valueAt(o);
    return { dtype: t.dtype, shape: t.shape, wrapped: false };
  });
}

export function inferPointwise(op: string, ops: readonly Operand[], rule: DtypeRule, typeOf: TypeOf) {
  const types = ops.map((o) => operandType(o, typeOf));
  return [tt(ruleDtype(rule, resultType(...types)), broadcastShapes(op, ...types.map((t) => t.shape)))];
}

export function evalPointwise(
  op: string,
  ops: readonly Operand[],
  rule: DtypeRule,
  valueAt: ValueOf,
  f: (...xs: number[]) => number,
) {
  const dtype = ruleDtype(rule, resultType(...valueTypes(ops, valueAt)));
  return [
    mapN(
      ops.map((o) => operandTensor(o, valueAt)),
      dtype,
      op,
      f,
    ),
  ];
}

/** A one-input op `Tensor self` with no other arguments. */
export function unaryOp<const N extends string>(
  name: N,
  rule: DtypeRule,
  f: (x: number) => number,
): NamedOpDef<N, { self: string }> {
  return defineOp({
    name,
    schema: "Tensor self",
    read: (r) => ({ self: r.tensor("self") }),
    infer: ({ self }, typeOf) => {
      const t = typeOf(self);
      return [tt(ruleDtype(rule, t.dtype), t.shape)];
    },
    evaluate: ({ self }, valueAt) => {
      const t = valueAt(self);
      return [mapUnary(t, ruleDtype(rule, t.dtype), f)];
    },
  });
}

export interface BinaryArgs {
  readonly self: Operand;
  readonly other: Operand;
}

/** `Tensor self, Tensor other` or `Tensor self, Scalar other` with PyTorch's type promotion. */
export function binaryOp<const N extends string>(
  name: N,
  schema: string,
  rule: DtypeRule,
  f: (x: number, y: number) => number,
): NamedOpDef<N, BinaryArgs> {
  return defineOp({
    name,
    schema,
    read: (r) => ({ self: r.operand("self"), other: r.operand("other") }),
    infer: (a, typeOf) => inferPointwise(name, [a.self, a.other], rule, typeOf),
    evaluate: (a, valueAt) => evalPointwise(name, [a.self, a.other], rule, valueAt, f),
  });
}

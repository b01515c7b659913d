import type { DType } from "../../src/ir/dtype.js";
import type { Arg } from "../../src/ir/graph.js";
import { type Shape, type Tensor, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { getOp } from "../../src/ops/index.js";

export const T = (name: string): Arg => ({ kind: "tensor", name });
export const I = (value: number): Arg => ({ kind: "int", value });
export const F = (value: number): Arg => ({ kind: "float", value });
export const B = (value: boolean): Arg => ({ kind: "bool", value });
export const Is = (...value: number[]): Arg => ({ kind: "ints", value });
export const S = (value: string): Arg => ({ kind: "string", value });
export const NONE: Arg = { kind: "none" };

export function t(shape: Shape, values: ArrayLike<number>, dtype: DType = "float32"): Tensor {
  return tensorFromNumbers(dtype, shape, values);
}

/** 0, 1, 2, … shaped as given. */
export function iota(shape: Shape, dtype: DType = "float32"): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  return t(
    shape,
    Array.from({ length: n }, (_, i) => i),
    dtype,
  );
}

/** Runs one op on named tensors: parse, infer and evaluate, checking that inference agrees with the result. */
export function run(op: string, args: Record<string, Arg>, tensors: Record<string, Tensor>): Tensor[] {
  const def = getOp(op);
  if (!def) throw new Error(`no op ${op}`);
  const valueAt = (n: string) => {
    const v = tensors[n];
    if (!v) throw new Error(`no tensor ${n}`);
    return v;
  };
  const a = def.parse(args);
  const types = def.infer(a, valueAt);
  const outs = def.evaluate(a, valueAt);
  if (types.length !== outs.length)
    throw new Error(`${op}: infer gave ${types.length} types for ${outs.length} results`);
  outs.forEach((o, i) => {
    if (o.dtype !== types[i].dtype || o.shape.join() !== types[i].shape.join()) {
      throw new Error(
        `${op}: result ${i} is ${o.dtype}[${o.shape}] but infer said ${types[i].dtype}[${types[i].shape}]`,
      );
    }
  });
  return outs;
}

export function run1(op: string, args: Record<string, Arg>, tensors: Record<string, Tensor>): Tensor {
  return run(op, args, tensors)[0];
}

export function values(x: Tensor): number[] {
  return Array.from(toFloat64Array(x));
}

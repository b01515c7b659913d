// Constructors for node arguments, so rewrites read like the aten call they build.
import type { DType } from "../../ir/dtype.js";
import type { Arg } from "../../ir/graph.js";
import type { BoundValue } from "./pattern.js";

type ValueRef = string | BoundValue;

const nameOf = (v: ValueRef) => (typeof v === "string" ? v : v.name);

export const arg = {
  tensor: (v: ValueRef): Arg => ({ kind: "tensor", name: nameOf(v) }),
  tensors: (vs: readonly ValueRef[]): Arg => ({ kind: "tensors", names: vs.map(nameOf) }),
  /** A tensor, or None for null. */
  optionalTensor: (v: ValueRef | null): Arg =>
    v === null ? { kind: "none" } : { kind: "tensor", name: nameOf(v) },
  none: { kind: "none" } as Arg,
  int: (value: number): Arg => ({ kind: "int", value }),
  float: (value: number): Arg => ({ kind: "float", value }),
  bool: (value: boolean): Arg => ({ kind: "bool", value }),
  ints: (value: readonly number[]): Arg => ({ kind: "ints", value: [...value] }),
  floats: (value: readonly number[]): Arg => ({ kind: "floats", value: [...value] }),
  dtype: (value: DType): Arg => ({ kind: "dtype", value }),
  str: (value: string): Arg => ({ kind: "string", value }),
} as const;

/** The listed arguments of a record, for rewrites that rename an op but keep most of its arguments. */
export function pickArgs(args: Readonly<Record<string, Arg>>, names: readonly string[]): Record<string, Arg> {
  const out: Record<string, Arg> = {};
  for (const n of names) if (args[n] !== undefined) out[n] = args[n];
  return out;
}

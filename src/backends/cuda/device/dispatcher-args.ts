/**
 * Typed arguments for `aoti_torch_call_dispatcher` and their StableIValue (uint64) encoding, per the table
 * in native-apis §6. Every argument of the schema is passed, defaulted ones included, in schema order.
 * `Scalar` arguments cannot go through the dispatcher (use the generated aoti_torch_cuda_* shims instead).
 *
 * Ownership: the callee takes ownership of tensor handles, lists, strings and boxed optionals, so encoding
 * makes a new handle / list / string / box for each (the caller's objects stay valid).
 */
import type { DType } from "../../../ir/dtype.js";
import { checkInt, checkOneOf, describe, fail } from "./validate.js";

/** Anything that carries an AtenTensorHandle. */
export interface TensorRef {
  readonly handle: bigint;
}

export type OpArg =
  | { readonly kind: "tensor"; readonly tensor: TensorRef }
  | { readonly kind: "int"; readonly value: number | bigint }
  | { readonly kind: "float"; readonly value: number }
  | { readonly kind: "bool"; readonly value: boolean }
  | { readonly kind: "dtype"; readonly value: DType }
  | { readonly kind: "device"; readonly type: "cpu" | "cuda"; readonly index: number }
  | { readonly kind: "none" }
  | { readonly kind: "optional"; readonly value: OpArg }
  | { readonly kind: "intList"; readonly values: readonly (number | bigint)[] }
  | { readonly kind: "str"; readonly value: string };

/** Constructors, so a call reads like its schema: `[arg.tensor(x), arg.intList([1, 0])]`. */
export const arg = {
  tensor: (tensor: TensorRef): OpArg => ({ kind: "tensor", tensor }),
  int: (value: number | bigint): OpArg => ({ kind: "int", value }),
  float: (value: number): OpArg => ({ kind: "float", value }),
  bool: (value: boolean): OpArg => ({ kind: "bool", value }),
  dtype: (value: DType): OpArg => ({ kind: "dtype", value }),
  device: (type: "cpu" | "cuda", index = 0): OpArg => ({ kind: "device", type, index }),
  none: (): OpArg => ({ kind: "none" }),
  /** `T?` holding a value (for `T?` that is absent use arg.none()). */
  optional: (value: OpArg): OpArg => ({ kind: "optional", value }),
  intList: (values: readonly (number | bigint)[]): OpArg => ({ kind: "intList", values }),
  str: (value: string): OpArg => ({ kind: "str", value }),
} as const;

/** The LibTorch services encoding needs (LibTorch implements it; tests fake it). */
export interface ArgHost {
  newTensorHandle(handle: bigint): bigint;
  newIntList(values: readonly bigint[]): bigint;
  newString(value: string): bigint;
  /** A heap cell (operator new) holding `value`: the encoding of a present `T?`. */
  box(value: bigint): bigint;
  dtypeCode(dtype: DType): number;
  deviceTypeCode(type: "cpu" | "cuda"): number;
}

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

export function encodeInt(value: number | bigint): bigint {
  return BigInt.asUintN(64, BigInt(value));
}

export function decodeInt(value: bigint): bigint {
  return BigInt.asIntN(64, value);
}

export function encodeFloat(value: number): bigint {
  f64[0] = value;
  return u64[0]!;
}

export function decodeFloat(value: bigint): number {
  u64[0] = value;
  return f64[0]!;
}

/** c10::Device as a StableIValue: device index in the low 32 bits, device type in the high 32. */
export function encodeDevice(typeCode: number, index: number): bigint {
  return (BigInt(typeCode) << 32n) | BigInt.asUintN(32, BigInt(index));
}

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

function checkInt64(name: string, v: unknown): void {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) fail(`${name} must be a safe integer, got ${v}`);
  } else if (typeof v === "bigint") {
    if (v < INT64_MIN || v > INT64_MAX) fail(`${name} is outside int64: ${v}`);
  } else {
    fail(`${name} must be an integer, got ${describe(v)}`);
  }
}

/** Checks one argument completely, so that nothing is allocated for a call that would be refused. */
export function validateArg(a: OpArg, name: string): void {
  if (a === null || typeof a !== "object") fail(`${name} must be an OpArg, got ${describe(a)}`);
  const value: unknown = (a as { value?: unknown }).value;
  switch (a.kind) {
    case "tensor":
      if (typeof a.tensor?.handle !== "bigint" || a.tensor.handle === 0n)
        fail(`${name}: tensor has no live handle`);
      return;
    case "int":
      checkInt64(name, a.value);
      return;
    case "float":
      if (typeof value !== "number") fail(`${name} must be a number, got ${describe(value)}`);
      return;
    case "bool":
      if (typeof value !== "boolean") fail(`${name} must be a boolean, got ${describe(value)}`);
      return;
    case "dtype":
      if (typeof value !== "string") fail(`${name} must be a dtype name, got ${describe(value)}`);
      return;
    case "device":
      checkOneOf(`${name}.type`, a.type, ["cpu", "cuda"] as const);
      checkInt(`${name}.index`, a.index, -1, 2 ** 31 - 1);
      return;
    case "none":
      return;
    case "optional":
      if (a.value?.kind === "none" || a.value?.kind === "optional")
        fail(`${name}: optional must hold a value`);
      validateArg(a.value, `${name}.value`);
      return;
    case "intList":
      if (!Array.isArray(a.values)) fail(`${name} must hold an array of integers`);
      for (const [i, v] of a.values.entries()) checkInt64(`${name}[${i}]`, v);
      return;
    case "str":
      if (typeof value !== "string") fail(`${name} must be a string, got ${describe(value)}`);
      return;
    default:
      fail(`${name}: unknown argument kind ${describe((a as { kind?: unknown }).kind)}`);
  }
}

/** The StableIValue for `a` (allocating through `host` where the schema type needs it). */
export function encodeArg(a: OpArg, host: ArgHost): bigint {
  switch (a.kind) {
    case "tensor":
      return host.newTensorHandle(a.tensor.handle);
    case "int":
      return encodeInt(a.value);
    case "float":
      return encodeFloat(a.value);
    case "bool":
      return a.value ? 1n : 0n;
    case "dtype":
      return encodeInt(host.dtypeCode(a.value));
    case "device":
      return encodeDevice(host.deviceTypeCode(a.type), a.index);
    case "none":
      return 0n;
    case "optional":
      return host.box(encodeArg(a.value, host));
    case "intList":
      return host.newIntList(a.values.map(encodeInt));
    case "str":
      return host.newString(a.value);
  }
}

/** Validates all of `args`, then fills a stack of max(args, returns) StableIValues. */
export function encodeStack(args: readonly OpArg[], returns: number, host: ArgHost): BigUint64Array {
  if (!Array.isArray(args)) fail("args must be an array of OpArg");
  checkInt("returns", returns, 0, 64);
  for (const [i, a] of args.entries()) validateArg(a, `argument ${i}`);
  const stack = new BigUint64Array(Math.max(args.length, returns, 1));
  for (const [i, a] of args.entries()) stack[i] = encodeArg(a, host);
  return stack;
}

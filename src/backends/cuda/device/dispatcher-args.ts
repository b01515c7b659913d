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

/**
 * One schema argument as it goes on a dispatcher stack. `T` is how a tensor is named: a live handle
 * (OpArg, for LibTorch.call) or a value name the caller resolves later (torch/'s DispatchPlan).
 */
export type StackArg<T> =
  | { readonly kind: "tensor"; readonly value: T }
  /** `Tensor[]`: a StableListHandle of new tensor handles. */
  | { readonly kind: "tensorList"; readonly values: readonly T[] }
  /** `Tensor?[]`: a StableListHandle whose items are boxed handles, or 0 for None. */
  | { readonly kind: "optTensorList"; readonly values: readonly (T | null)[] }
  | { readonly kind: "int"; readonly value: number | bigint }
  | { readonly kind: "float"; readonly value: number }
  | { readonly kind: "bool"; readonly value: boolean }
  | { readonly kind: "dtype"; readonly value: DType }
  /** `Layout` / `MemoryFormat`: the c10 enum's code as an int. */
  | { readonly kind: "layout" | "memoryFormat"; readonly code: number }
  | { readonly kind: "device"; readonly type: "cpu" | "cuda"; readonly index: number }
  | { readonly kind: "none" }
  | { readonly kind: "optional"; readonly value: StackArg<T> }
  | { readonly kind: "intList"; readonly values: readonly (number | bigint)[] }
  | { readonly kind: "floatList"; readonly values: readonly number[] }
  | { readonly kind: "boolList"; readonly values: readonly boolean[] }
  | { readonly kind: "str"; readonly value: string };

export type OpArg = StackArg<TensorRef>;

/** Constructors, so a call reads like its schema: `[arg.tensor(x), arg.intList([1, 0])]`. */
export const arg = {
  tensor: (tensor: TensorRef): OpArg => ({ kind: "tensor", value: tensor }),
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

function checkTensorRef(name: string, t: TensorRef | undefined): void {
  if (typeof t?.handle !== "bigint" || t.handle === 0n) fail(`${name}: tensor has no live handle`);
}

/** Checks one argument completely, so that nothing is allocated for a call that would be refused. */
export function validateArg(a: OpArg, name: string): void {
  if (a === null || typeof a !== "object") fail(`${name} must be an OpArg, got ${describe(a)}`);
  const value: unknown = (a as { value?: unknown }).value;
  switch (a.kind) {
    case "tensor":
      checkTensorRef(name, a.value);
      return;
    case "tensorList":
      for (const [i, t] of a.values.entries()) checkTensorRef(`${name}[${i}]`, t);
      return;
    case "optTensorList":
      for (const [i, t] of a.values.entries()) if (t !== null) checkTensorRef(`${name}[${i}]`, t);
      return;
    case "floatList":
    case "boolList":
    case "layout":
    case "memoryFormat":
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

/**
 * The StableIValue for `a`, allocating through `host` where the schema type needs it. `newHandle` makes the
 * new owning tensor handle the callee takes over.
 */
export function encodeStackArg<T>(a: StackArg<T>, newHandle: (t: T) => bigint, host: ArgHost): bigint {
  switch (a.kind) {
    case "tensor":
      return newHandle(a.value);
    case "tensorList":
      return host.newIntList(a.values.map(newHandle));
    case "optTensorList":
      return host.newIntList(a.values.map((v) => (v === null ? 0n : host.box(newHandle(v)))));
    case "int":
      return encodeInt(a.value);
    case "float":
      return encodeFloat(a.value);
    case "bool":
      return a.value ? 1n : 0n;
    case "dtype":
      return encodeInt(host.dtypeCode(a.value));
    case "layout":
    case "memoryFormat":
      return encodeInt(a.code);
    case "device":
      return encodeDevice(host.deviceTypeCode(a.type), a.index);
    case "none":
      return 0n;
    case "optional":
      return host.box(encodeStackArg(a.value, newHandle, host));
    case "intList":
      return host.newIntList(a.values.map(encodeInt));
    case "floatList":
      return host.newIntList(a.values.map(encodeFloat));
    case "boolList":
      return host.newIntList(a.values.map((b) => (b ? 1n : 0n)));
    case "str":
      return host.newString(a.value);
    default:
      return fail(`a ${describe((a as { kind?: unknown }).kind)} argument cannot go on a dispatcher stack`);
  }
}

/** The StableIValue for an OpArg (a new handle to each tensor). */
export function encodeArg(a: OpArg, host: ArgHost): bigint {
  return encodeStackArg(a, (t) => host.newTensorHandle(t.handle), host);
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

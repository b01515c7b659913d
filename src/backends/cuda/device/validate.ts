/**
 * Argument checks run before any value reaches C. A wrong size or a freed pointer handed to the driver is a
 * crash or silent memory corruption, so every runtime entry point validates here first and throws
 * DeviceArgumentError naming the argument.
 */
import { TorchcError } from "../../../errors.js";

export class DeviceArgumentError extends TorchcError {
  constructor(message: string) {
    super(message, "device.bad-argument");
    this.name = "DeviceArgumentError";
  }
}

/** Device memory as the runtime sees it: an address, how many bytes are valid from it, and whether it is alive. */
export interface DeviceMemory {
  readonly ptr: bigint;
  readonly bytes: number;
  /** False once freed; using it then is refused. */
  readonly alive: boolean;
}

/** Host memory a C call may read or write for the duration of the call: a TypedArray or Buffer. */
export type HostArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

const U64_MAX = (1n << 64n) - 1n;

export function fail(message: string): never {
  throw new DeviceArgumentError(message);
}

/** An integer in [min, max]; returns it. */
export function checkInt(name: string, value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== "number" || !Number.isInteger(value))
    fail(`${name} must be an integer, got ${describe(value)}`);
  if (value < min || value > max) fail(`${name} must be in [${min}, ${max}], got ${value}`);
  return value;
}

/** A byte count: a non-negative safe integer. */
export function checkBytes(name: string, value: unknown): number {
  return checkInt(name, value, 0);
}

export function checkFinite(name: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isFinite(value))
    fail(`${name} must be a finite number, got ${describe(value)}`);
  return value;
}

export function checkOneOf<T extends string>(name: string, value: unknown, options: readonly T[]): T {
  if (typeof value !== "string" || !(options as readonly string[]).includes(value)) {
    fail(`${name} must be one of ${options.map((o) => `"${o}"`).join(", ")}, got ${describe(value)}`);
  }
  return value as T;
}

/** A non-null native address (BigInt in (0, 2^64)). */
export function checkPtr(name: string, value: unknown): bigint {
  if (typeof value !== "bigint") fail(`${name} must be a native pointer (BigInt), got ${describe(value)}`);
  if (value <= 0n || value > U64_MAX) fail(`${name} is not a valid address: ${value}`);
  return value;
}

/** A TypedArray or Buffer (not a DataView, not a plain ArrayBuffer): its address and byteLength are exact. */
export function checkHostArray(name: string, value: unknown): HostArray {
  if (!ArrayBuffer.isView(value) || value instanceof DataView) {
    fail(`${name} must be a TypedArray or Buffer, got ${describe(value)}`);
  }
  return value as HostArray;
}

/**
 * Live device memory with at least `offset + needed` bytes; returns the address at `offset`.
 * `needed` and `offset` are validated too.
 */
export function checkDevice(name: string, mem: unknown, needed: number, offset = 0): bigint {
  if (mem === null || typeof mem !== "object" || !("ptr" in mem) || !("bytes" in mem)) {
    fail(`${name} must be device memory ({ ptr, bytes, alive }), got ${describe(mem)}`);
  }
  const m = mem as DeviceMemory;
  if (m.alive === false) fail(`${name} has been freed`);
  checkBytes(`${name} size`, m.bytes);
  checkBytes(`${name} offset`, offset);
  checkBytes(`${name} byte count`, needed);
  if (offset + needed > m.bytes) {
    fail(`${name} holds ${m.bytes} bytes; ${needed} bytes at offset ${offset} are needed`);
  }
  return checkPtr(`${name}.ptr`, m.ptr) + BigInt(offset);
}

/** Plain device memory from an address and a size (memory owned elsewhere, e.g. by torch). */
export function deviceMemory(ptr: bigint, bytes: number): DeviceMemory {
  return { ptr: checkPtr("ptr", ptr), bytes: checkBytes("bytes", bytes), alive: true };
}

/** Grid/block dimensions: a number or up to three numbers. */
export type Dim3 = number | readonly [number] | readonly [number, number] | readonly [number, number, number];

export function checkDim3(
  name: string,
  dim: Dim3,
  max: readonly [number, number, number],
): [number, number, number] {
  const d: readonly number[] = typeof dim === "number" ? [dim] : dim;
  if (!Array.isArray(d) || d.length < 1 || d.length > 3) fail(`${name} must be a number or 1–3 numbers`);
  return [
    checkInt(`${name}.x`, d[0], 1, max[0]),
    checkInt(`${name}.y`, d[1] ?? 1, 1, max[1]),
    checkInt(`${name}.z`, d[2] ?? 1, 1, max[2]),
  ];
}

export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "object") return (value as object).constructor?.name ?? "object";
  return String(value);
}

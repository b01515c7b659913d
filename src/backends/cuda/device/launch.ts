/**
 * Kernel launches with a reusable parameter arena (native-apis §2, way 2): the argument values live in one
 * koffi.alloc'd block written through a DataView, and `params` holds one pointer per argument into it, so a
 * launch passes a prebuilt BigUint64Array and allocates nothing. The driver copies the values at launch (and
 * at capture time inside a CUDA graph), so the arena may be rewritten right after a launch returns.
 */

import {
  CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION,
  CUDA,
  LAUNCH_ATTRIBUTE_BYTES,
  LAUNCH_CONFIG_BYTES,
} from "../../../ffi/cuda.js";
import { koffi } from "../../../ffi/koffi.js";
import { checkCuda } from "../../../ffi/status.js";
import { numberToBfloat16Bits, numberToFloat16Bits } from "../../../ir/half.js";
import { CudaContext } from "./context.js";
import type { Kernel } from "./module.js";
import { type Stream, streamHandle } from "./stream.js";
import {
  checkDevice,
  checkDim3,
  checkInt,
  type DeviceMemory,
  type Dim3,
  describe,
  fail,
} from "./validate.js";

/** A kernel parameter's C type: ptr (any T*), i32/u32/i64/u64, f32/f64, f16/bf16 (given as a JS number). */
export type ParamType = "ptr" | "i32" | "u32" | "i64" | "u64" | "f32" | "f64" | "f16" | "bf16";

export type ParamValue = number | bigint | DeviceMemory;

const SIZE: Readonly<Record<ParamType, number>> = {
  ptr: 8,
  i32: 4,
  u32: 4,
  i64: 8,
  u64: 8,
  f32: 4,
  f64: 8,
  f16: 2,
  bf16: 2,
};

/** Byte offset of each parameter in the arena (each aligned to its size) and the arena's size. */
export function paramLayout(types: readonly ParamType[]): { offsets: number[]; size: number } {
  const offsets: number[] = [];
  let at = 0;
  for (const [i, t] of types.entries()) {
    const size = SIZE[t];
    if (size === undefined) fail(`parameter ${i}: unknown type ${describe(t)}`);
    at = Math.ceil(at / size) * size;
    offsets.push(at);
    at += size;
  }
  return { offsets, size: Math.max(8, Math.ceil(at / 8) * 8) };
}

export class KernelArgs {
  /** One pointer per parameter, into the arena: pass as cuLaunchKernel's kernelParams. */
  readonly params: BigUint64Array;
  private readonly arena: bigint;
  private readonly view: DataView;
  private readonly offsets: number[];
  private readonly setMask: Uint8Array;
  private unset: number;
  private freed = false;

  constructor(readonly types: readonly ParamType[]) {
    if (!Array.isArray(types)) fail("types must be an array of parameter types");
    const { offsets, size } = paramLayout(types);
    const k = koffi();
    this.arena = k.alloc("uint8_t", size) as bigint;
    this.view = new DataView(k.view(this.arena, size));
    this.offsets = offsets;
    this.params = new BigUint64Array(offsets.map((o) => this.arena + BigInt(o)));
    this.unset = types.length;
    this.setMask = new Uint8Array(types.length);
  }

  /** Writes argument `index`; numbers and BigInts are range-checked for their C type. */
  set(index: number, value: ParamValue): this {
    if (this.freed) fail("the kernel arguments have been freed");
    const type = this.types[index];
    if (type === undefined)
      fail(`argument index ${index} is out of range (kernel takes ${this.types.length})`);
    const at = this.offsets[index]!;
    const v = this.view;
    const name = `argument ${index} (${type})`;
    switch (type) {
      case "ptr": {
        const p =
          typeof value === "object" ? checkDevice(name, value, 0) : toBigInt(name, value, 0n, U64_MAX);
        v.setBigUint64(at, p, true);
        break;
      }
      case "i32":
        v.setInt32(at, checkInt(name, value, -(2 ** 31), 2 ** 31 - 1), true);
        break;
      case "u32":
        v.setUint32(at, checkInt(name, value, 0, 2 ** 32 - 1), true);
        break;
      case "i64":
        v.setBigInt64(at, toBigInt(name, value, -(1n << 63n), (1n << 63n) - 1n), true);
        break;
      case "u64":
        v.setBigUint64(at, toBigInt(name, value, 0n, U64_MAX), true);
        break;
      case "f32":
        v.setFloat32(at, toNumber(name, value), true);
        break;
      case "f64":
        v.setFloat64(at, toNumber(name, value), true);
        break;
      case "f16":
        v.setUint16(at, numberToFloat16Bits(toNumber(name, value)), true);
        break;
      case "bf16":
        v.setUint16(at, numberToBfloat16Bits(toNumber(name, value)), true);
        break;
    }
    if (this.setMask[index] === 0) {
      this.setMask[index] = 1;
      this.unset--;
    }
    return this;
  }

  /** Writes every argument in order. */
  setAll(values: readonly ParamValue[]): this {
    if (values.length !== this.types.length)
      fail(`expected ${this.types.length} arguments, got ${values.length}`);
    for (const [i, value] of values.entries()) this.set(i, value);
    return this;
  }

  /** True once every argument has been written at least once. */
  get complete(): boolean {
    return this.unset === 0;
  }

  get alive(): boolean {
    return !this.freed;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    koffi().free(this.arena);
  }
}

const U64_MAX = (1n << 64n) - 1n;

function toBigInt(name: string, value: ParamValue, min: bigint, max: bigint): bigint {
  let b: bigint;
  if (typeof value === "bigint") b = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) b = BigInt(value);
  else fail(`${name} must be an integer, got ${describe(value)}`);
  if (b < min || b > max) fail(`${name} is out of range: ${b}`);
  return b;
}

function toNumber(name: string, value: ParamValue): number {
  if (typeof value !== "number") fail(`${name} must be a number, got ${describe(value)}`);
  return value;
}

export interface LaunchConfig {
  grid: Dim3;
  block: Dim3;
  /** Dynamic shared memory per block in bytes (default 0). */
  sharedBytes?: number;
  /** The stream; null or omitted: the legacy default stream. */
  stream?: Stream | null;
  /**
   * Programmatic dependent launch (Hopper+): the kernel may be scheduled while the previous kernel on the stream
   * drains; it must begin with `griddepcontrol.wait` (every generated kernel does, see codegen/emitter.ts).
   * Default: on where the device supports it, unless TORCHC_PDL=0.
   */
  programmatic?: boolean;
}

const GRID_MAX = [2 ** 31 - 1, 65535, 65535] as const;
const BLOCK_MAX = [1024, 1024, 64] as const;

/** Launches `kernel` with `args` (every argument must have been set). */
export function launch(kernel: Kernel, config: LaunchConfig, args: KernelArgs): void {
  const [gx, gy, gz] = checkDim3("grid", config.grid, GRID_MAX);
  const [bx, by, bz] = checkDim3("block", config.block, BLOCK_MAX);
  if (bx * by * bz > 1024) fail(`a block has at most 1024 threads, got ${bx}×${by}×${bz}`);
  const shared = checkInt("sharedBytes", config.sharedBytes ?? 0, 0, 2 ** 31 - 1);
  if (!(args instanceof KernelArgs) || !args.alive) fail("args must be live KernelArgs");
  if (!args.complete) fail(`kernel ${kernel.symbol}: not every argument has been set`);
  const params = args.types.length > 0 ? args.params : null;
  if (config.programmatic ?? programmaticByDefault()) {
    const at = launchConfig.write([gx, gy, gz], [bx, by, bz], shared, streamHandle(config.stream));
    const rc = CUDA.fn.cuLaunchKernelEx(at, kernel.handle, params, null);
    if (rc !== 0) checkCuda(`cuLaunchKernelEx(${kernel.symbol})`, rc);
    return;
  }
  const rc = CUDA.fn.cuLaunchKernel(
    kernel.handle,
    gx,
    gy,
    gz,
    bx,
    by,
    bz,
    shared,
    streamHandle(config.stream),
    params,
    null,
  );
  if (rc !== 0) checkCuda(`cuLaunchKernel(${kernel.symbol})`, rc);
}

const pdlByContext = new WeakMap<CudaContext, boolean>();

/** Compute capability 9.0+ runs `griddepcontrol`; TORCHC_PDL=0 turns it off (for A/B timing). */
function programmaticByDefault(): boolean {
  if (process.env.TORCHC_PDL === "0") return false;
  const ctx = CudaContext.current();
  let on = pdlByContext.get(ctx);
  if (on === undefined) {
    on = ctx.info.computeCapability[0] >= 9;
    pdlByContext.set(ctx, on);
  }
  return on;
}

/**
 * One CUlaunchConfig + one attribute (programmatic stream serialization), rewritten per launch: the driver reads
 * it during the call, so a single block serves every launch on the JS thread.
 */
class LaunchConfigBlock {
  private base: bigint | undefined;
  private view: DataView | undefined;

  write(grid: readonly number[], block: readonly number[], shared: number, stream: bigint | null): bigint {
    if (this.base === undefined) {
      const k = koffi();
      const bytes = LAUNCH_CONFIG_BYTES + LAUNCH_ATTRIBUTE_BYTES;
      this.base = k.alloc("uint8_t", bytes) as bigint;
      this.view = new DataView(k.view(this.base, bytes));
      const attr = LAUNCH_CONFIG_BYTES;
      this.view.setUint32(attr, CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION, true);
      this.view.setInt32(attr + 8, 1, true);
      this.view.setBigUint64(40, this.base + BigInt(attr), true);
      this.view.setUint32(48, 1, true);
    }
    const v = this.view!;
    for (let i = 0; i < 3; i++) {
      v.setUint32(4 * i, grid[i]!, true);
      v.setUint32(12 + 4 * i, block[i]!, true);
    }
    v.setUint32(24, shared, true);
    v.setBigUint64(32, stream ?? 0n, true);
    return this.base;
  }
}

const launchConfig = new LaunchConfigBlock();

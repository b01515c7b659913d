/**
 * The device's primary context: cuInit once, retain the primary context of an ordinal and make it current.
 * PyTorch uses the same primary context, so memory and streams made here are valid in LibTorch and back.
 * Context-bound driver calls only work on the JS main thread (koffi's async workers have no current context).
 */
import { CU_DEVICE_ATTRIBUTE, CUDA } from "../../../ffi/cuda.js";
import { checkCuda } from "../../../ffi/status.js";
import type { OutNum, OutPtr } from "../../../ffi/types.js";
import { checkInt } from "./validate.js";

export interface DeviceInfo {
  readonly ordinal: number;
  readonly name: string;
  /** e.g. [9, 0] for an H100. */
  readonly computeCapability: readonly [number, number];
  readonly multiprocessors: number;
  readonly totalBytes: number;
  /** e.g. 13000 for CUDA 13.0. */
  readonly driverVersion: number;
  readonly maxSharedBytesPerBlockOptin: number;
}

let initialized = false;
const contexts = new Map<number, CudaContext>();
let current: CudaContext | undefined;

function init(): void {
  if (initialized) return;
  checkCuda("cuInit", CUDA.fn.cuInit(0));
  initialized = true;
}

/** How many CUDA devices the driver sees (0 when none; throws when the driver cannot be loaded). */
export function deviceCount(): number {
  init();
  const n: OutNum = [0];
  checkCuda("cuDeviceGetCount", CUDA.fn.cuDeviceGetCount(n));
  return n[0];
}

export class CudaContext {
  private released = false;

  private constructor(
    readonly ordinal: number,
    /** The CUdevice. */
    readonly device: number,
    /** The CUcontext (the device's primary context). */
    readonly handle: bigint,
    readonly info: DeviceInfo,
  ) {}

  /**
   * The primary context of device `ordinal`, retained once and made current. Every entry point that touches the
   * driver for a module calls this first: modules on several devices share the one JS thread, and an await lets
   * another device's work run in between.
   */
  static get(ordinal = 0): CudaContext {
    checkInt("ordinal", ordinal, 0, 1023);
    const known = contexts.get(ordinal);
    if (known) {
      // With one device the cache is exact. With several, LibTorch's device guards may have switched the thread
      // to another primary context behind the cache, so it is set again (one cheap driver call).
      if (current !== known || contexts.size > 1) known.makeCurrent();
      return known;
    }
    init();
    const f = CUDA.fn;
    const dev: OutNum = [0];
    checkCuda("cuDeviceGet", f.cuDeviceGet(dev, ordinal));
    const ctx: OutPtr = [null];
    checkCuda("cuDevicePrimaryCtxRetain", f.cuDevicePrimaryCtxRetain(ctx, dev[0]));
    if (ctx[0] === null) throw new Error("cuDevicePrimaryCtxRetain returned a NULL context");
    const made = new CudaContext(ordinal, dev[0], ctx[0], queryInfo(ordinal, dev[0]));
    contexts.set(ordinal, made);
    made.makeCurrent();
    return made;
  }

  /** The context made current last, or device 0's primary context. */
  static current(): CudaContext {
    return current ?? CudaContext.get(0);
  }

  /** "sm_90" for compute capability 9.0. */
  get arch(): string {
    const [major, minor] = this.info.computeCapability;
    return `sm_${major}${minor}`;
  }

  makeCurrent(): void {
    this.assertLive();
    checkCuda("cuCtxSetCurrent", CUDA.fn.cuCtxSetCurrent(this.handle));
    current = this;
  }

  synchronize(): void {
    this.assertLive();
    checkCuda("cuCtxSynchronize", CUDA.fn.cuCtxSynchronize());
  }

  memInfo(): { free: number; total: number } {
    this.assertLive();
    const free: OutNum = [0];
    const total: OutNum = [0];
    checkCuda("cuMemGetInfo_v2", CUDA.fn.cuMemGetInfo_v2(free, total));
    return { free: free[0], total: total[0] };
  }

  /** Releases the primary context retained by get(); everything allocated in it must be freed first. */
  release(): void {
    if (this.released) return;
    this.released = true;
    contexts.delete(this.ordinal);
    if (current === this) current = undefined;
    checkCuda("cuDevicePrimaryCtxRelease_v2", CUDA.fn.cuDevicePrimaryCtxRelease_v2(this.device));
  }

  private assertLive(): void {
    if (this.released) throw new Error(`the context of device ${this.ordinal} has been released`);
  }
}

function queryInfo(ordinal: number, device: number): DeviceInfo {
  const f = CUDA.fn;
  const attr = (a: number, what: string): number => {
    const v: OutNum = [0];
    checkCuda(`cuDeviceGetAttribute(${what})`, f.cuDeviceGetAttribute(v, a, device));
    return v[0];
  };
  const nameBuf = new Uint8Array(256);
  checkCuda("cuDeviceGetName", f.cuDeviceGetName(nameBuf, nameBuf.length, device));
  const end = nameBuf.indexOf(0);
  const total: OutNum = [0];
  checkCuda("cuDeviceTotalMem_v2", f.cuDeviceTotalMem_v2(total, device));
  const version: OutNum = [0];
  checkCuda("cuDriverGetVersion", f.cuDriverGetVersion(version));
  return {
    ordinal,
    name: new TextDecoder().decode(nameBuf.subarray(0, end < 0 ? nameBuf.length : end)),
    computeCapability: [
      attr(CU_DEVICE_ATTRIBUTE.COMPUTE_CAPABILITY_MAJOR, "CC major"),
      attr(CU_DEVICE_ATTRIBUTE.COMPUTE_CAPABILITY_MINOR, "CC minor"),
    ],
    multiprocessors: attr(CU_DEVICE_ATTRIBUTE.MULTIPROCESSOR_COUNT, "SM count"),
    totalBytes: total[0],
    driverVersion: version[0],
    maxSharedBytesPerBlockOptin: attr(CU_DEVICE_ATTRIBUTE.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, "smem optin"),
  };
}

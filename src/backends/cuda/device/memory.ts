/**
 * Device buffers and pinned host memory. Every copy and fill checks sizes, offsets and liveness before the
 * address reaches the driver. Synchronous copies take any TypedArray; asynchronous ones take only pinned
 * memory (the GPU reads it later, so it must not be pageable JS memory that can move or be collected).
 */
import { CUDA } from "../../../ffi/cuda.js";
import { koffi } from "../../../ffi/koffi.js";
import { checkCuda } from "../../../ffi/status.js";
import type { OutPtr } from "../../../ffi/types.js";
import { CudaContext } from "./context.js";
import { type Stream, streamHandle } from "./stream.js";
import {
  checkBytes,
  checkDevice,
  checkHostArray,
  checkInt,
  type DeviceMemory,
  fail,
  type HostArray,
} from "./validate.js";

export interface CopyRange {
  srcOffset?: number;
  dstOffset?: number;
  /** Defaults to everything from the offset to the end of the smaller side. */
  bytes?: number;
}

export class DeviceBuffer implements DeviceMemory {
  private freed = false;

  private constructor(
    private readonly address: bigint,
    readonly bytes: number,
  ) {}

  /** `bytes` (> 0) of device memory in the current context, 256-byte aligned, uninitialised. */
  static alloc(bytes: number): DeviceBuffer {
    checkInt("bytes", bytes, 1);
    CudaContext.current();
    const out = new BigUint64Array(1);
    checkCuda("cuMemAlloc_v2", CUDA.fn.cuMemAlloc_v2(out, bytes));
    return new DeviceBuffer(out[0]!, bytes);
  }

  /** A buffer holding a copy of `src`. */
  static from(src: HostArray): DeviceBuffer {
    checkHostArray("src", src);
    const buf = DeviceBuffer.alloc(Math.max(1, src.byteLength));
    if (src.byteLength > 0) buf.upload(src);
    return buf;
  }

  get ptr(): bigint {
    if (this.freed) fail("the device buffer has been freed");
    return this.address;
  }

  get alive(): boolean {
    return !this.freed;
  }

  /** A window of `bytes` at `offset`; it dies with this buffer. */
  view(offset: number, bytes: number): DeviceMemory {
    checkDevice("buffer", this, bytes, offset);
    const parent = this;
    return {
      get ptr() {
        return parent.ptr + BigInt(offset);
      },
      bytes,
      get alive() {
        return parent.alive;
      },
    };
  }

  upload(src: HostArray, dstOffset = 0): this {
    upload(this, src, dstOffset);
    return this;
  }

  download<T extends HostArray>(dst: T, srcOffset = 0): T {
    return download(this, dst, srcOffset);
  }

  fill(byte = 0, opts: { offset?: number; bytes?: number; stream?: Stream | null } = {}): this {
    fill(this, byte, opts);
    return this;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    checkCuda("cuMemFree_v2", CUDA.fn.cuMemFree_v2(this.address));
  }
}

/** Page-locked host memory (cuMemAllocHost): the source or target of asynchronous copies. */
export class PinnedBuffer {
  private freed = false;
  private buffer: ArrayBuffer | undefined;

  private constructor(
    private readonly address: bigint,
    readonly bytes: number,
    /** Memory allocated elsewhere and page-locked in place (cuMemHostRegister); kept alive while registered. */
    private readonly registeredOver?: SharedArrayBuffer | ArrayBuffer,
  ) {}

  static alloc(bytes: number): PinnedBuffer {
    checkInt("bytes", bytes, 1);
    CudaContext.current();
    const out: OutPtr = [null];
    checkCuda("cuMemAllocHost_v2", CUDA.fn.cuMemAllocHost_v2(out, bytes));
    if (out[0] === null) throw new Error("cuMemAllocHost_v2 returned NULL");
    return new PinnedBuffer(out[0], bytes);
  }

  /**
   * Page-locks `bytes` of `memory` from `offset` in place (cuMemHostRegister): copies from it then DMA straight
   * from there, as from an allocated pinned buffer. For memory other threads write into (a SharedArrayBuffer of
   * request bodies). The range must be page-aligned; free() unregisters it (the memory itself stays).
   */
  static register(memory: SharedArrayBuffer | ArrayBuffer, offset: number, bytes: number): PinnedBuffer {
    checkInt("bytes", bytes, 1);
    checkBytes("offset", offset);
    if (offset + bytes > memory.byteLength)
      fail(`${bytes} bytes at offset ${offset} do not fit a buffer of ${memory.byteLength} bytes`);
    const address = koffi().address(new Uint8Array(memory, offset, bytes)) as bigint;
    if (address % 4096n !== 0n || bytes % 4096 !== 0)
      fail(`host memory to page-lock must be whole pages (address ${address}, ${bytes} bytes)`);
    CudaContext.current();
    // 1 = CU_MEMHOSTREGISTER_PORTABLE: page-locked for every context, not only the current one.
    checkCuda("cuMemHostRegister_v2", CUDA.fn.cuMemHostRegister_v2(address, bytes, 1));
    return new PinnedBuffer(address, bytes, memory);
  }

  /** Whether this is memory page-locked in place (register), not allocated as pinned. */
  get registered(): boolean {
    return this.registeredOver !== undefined;
  }

  get ptr(): bigint {
    if (this.freed) fail("the pinned buffer has been freed");
    return this.address;
  }

  get alive(): boolean {
    return !this.freed;
  }

  /** The memory as an ArrayBuffer (no copy). Do not touch it after free(). */
  get arrayBuffer(): ArrayBuffer {
    if (this.freed) fail("the pinned buffer has been freed");
    this.buffer ??= koffi().view(this.address, this.bytes);
    return this.buffer;
  }

  /** A new ArrayBuffer over the memory that this object does not keep (so it can be garbage-collected). */
  freshView(): ArrayBuffer {
    if (this.freed) fail("the pinned buffer has been freed");
    return koffi().view(this.address, this.bytes);
  }

  /** A typed view over the whole buffer, e.g. `pinned.as(Float32Array)`. */
  as<T extends HostArray>(ctor: { new (buffer: ArrayBuffer): T; BYTES_PER_ELEMENT: number }): T {
    if (this.bytes % ctor.BYTES_PER_ELEMENT !== 0) {
      fail(`${this.bytes} bytes is not a whole number of ${ctor.BYTES_PER_ELEMENT}-byte elements`);
    }
    return new ctor(this.arrayBuffer);
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.buffer = undefined;
    if (this.registeredOver) checkCuda("cuMemHostUnregister", CUDA.fn.cuMemHostUnregister(this.address));
    else checkCuda("cuMemFreeHost", CUDA.fn.cuMemFreeHost(this.address));
  }
}

/** Synchronous host → device copy of all of `src` to `dst` at `dstOffset`. */
export function upload(dst: DeviceMemory, src: HostArray, dstOffset = 0): void {
  checkHostArray("src", src);
  const at = checkDevice("dst", dst, src.byteLength, dstOffset);
  if (src.byteLength === 0) return;
  checkCuda("cuMemcpyHtoD_v2", CUDA.fn.cuMemcpyHtoD_v2(at, src, src.byteLength));
}

/** Synchronous device → host copy filling all of `dst` from `src` at `srcOffset`. */
export function download<T extends HostArray>(src: DeviceMemory, dst: T, srcOffset = 0): T {
  checkHostArray("dst", dst);
  const at = checkDevice("src", src, dst.byteLength, srcOffset);
  if (dst.byteLength === 0) return dst;
  checkCuda("cuMemcpyDtoH_v2", CUDA.fn.cuMemcpyDtoH_v2(dst, at, dst.byteLength));
  return dst;
}

/** Sets bytes of `dst` to `byte`; asynchronous when a stream is given. */
export function fill(
  dst: DeviceMemory,
  byte: number,
  opts: { offset?: number; bytes?: number; stream?: Stream | null } = {},
): void {
  checkInt("byte", byte, 0, 255);
  const offset = checkBytes("offset", opts.offset ?? 0);
  const bytes = opts.bytes ?? dst.bytes - offset;
  const at = checkDevice("dst", dst, bytes, offset);
  if (bytes === 0) return;
  if (opts.stream === undefined) checkCuda("cuMemsetD8_v2", CUDA.fn.cuMemsetD8_v2(at, byte, bytes));
  else checkCuda("cuMemsetD8Async", CUDA.fn.cuMemsetD8Async(at, byte, bytes, streamHandle(opts.stream)));
}

/** Device → device copy; asynchronous when a stream is given. */
export function copyDevice(
  dst: DeviceMemory,
  src: DeviceMemory,
  range: CopyRange = {},
  stream?: Stream | null,
): void {
  const [srcOffset, dstOffset, bytes] = resolveRange(range, src.bytes, dst.bytes);
  const s = checkDevice("src", src, bytes, srcOffset);
  const d = checkDevice("dst", dst, bytes, dstOffset);
  if (bytes === 0) return;
  if (stream === undefined) checkCuda("cuMemcpyDtoD_v2", CUDA.fn.cuMemcpyDtoD_v2(d, s, bytes));
  else checkCuda("cuMemcpyDtoDAsync_v2", CUDA.fn.cuMemcpyDtoDAsync_v2(d, s, bytes, streamHandle(stream)));
}

/** Asynchronous pinned host → device copy on `stream`. */
export function uploadAsync(
  dst: DeviceMemory,
  src: PinnedBuffer,
  stream: Stream | null,
  range: CopyRange = {},
): void {
  if (!(src instanceof PinnedBuffer)) fail("asynchronous copies need a PinnedBuffer as the host side");
  const [srcOffset, dstOffset, bytes] = resolveRange(range, src.bytes, dst.bytes);
  checkHostRange("src", src, bytes, srcOffset);
  const d = checkDevice("dst", dst, bytes, dstOffset);
  if (bytes === 0) return;
  const h = src.ptr + BigInt(srcOffset);
  checkCuda("cuMemcpyHtoDAsync_v2", CUDA.fn.cuMemcpyHtoDAsync_v2(d, h, bytes, streamHandle(stream)));
}

/**
 * Host → device copy on `stream` straight from pageable memory (an ordinary typed array). The driver copies the
 * bytes into its own staging memory before it returns, so `src` may change as soon as this returns, and the DMA
 * is ordered on `stream` like any other copy (CUDA's API synchronization rules for pageable host → device async
 * copies). For small inputs, where it saves the staging memcpy's hand-over (execution-context.ts).
 */
export function uploadPageableAsync(dst: DeviceMemory, src: Uint8Array, stream: Stream, dstOffset = 0): void {
  if (!(src instanceof Uint8Array)) fail("a pageable upload takes a Uint8Array");
  const d = checkDevice("dst", dst, src.byteLength, dstOffset);
  if (src.byteLength === 0) return;
  checkCuda(
    "cuMemcpyHtoDAsync_v2",
    CUDA.fn.cuMemcpyHtoDAsync_v2(d, src, src.byteLength, streamHandle(stream)),
  );
}

/** Asynchronous device → pinned host copy on `stream`; read the host side after synchronizing. */
export function downloadAsync(
  src: DeviceMemory,
  dst: PinnedBuffer,
  stream: Stream | null,
  range: CopyRange = {},
): void {
  if (!(dst instanceof PinnedBuffer)) fail("asynchronous copies need a PinnedBuffer as the host side");
  const [srcOffset, dstOffset, bytes] = resolveRange(range, src.bytes, dst.bytes);
  checkHostRange("dst", dst, bytes, dstOffset);
  const s = checkDevice("src", src, bytes, srcOffset);
  if (bytes === 0) return;
  const h = dst.ptr + BigInt(dstOffset);
  checkCuda("cuMemcpyDtoHAsync_v2", CUDA.fn.cuMemcpyDtoHAsync_v2(h, s, bytes, streamHandle(stream)));
}

function resolveRange(range: CopyRange, srcBytes: number, dstBytes: number): [number, number, number] {
  const srcOffset = checkBytes("srcOffset", range.srcOffset ?? 0);
  const dstOffset = checkBytes("dstOffset", range.dstOffset ?? 0);
  const bytes = range.bytes ?? Math.min(srcBytes - srcOffset, dstBytes - dstOffset);
  return [srcOffset, dstOffset, checkBytes("bytes", bytes)];
}

function checkHostRange(name: string, buf: PinnedBuffer, bytes: number, offset: number): void {
  if (!buf.alive) fail(`${name} has been freed`);
  if (offset + bytes > buf.bytes)
    fail(`${name} holds ${buf.bytes} bytes; ${bytes} bytes at offset ${offset} are needed`);
}

/**
 * DeviceTensor (src/runtime/device-tensor.ts) over CUDA memory, and host tensors in pinned memory. Pinned
 * host tensors are what `allocateHostInputs()` hands out: the module copies straight from them (no staging
 * copy), which is how large batches reach the PCIe rate. Their memory is freed when the JS array that views
 * it is garbage-collected, so a user holding one never touches freed memory.
 */
import { InputError } from "../../errors.js";
import type { DType } from "../../ir/dtype.js";
import {
  numel,
  type Shape,
  type Tensor,
  tensorBytes,
  tensorFromBytes,
  typedDataView,
} from "../../ir/tensor.js";
import type { DeviceTensor } from "../../runtime/device-tensor.js";
import { type CompletionStrategy, whenComplete } from "./device/completion.js";
import { CudaContext } from "./device/context.js";
import { CudaEvent } from "./device/event.js";
import { DeviceBuffer, downloadAsync, PinnedBuffer, uploadAsync } from "./device/memory.js";
import { Stream } from "./device/stream.js";
import type { DeviceMemory } from "./device/validate.js";
import { ioBytes } from "./engine.js";
import { registeredSource } from "./host-registration.js";

export class CudaDeviceTensor implements DeviceTensor {
  readonly kind = "device" as const;

  constructor(
    private readonly mem: DeviceMemory & { free?: () => void },
    readonly dtype: DType,
    readonly shape: Shape,
    readonly device: number,
    readonly owner: "torchc" | "user",
  ) {
    const need = ioBytes({ dtype, shape });
    if (mem.bytes < need)
      throw new InputError(
        `a ${dtype}[${shape}] device tensor needs ${need} bytes, got ${mem.bytes}`,
        "input.shape",
      );
  }

  /** A new, uninitialised device tensor owned by torchc. */
  static alloc(dtype: DType, shape: Shape, device: number): CudaDeviceTensor {
    const bytes = ioBytes({ dtype, shape });
    CudaContext.get(device);
    return new CudaDeviceTensor(
      DeviceBuffer.alloc(Math.max(256, bytes)),
      dtype,
      [...shape],
      device,
      "torchc",
    );
  }

  get ptr(): bigint {
    return this.mem.ptr;
  }

  get bytes(): number {
    return ioBytes(this);
  }

  get alive(): boolean {
    return this.mem.alive;
  }

  dispose(): void {
    if (this.owner !== "torchc" || !this.mem.alive) return;
    // Freed in its own device's context, whichever module ran last on this thread.
    CudaContext.get(this.device);
    this.mem.free?.();
  }
}

/** Device memory of a DeviceTensor after checking it is alive and holds `type`. */
export function checkDeviceTensor(t: DeviceTensor, dtype: DType, shape: Shape, what: string): DeviceMemory {
  // Only memory torchc allocated reaches the driver: a made-up pointer could corrupt the context.
  if (!(t instanceof CudaDeviceTensor))
    throw new InputError(
      `${what}: not a DeviceTensor made by torchc (use allocateInputs(), allocateOutputs(), toDevice() or run(…, { outputs: "device" }))`,
      "input.invalid",
    );
  if (!t.alive) throw new InputError(`${what}: the device tensor has been disposed`, "input.disposed");
  if (t.dtype !== dtype || t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
    throw new InputError(
      `${what}: device tensor is ${t.dtype}[${t.shape}], expected ${dtype}[${shape}]`,
      "input.shape",
    );
  return t;
}

const pinnedOf = new WeakMap<ArrayBuffer, PinnedBuffer>();
const collect = new FinalizationRegistry<PinnedBuffer>((p) => {
  try {
    p.free();
  } catch {
    // The context may be gone at exit; the driver reclaims it then.
  }
});

/** A host tensor in page-locked memory (freed once nothing references its array). */
export function allocPinnedTensor(dtype: DType, shape: Shape): Tensor {
  const n = numel(shape);
  const bytes = ioBytes({ dtype, shape });
  const pinned = PinnedBuffer.alloc(Math.max(64, bytes));
  const buffer = pinned.freshView();
  pinnedOf.set(buffer, pinned);
  collect.register(buffer, pinned);
  return { dtype, shape: [...shape], data: typedDataView(dtype, buffer, 0, n) };
}

/**
 * The pinned buffer and offset behind a tensor's data, when it is a pinned tensor or lies in host memory
 * page-locked in place (./host-registration.ts).
 */
export function pinnedSource(t: Tensor): { pinned: PinnedBuffer; offset: number } | undefined {
  return pinnedView(t.data);
}

/** pinnedSource for any view: the page-locked memory holding all of it, and its offset there. */
export function pinnedView(view: ArrayBufferView): { pinned: PinnedBuffer; offset: number } | undefined {
  const pinned = pinnedOf.get(view.buffer as ArrayBuffer);
  if (pinned?.alive) return { pinned, offset: view.byteOffset };
  return registeredSource(view);
}

/**
 * One copy through `bytes` of pinned staging on a stream of its own: `fill` writes the staging (host → device),
 * `queue` queues the copy, `drain` reads the staging once it has landed (device → host).
 */
async function viaStaging(
  device: number,
  bytes: number,
  completion: CompletionStrategy,
  queue: (staging: PinnedBuffer, stream: Stream) => void,
  fill?: (staging: Uint8Array) => void,
  drain?: (staging: Uint8Array) => void,
): Promise<void> {
  if (bytes === 0) return;
  CudaContext.get(device);
  const stream = Stream.create();
  const done = CudaEvent.create({ timing: false });
  const staging = PinnedBuffer.alloc(bytes);
  try {
    fill?.(new Uint8Array(staging.arrayBuffer, 0, bytes));
    queue(staging, stream);
    done.record(stream);
    await whenComplete(stream, done, completion);
    drain?.(new Uint8Array(staging.arrayBuffer, 0, bytes));
  } finally {
    // The wait let work on other devices run: back to this one before freeing.
    CudaContext.get(device);
    if (stream.alive) stream.synchronize();
    staging.free();
    done.destroy();
    stream.destroy();
  }
}

/** A device copy of `t` (through pinned staging on a stream of its own). */
export async function copyToDevice(
  t: Tensor,
  device: number,
  completion: CompletionStrategy,
): Promise<CudaDeviceTensor> {
  const bytes = tensorBytes(t);
  const out = CudaDeviceTensor.alloc(t.dtype, t.shape, device);
  try {
    await viaStaging(
      device,
      bytes.byteLength,
      completion,
      (staging, stream) => uploadAsync(out, staging, stream, { bytes: bytes.byteLength }),
      (staging) => staging.set(bytes),
    );
    return out;
  } catch (e) {
    out.dispose();
    throw e;
  }
}

/** A host copy of a device tensor. */
export async function copyToHost(t: DeviceTensor, completion: CompletionStrategy): Promise<Tensor> {
  const mem = checkDeviceTensor(t, t.dtype, t.shape, "toHost");
  const n = ioBytes(t);
  const out = new Uint8Array(n);
  await viaStaging(
    t.device,
    n,
    completion,
    (staging, stream) => downloadAsync(mem, staging, stream, { bytes: n }),
    undefined,
    (staging) => out.set(staging),
  );
  return tensorFromBytes(t.dtype, t.shape, out);
}

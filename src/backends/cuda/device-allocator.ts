/**
 * The CUDA backend's host and device memory for users of a module (runtime/compile.ts): DeviceTensors, pinned
 * host tensors, copies between them, host memory page-locked in place and batches gathered from it.
 */
import type { DType } from "../../ir/dtype.js";
import type { Shape, Tensor } from "../../ir/tensor.js";
import type { DeviceTensor } from "../../runtime/device-tensor.js";
import type { DeviceAllocator, HostRegistration } from "../../runtime/execution.js";
import type { CompletionStrategy } from "./device/completion.js";
import { CudaContext } from "./device/context.js";
import { copyIntoPinned } from "./device/host-copy.js";
import {
  allocPinnedTensor,
  CudaDeviceTensor,
  copyToDevice,
  copyToHost,
  pinnedSource,
} from "./device-tensor.js";
import { gatherable, gatherToDevice } from "./gather-rows.js";
import { registerHostMemory } from "./host-registration.js";

export function cudaDeviceAllocator(
  device: number,
  completion: CompletionStrategy,
): Required<DeviceAllocator> {
  return {
    deviceTensor(dtype: DType, shape: Shape): DeviceTensor {
      CudaContext.get(device);
      return CudaDeviceTensor.alloc(dtype, shape, device);
    },
    pinnedTensor(dtype: DType, shape: Shape): Tensor {
      CudaContext.get(device);
      return allocPinnedTensor(dtype, shape);
    },
    async toDevice(t: Tensor): Promise<DeviceTensor> {
      CudaContext.get(device);
      return copyToDevice(t, device, completion);
    },
    async toHost(t: DeviceTensor): Promise<Tensor> {
      CudaContext.get(device);
      return copyToHost(t, completion);
    },
    copyIntoHost,
    registerHost(memory: SharedArrayBuffer | ArrayBuffer): HostRegistration {
      return registerHostMemory(memory, device);
    },
    gatherable,
    gatherToDevice(dtype, shape, parts, into?: DeviceTensor): Promise<DeviceTensor> {
      // A DeviceTensor from elsewhere is refused by name inside (checkDeviceTensor); only ours is reused.
      const reuse = into instanceof CudaDeviceTensor && into.device === device ? into : undefined;
      if (into && !reuse)
        throw new TypeError("gatherToDevice: `into` is not a DeviceTensor of this module's GPU");
      return gatherToDevice(dtype, shape, parts, device, completion, reuse);
    },
  };
}

/**
 * Writes `src` into host tensor `dst` at `byteOffset`: into page-locked memory (allocateHost) by one memcpy on a
 * worker thread whatever the size (a batch's rows are many such copies at once), else on this thread.
 */
async function copyIntoHost(dst: Tensor, byteOffset: number, src: Uint8Array): Promise<void> {
  if (byteOffset < 0 || byteOffset + src.byteLength > dst.data.byteLength)
    throw new RangeError(`${src.byteLength} bytes at ${byteOffset} do not fit ${dst.data.byteLength}`);
  const p = pinnedSource(dst);
  if (!p) {
    new Uint8Array(dst.data.buffer, dst.data.byteOffset + byteOffset, src.byteLength).set(src);
    return;
  }
  await copyIntoPinned(p.pinned, p.offset + byteOffset, src, {
    minWorkerBytes: 64 << 10,
    chunkBytes: Math.max(4096, src.byteLength),
  });
}

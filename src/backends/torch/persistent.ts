/**
 * Host tensors that live on the GPU for a runner's lifetime (weights, rewrite constants): one device buffer
 * each, uploaded once, wrapped once as a non-owning torch tensor over that buffer.
 */
import type { Tensor } from "../../ir/tensor.js";
import { tensorBytes } from "../../ir/tensor.js";
import type { LibTorch } from "../cuda/device/libtorch.js";
import { DeviceBuffer } from "../cuda/device/memory.js";
import type { TorchTensor } from "../cuda/device/torch-tensor.js";

export interface DeviceTensor {
  readonly buffer: DeviceBuffer;
  readonly tensor: TorchTensor;
}

export function uploadTensor(lib: LibTorch, t: Tensor, deviceIndex: number): DeviceTensor {
  const buffer = DeviceBuffer.from(tensorBytes(t));
  try {
    return { buffer, tensor: lib.wrap(buffer, { sizes: t.shape, dtype: t.dtype, deviceIndex }) };
  } catch (e) {
    buffer.free();
    throw e;
  }
}

export function releaseTensor(d: DeviceTensor): void {
  d.tensor.delete();
  d.buffer.free();
}

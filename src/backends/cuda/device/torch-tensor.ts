/** A LibTorch tensor handle (AtenTensorHandle) and the view arithmetic used to check it against memory. */

import { koffi } from "../../../ffi/koffi.js";
import { checkTorch } from "../../../ffi/status.js";
import { TORCH_CPU } from "../../../ffi/torch.js";
import type { OutPtr } from "../../../ffi/types.js";
import { DTYPE_BYTES, type DType } from "../../../ir/dtype.js";
import { type DeviceMemory, fail } from "./validate.js";

/** What a tensor needs from the loaded LibTorch (implemented by LibTorch). */
export interface TensorHost {
  readonly deviceTypes: { readonly cpu: number; readonly cuda: number };
  dtypeOf(code: number): DType | undefined;
  newTensorHandle(handle: bigint): bigint;
}

/** Contiguous (row-major) strides for `sizes`, in elements. */
export function contiguousStrides(sizes: readonly number[]): number[] {
  const strides = new Array<number>(sizes.length);
  let acc = 1;
  for (let i = sizes.length - 1; i >= 0; i--) {
    strides[i] = acc;
    acc *= Math.max(1, sizes[i]!);
  }
  return strides;
}

/** Bytes a strided view spans from the start of its storage (0 when any size is 0). */
export function viewExtentBytes(
  sizes: readonly number[],
  strides: readonly number[],
  offset: number,
  elementBytes: number,
): number {
  if (sizes.some((s) => s === 0)) return 0;
  let last = offset;
  sizes.forEach((s, i) => {
    last += (s - 1) * strides[i]!;
  });
  return (last + 1) * elementBytes;
}

export class TorchTensor {
  private deleted = false;

  constructor(
    private readonly raw: bigint,
    private readonly torch: TensorHost,
  ) {}

  get handle(): bigint {
    if (this.deleted) fail("the tensor handle has been deleted");
    return this.raw;
  }

  get alive(): boolean {
    return !this.deleted;
  }

  dim(): number {
    const out = new BigInt64Array(1);
    checkTorch("aoti_torch_get_dim", TORCH_CPU.fn.aoti_torch_get_dim(this.handle, out));
    return Number(out[0]);
  }

  sizes(): number[] {
    return this.readInt64s("aoti_torch_get_sizes");
  }

  strides(): number[] {
    return this.readInt64s("aoti_torch_get_strides");
  }

  storageOffset(): number {
    const out = new BigInt64Array(1);
    checkTorch("aoti_torch_get_storage_offset", TORCH_CPU.fn.aoti_torch_get_storage_offset(this.handle, out));
    return Number(out[0]);
  }

  dtype(): DType {
    const out = new Int32Array(1);
    checkTorch("aoti_torch_get_dtype", TORCH_CPU.fn.aoti_torch_get_dtype(this.handle, out));
    const d = this.torch.dtypeOf(out[0]!);
    if (d === undefined) fail(`tensor has a dtype torchc does not know (code ${out[0]})`);
    return d;
  }

  device(): { type: "cuda" | "cpu" | number; index: number } {
    const t = new Int32Array(1);
    const i = new Int32Array(1);
    checkTorch("aoti_torch_get_device_type", TORCH_CPU.fn.aoti_torch_get_device_type(this.handle, t));
    checkTorch("aoti_torch_get_device_index", TORCH_CPU.fn.aoti_torch_get_device_index(this.handle, i));
    const type =
      t[0] === this.torch.deviceTypes.cuda ? "cuda" : t[0] === this.torch.deviceTypes.cpu ? "cpu" : t[0]!;
    return { type, index: i[0]! };
  }

  /** The address of element 0 (storage offset applied), borrowed from the tensor. */
  dataPtr(): bigint {
    const out: OutPtr = [null];
    checkTorch("aoti_torch_get_data_ptr", TORCH_CPU.fn.aoti_torch_get_data_ptr(this.handle, out));
    return out[0] ?? 0n;
  }

  /** The tensor's elements as device memory (valid while the tensor lives), for copies and kernels. */
  memory(): DeviceMemory {
    const sizes = this.sizes();
    const bytes = viewExtentBytes(sizes, this.strides(), 0, DTYPE_BYTES[this.dtype()]);
    const ptr = this.dataPtr();
    const self = this;
    return {
      ptr,
      bytes,
      get alive() {
        return self.alive;
      },
    };
  }

  /** A second handle to the same tensor (delete both). */
  newHandle(): TorchTensor {
    return new TorchTensor(this.torch.newTensorHandle(this.handle), this.torch);
  }

  delete(): void {
    if (this.deleted) return;
    this.deleted = true;
    checkTorch("aoti_torch_delete_tensor_object", TORCH_CPU.fn.aoti_torch_delete_tensor_object(this.raw));
  }

  private readInt64s(call: "aoti_torch_get_sizes" | "aoti_torch_get_strides"): number[] {
    const n = this.dim();
    const out: OutPtr = [null];
    checkTorch(call, TORCH_CPU.fn[call](this.handle, out));
    if (n === 0) return [];
    if (out[0] === null) fail(`${call} returned NULL`);
    return Array.from(koffi().decode(out[0], "int64_t", n) as BigInt64Array, Number);
  }
}

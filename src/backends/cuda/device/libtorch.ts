/**
 * LibTorch through its stable C shim: load it, wrap device buffers as (non-owning) tensors, call any aten op
 * through the dispatcher with typed arguments, and share the current CUDA stream with torch. Torch uses the
 * primary context, so buffers and streams from this runtime are valid on both sides.
 */

import { koffi } from "../../../ffi/koffi.js";
import { checkTorch } from "../../../ffi/status.js";
import { TORCH_CPU, TORCH_CUDA } from "../../../ffi/torch.js";
import type { OutNum, OutPtr } from "../../../ffi/types.js";
import { DTYPE_BYTES, type DType } from "../../../ir/dtype.js";
import { type ArgHost, encodeStack, type OpArg } from "./dispatcher-args.js";
import { type Stream, streamHandle } from "./stream.js";
import { checkDevice, checkInt, checkOneOf, type DeviceMemory, fail } from "./validate.js";

const DTYPE_GETTERS = {
  float16: "aoti_torch_dtype_float16",
  bfloat16: "aoti_torch_dtype_bfloat16",
  float32: "aoti_torch_dtype_float32",
  float64: "aoti_torch_dtype_float64",
  int64: "aoti_torch_dtype_int64",
  int32: "aoti_torch_dtype_int32",
  int16: "aoti_torch_dtype_int16",
  int8: "aoti_torch_dtype_int8",
  uint8: "aoti_torch_dtype_uint8",
  bool: "aoti_torch_dtype_bool",
} as const satisfies Record<DType, string>;

export interface WrapOptions {
  sizes: readonly number[];
  /** In elements; default contiguous (row-major). */
  strides?: readonly number[];
  dtype: DType;
  /** In elements. */
  storageOffset?: number;
  device?: "cuda" | "cpu";
  deviceIndex?: number;
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
    private readonly torch: LibTorch,
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

let instance: LibTorch | undefined;

export class LibTorch implements ArgHost {
  readonly abiVersion: bigint;
  readonly deviceTypes: { readonly cpu: number; readonly cuda: number };
  private readonly dtypeCodes: Map<DType, number>;
  private readonly dtypeNames: Map<number, DType>;

  private constructor(readonly cuda: boolean) {
    const f = TORCH_CPU.fn;
    this.abiVersion = BigInt(f.aoti_torch_abi_version());
    this.deviceTypes = { cpu: f.aoti_torch_device_type_cpu(), cuda: f.aoti_torch_device_type_cuda() };
    this.dtypeCodes = new Map();
    this.dtypeNames = new Map();
    for (const [name, getter] of Object.entries(DTYPE_GETTERS) as [DType, (typeof DTYPE_GETTERS)[DType]][]) {
      const code = f[getter]();
      this.dtypeCodes.set(name, code);
      this.dtypeNames.set(code, name);
    }
  }

  /**
   * Loads LibTorch once per process: libtorch_cuda first (it pulls in libc10, libtorch_cpu, cuDNN and cuBLAS
   * from the same install), then libtorch_cpu for the shim. `cuda: false` loads only libtorch_cpu.
   */
  static load(opts: { cuda?: boolean } = {}): LibTorch {
    const cuda = opts.cuda !== false;
    if (instance && (instance.cuda || !cuda)) return instance;
    if (cuda) TORCH_CUDA.load();
    TORCH_CPU.load();
    instance = new LibTorch(cuda);
    return instance;
  }

  /** The ABI version as "2.11.0". */
  get version(): string {
    const v = this.abiVersion;
    return `${(v >> 56n) & 0xffn}.${(v >> 48n) & 0xffn}.${(v >> 40n) & 0xffn}`;
  }

  dtypeCode(dtype: DType): number {
    const code = this.dtypeCodes.get(dtype);
    if (code === undefined) fail(`unknown dtype ${JSON.stringify(dtype)}`);
    return code;
  }

  dtypeOf(code: number): DType | undefined {
    return this.dtypeNames.get(code);
  }

  deviceTypeCode(type: "cpu" | "cuda"): number {
    return this.deviceTypes[type];
  }

  /**
   * A tensor over `mem` without copying or taking ownership: the caller keeps `mem` alive and frees it
   * after deleting every tensor over it. Sizes, strides and offset are checked against `mem.bytes`.
   */
  wrap(mem: DeviceMemory, opts: WrapOptions): TorchTensor {
    const dtype = checkOneOf("dtype", opts.dtype, Object.keys(DTYPE_GETTERS) as DType[]);
    if (!Array.isArray(opts.sizes)) fail("sizes must be an array");
    const sizes = opts.sizes.map((s, i) => checkInt(`sizes[${i}]`, s, 0));
    const strides = (opts.strides ?? contiguousStrides(sizes)).map((s, i) => checkInt(`strides[${i}]`, s, 0));
    if (strides.length !== sizes.length)
      fail(`strides has ${strides.length} entries for ${sizes.length} sizes`);
    const offset = checkInt("storageOffset", opts.storageOffset ?? 0, 0);
    const device = checkOneOf("device", opts.device ?? "cuda", ["cuda", "cpu"] as const);
    const index = checkInt("deviceIndex", opts.deviceIndex ?? (device === "cuda" ? 0 : -1), -1, 1023);
    const ptr = checkDevice("mem", mem, viewExtentBytes(sizes, strides, offset, DTYPE_BYTES[dtype]));
    const out: OutPtr = [null];
    const rc = TORCH_CPU.fn.aoti_torch_create_tensor_from_blob_v2(
      ptr,
      sizes.length,
      BigInt64Array.from(sizes, BigInt),
      BigInt64Array.from(strides, BigInt),
      offset,
      this.dtypeCode(dtype),
      this.deviceTypes[device],
      index,
      out,
      0,
      null,
      0,
    );
    checkTorch("aoti_torch_create_tensor_from_blob_v2", rc);
    if (out[0] === null) fail("aoti_torch_create_tensor_from_blob_v2 returned NULL");
    return new TorchTensor(out[0], this);
  }

  /** A new torch-owned tensor (torch's caching allocator). */
  empty(
    sizes: readonly number[],
    dtype: DType,
    opts: { strides?: readonly number[]; device?: "cuda" | "cpu"; deviceIndex?: number } = {},
  ): TorchTensor {
    const s = sizes.map((v, i) => checkInt(`sizes[${i}]`, v, 0));
    const st = (opts.strides ?? contiguousStrides(s)).map((v, i) => checkInt(`strides[${i}]`, v, 0));
    if (st.length !== s.length) fail(`strides has ${st.length} entries for ${s.length} sizes`);
    const device = checkOneOf("device", opts.device ?? "cuda", ["cuda", "cpu"] as const);
    const index = checkInt("deviceIndex", opts.deviceIndex ?? (device === "cuda" ? 0 : -1), -1, 1023);
    const out: OutPtr = [null];
    const rc = TORCH_CPU.fn.aoti_torch_empty_strided(
      s.length,
      BigInt64Array.from(s, BigInt),
      BigInt64Array.from(st, BigInt),
      this.dtypeCode(dtype),
      this.deviceTypes[device],
      index,
      out,
    );
    checkTorch("aoti_torch_empty_strided", rc);
    if (out[0] === null) fail("aoti_torch_empty_strided returned NULL");
    return new TorchTensor(out[0], this);
  }

  /**
   * Calls `op.overload` (e.g. "aten::relu", "") with every schema argument in order; returns the raw result
   * StableIValues (`returns` of them). Tensor results are new owning handles: wrap them with tensorAt().
   */
  call(
    op: string,
    overload: string,
    args: readonly OpArg[],
    opts: { returns?: number } = {},
  ): BigUint64Array {
    if (typeof op !== "string" || !op.includes("::"))
      fail(`op must be a qualified name like "aten::relu", got ${JSON.stringify(op)}`);
    if (typeof overload !== "string") fail('overload must be a string ("" for the default overload)');
    const returns = opts.returns ?? 1;
    const stack = encodeStack(args, returns, this);
    const rc = TORCH_CPU.fn.aoti_torch_call_dispatcher(op, overload, stack);
    checkTorch(`aoti_torch_call_dispatcher(${op}${overload ? `.${overload}` : ""})`, rc);
    return stack.subarray(0, returns);
  }

  /** Calls an op that returns one tensor. */
  callTensor(op: string, overload: string, args: readonly OpArg[]): TorchTensor {
    return this.tensorAt(this.call(op, overload, args, { returns: 1 }), 0);
  }

  /** Result `i` of a call, as an owned tensor. */
  tensorAt(results: BigUint64Array, i: number): TorchTensor {
    const h = results[i];
    if (h === undefined || h === 0n) fail(`result ${i} is not a tensor`);
    return new TorchTensor(h, this);
  }

  /** aten::add.Tensor (self + alpha·other) through the generated CUDA shim (the dispatcher cannot pass Scalar). */
  addTensor(self: TorchTensor, other: TorchTensor, alpha = 1): TorchTensor {
    if (!this.cuda) fail("addTensor needs LibTorch loaded with cuda");
    const out: OutPtr = [null];
    checkTorch(
      "aoti_torch_cuda_add_Tensor",
      TORCH_CUDA.fn.aoti_torch_cuda_add_Tensor(self.handle, other.handle, alpha, out),
    );
    if (out[0] === null) fail("aoti_torch_cuda_add_Tensor returned NULL");
    return new TorchTensor(out[0], this);
  }

  /** Torch's current CUDA stream on `deviceIndex` (null: the legacy default stream). */
  currentStream(deviceIndex = 0): bigint | null {
    if (!this.cuda) fail("streams need LibTorch loaded with cuda");
    const out: OutPtr = [null];
    checkTorch(
      "aoti_torch_get_current_cuda_stream",
      TORCH_CUDA.fn.aoti_torch_get_current_cuda_stream(checkInt("deviceIndex", deviceIndex, 0, 1023), out),
    );
    return out[0];
  }

  /** Makes ATen queue its work on `stream` (null: back to the legacy default stream). */
  setCurrentStream(stream: Stream | null, deviceIndex = 0): void {
    if (!this.cuda) fail("streams need LibTorch loaded with cuda");
    const rc = TORCH_CUDA.fn.torch_set_current_cuda_stream(
      streamHandle(stream),
      checkInt("deviceIndex", deviceIndex, 0, 1023),
    );
    checkTorch("torch_set_current_cuda_stream", rc);
  }

  /** Reads (and deletes) a StableListHandle of ints returned by an op. */
  takeIntList(list: bigint): bigint[] {
    const f = TORCH_CPU.fn;
    const n: OutNum = [0];
    checkTorch("torch_list_size", f.torch_list_size(list, n));
    const cell = new BigUint64Array(1);
    const values: bigint[] = [];
    for (let i = 0; i < n[0]; i++) {
      checkTorch("torch_list_get_item", f.torch_list_get_item(list, i, cell));
      values.push(BigInt.asIntN(64, cell[0]!));
    }
    checkTorch("torch_delete_list", f.torch_delete_list(list));
    return values;
  }

  // ---------------------------------------------------------------------------------- ArgHost

  newTensorHandle(handle: bigint): bigint {
    const out: OutPtr = [null];
    checkTorch("aoti_torch_new_tensor_handle", TORCH_CPU.fn.aoti_torch_new_tensor_handle(handle, out));
    if (out[0] === null) fail("aoti_torch_new_tensor_handle returned NULL");
    return out[0];
  }

  newIntList(values: readonly bigint[]): bigint {
    const f = TORCH_CPU.fn;
    const out: OutPtr = [null];
    checkTorch("torch_new_list_reserve_size", f.torch_new_list_reserve_size(values.length, out));
    if (out[0] === null) fail("torch_new_list_reserve_size returned NULL");
    for (const v of values) checkTorch("torch_list_push_back", f.torch_list_push_back(out[0], v));
    return out[0];
  }

  newString(value: string): bigint {
    const out: OutPtr = [null];
    const rc = TORCH_CPU.fn.torch_new_string_handle(value, Buffer.byteLength(value, "utf8"), out);
    checkTorch("torch_new_string_handle", rc);
    if (out[0] === null) fail("torch_new_string_handle returned NULL");
    return out[0];
  }

  box(value: bigint): bigint {
    const cell = TORCH_CPU.fn._Znwm(8);
    if (!cell) fail("operator new(8) returned NULL");
    koffi().encode(cell, "uint64_t", value);
    return cell;
  }
}

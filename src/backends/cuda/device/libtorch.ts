/**
 * LibTorch through its stable C shim: load it, wrap device buffers as (non-owning) tensors, call any aten op
 * through the dispatcher with typed arguments, and share the current CUDA stream with torch. Torch uses the
 * primary context, so buffers and streams from this runtime are valid on both sides.
 */

import { koffi } from "../../../ffi/koffi.js";
import { checkTorch } from "../../../ffi/status.js";

/** A failed native call (LibTorch's shim reports failures this way): re-exported so torch/ need not import ffi/. */
export { NativeCallError } from "../../../ffi/status.js";

import { TORCH_CPU, TORCH_CUDA } from "../../../ffi/torch.js";
import type { OutNum, OutPtr } from "../../../ffi/types.js";
import { DTYPE_BYTES, type DType } from "../../../ir/dtype.js";
import { type ArgHost, encodeStack, type OpArg } from "./dispatcher-args.js";
import { type Stream, streamHandle } from "./stream.js";
import { contiguousStrides, type TensorHost, TorchTensor, viewExtentBytes } from "./torch-tensor.js";
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

let instance: LibTorch | undefined;

export class LibTorch implements ArgHost, TensorHost {
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
    this.dispatch(op, overload, stack);
    return stack.subarray(0, returns);
  }

  /** The boxed dispatcher on a ready StableIValue stack; results are written over its first slots. */
  dispatch(op: string, overload: string, stack: BigUint64Array): void {
    const rc = TORCH_CPU.fn.aoti_torch_call_dispatcher(op, overload, stack);
    checkTorch(`aoti_torch_call_dispatcher(${op}${overload ? `.${overload}` : ""})`, rc);
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

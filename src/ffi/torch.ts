/**
 * PyTorch's stable C shim (`aoti_torch_*`, `torch_*`), from libtorch_cpu.so, plus the CUDA-only functions in
 * libtorch_cuda.so. Both are found in the installed PyTorch (`$SP/torch/lib`) and loaded by absolute path;
 * loading libtorch_cuda first pulls in libc10, libtorch_cpu, cuDNN and cuBLAS through its RPATH. Handles
 * (`AtenTensorHandle`, `StableListHandle`, `StringHandle`) are `void *`; a `StableIValue` is a `uint64_t`.
 * Every function returns `AOTITorchError` (0 success, 1 failure; the reason goes to stderr).
 */
import { defineLibrary } from "./library.js";
import type { OutNum, OutPtr, Ptr, Status } from "./types.js";

export interface TorchCpuApi {
  aoti_torch_abi_version(): number | bigint;
  aoti_torch_dtype_float16(): number;
  aoti_torch_dtype_bfloat16(): number;
  aoti_torch_dtype_float32(): number;
  aoti_torch_dtype_float64(): number;
  aoti_torch_dtype_int64(): number;
  aoti_torch_dtype_int32(): number;
  aoti_torch_dtype_int16(): number;
  aoti_torch_dtype_int8(): number;
  aoti_torch_dtype_uint8(): number;
  aoti_torch_dtype_bool(): number;
  aoti_torch_device_type_cpu(): number;
  aoti_torch_device_type_cuda(): number;
  aoti_torch_layout_strided(): number;
  aoti_torch_empty_strided(
    ndim: number,
    sizes: BigInt64Array,
    strides: BigInt64Array,
    dtype: number,
    deviceType: number,
    deviceIndex: number,
    ret: OutPtr,
  ): Status;
  aoti_torch_create_tensor_from_blob_v2(
    data: bigint,
    ndim: number,
    sizes: BigInt64Array,
    strides: BigInt64Array,
    storageOffset: number,
    dtype: number,
    deviceType: number,
    deviceIndex: number,
    ret: OutPtr,
    layout: number,
    opaqueMetadata: Uint8Array | null,
    opaqueMetadataSize: number,
  ): Status;
  aoti_torch_get_data_ptr(tensor: Ptr, ret: OutPtr): Status;
  aoti_torch_get_sizes(tensor: Ptr, ret: OutPtr): Status;
  aoti_torch_get_strides(tensor: Ptr, ret: OutPtr): Status;
  aoti_torch_get_dim(tensor: Ptr, ret: BigInt64Array): Status;
  aoti_torch_get_storage_offset(tensor: Ptr, ret: BigInt64Array): Status;
  aoti_torch_get_dtype(tensor: Ptr, ret: Int32Array): Status;
  aoti_torch_get_device_type(tensor: Ptr, ret: Int32Array): Status;
  aoti_torch_get_device_index(tensor: Ptr, ret: Int32Array): Status;
  aoti_torch_new_tensor_handle(orig: Ptr, ret: OutPtr): Status;
  aoti_torch_delete_tensor_object(tensor: Ptr): Status;
  aoti_torch_call_dispatcher(opName: string, overloadName: string, stack: BigUint64Array): Status;
  torch_call_dispatcher(opName: string, overloadName: string, stack: BigUint64Array, version: bigint): Status;
  torch_new_list_reserve_size(size: number, ret: OutPtr): Status;
  torch_list_push_back(list: Ptr, value: bigint): Status;
  torch_list_size(list: Ptr, size: OutNum): Status;
  torch_list_get_item(list: Ptr, index: number, value: BigUint64Array): Status;
  torch_delete_list(list: Ptr): Status;
  torch_new_string_handle(data: string, length: number, ret: OutPtr): Status;
  torch_delete_string(handle: Ptr): Status;
  /** libstdc++ `operator new(size_t)`, reached through libtorch's dependencies: boxes for `T?` arguments. */
  _Znwm(bytes: number): bigint;
}

export interface TorchCudaApi {
  aoti_torch_get_current_cuda_stream(deviceIndex: number, ret: OutPtr): Status;
  torch_set_current_cuda_stream(stream: Ptr, deviceIndex: number): Status;
  aoti_torch_cuda_add_Tensor(self: Ptr, other: Ptr, alpha: number, ret: OutPtr): Status;
}

export const TORCH_CPU = defineLibrary<TorchCpuApi>({
  id: "torch_cpu",
  title: "LibTorch (libtorch_cpu)",
  files: ["libtorch_cpu.so"],
  absolute: true,
  prototypes: {
    aoti_torch_abi_version: "uint64_t aoti_torch_abi_version(void)",
    aoti_torch_dtype_float16: "int32_t aoti_torch_dtype_float16(void)",
    aoti_torch_dtype_bfloat16: "int32_t aoti_torch_dtype_bfloat16(void)",
    aoti_torch_dtype_float32: "int32_t aoti_torch_dtype_float32(void)",
    aoti_torch_dtype_float64: "int32_t aoti_torch_dtype_float64(void)",
    aoti_torch_dtype_int64: "int32_t aoti_torch_dtype_int64(void)",
    aoti_torch_dtype_int32: "int32_t aoti_torch_dtype_int32(void)",
    aoti_torch_dtype_int16: "int32_t aoti_torch_dtype_int16(void)",
    aoti_torch_dtype_int8: "int32_t aoti_torch_dtype_int8(void)",
    aoti_torch_dtype_uint8: "int32_t aoti_torch_dtype_uint8(void)",
    aoti_torch_dtype_bool: "int32_t aoti_torch_dtype_bool(void)",
    aoti_torch_device_type_cpu: "int32_t aoti_torch_device_type_cpu(void)",
    aoti_torch_device_type_cuda: "int32_t aoti_torch_device_type_cuda(void)",
    aoti_torch_layout_strided: "int32_t aoti_torch_layout_strided(void)",
    aoti_torch_empty_strided:
      "int32_t aoti_torch_empty_strided(int64_t ndim, const int64_t *sizes, const int64_t *strides, " +
      "int32_t dtype, int32_t deviceType, int32_t deviceIndex, _Out_ void **ret)",
    aoti_torch_create_tensor_from_blob_v2:
      "int32_t aoti_torch_create_tensor_from_blob_v2(void *data, int64_t ndim, const int64_t *sizes, " +
      "const int64_t *strides, int64_t storageOffset, int32_t dtype, int32_t deviceType, int32_t deviceIndex, " +
      "_Out_ void **ret, int32_t layout, const uint8_t *opaqueMetadata, int64_t opaqueMetadataSize)",
    aoti_torch_get_data_ptr: "int32_t aoti_torch_get_data_ptr(void *tensor, _Out_ void **ret)",
    aoti_torch_get_sizes: "int32_t aoti_torch_get_sizes(void *tensor, _Out_ void **ret)",
    aoti_torch_get_strides: "int32_t aoti_torch_get_strides(void *tensor, _Out_ void **ret)",
    aoti_torch_get_dim: "int32_t aoti_torch_get_dim(void *tensor, int64_t *ret)",
    aoti_torch_get_storage_offset: "int32_t aoti_torch_get_storage_offset(void *tensor, int64_t *ret)",
    aoti_torch_get_dtype: "int32_t aoti_torch_get_dtype(void *tensor, int32_t *ret)",
    aoti_torch_get_device_type: "int32_t aoti_torch_get_device_type(void *tensor, int32_t *ret)",
    aoti_torch_get_device_index: "int32_t aoti_torch_get_device_index(void *tensor, int32_t *ret)",
    aoti_torch_new_tensor_handle: "int32_t aoti_torch_new_tensor_handle(void *orig, _Out_ void **ret)",
    aoti_torch_delete_tensor_object: "int32_t aoti_torch_delete_tensor_object(void *tensor)",
    aoti_torch_call_dispatcher:
      "int32_t aoti_torch_call_dispatcher(const char *opName, const char *overloadName, uint64_t *stack)",
    torch_call_dispatcher:
      "int32_t torch_call_dispatcher(const char *opName, const char *overloadName, uint64_t *stack, uint64_t version)",
    torch_new_list_reserve_size: "int32_t torch_new_list_reserve_size(size_t size, _Out_ void **ret)",
    torch_list_push_back: "int32_t torch_list_push_back(void *list, uint64_t value)",
    torch_list_size: "int32_t torch_list_size(void *list, _Out_ size_t *size)",
    torch_list_get_item: "int32_t torch_list_get_item(void *list, size_t index, uint64_t *value)",
    torch_delete_list: "int32_t torch_delete_list(void *list)",
    torch_new_string_handle:
      "int32_t torch_new_string_handle(const char *data, size_t length, _Out_ void **ret)",
    torch_delete_string: "int32_t torch_delete_string(void *handle)",
    _Znwm: "void *_Znwm(size_t bytes)",
  },
});

export const TORCH_CUDA = defineLibrary<TorchCudaApi>({
  id: "torch_cuda",
  title: "LibTorch (libtorch_cuda)",
  files: ["libtorch_cuda.so"],
  absolute: true,
  prototypes: {
    aoti_torch_get_current_cuda_stream:
      "int32_t aoti_torch_get_current_cuda_stream(int32_t deviceIndex, _Out_ void **ret)",
    torch_set_current_cuda_stream: "int32_t torch_set_current_cuda_stream(void *stream, int32_t deviceIndex)",
    aoti_torch_cuda_add_Tensor:
      "int32_t aoti_torch_cuda_add_Tensor(void *self, void *other, double alpha, _Out_ void **ret)",
  },
});

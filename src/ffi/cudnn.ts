/**
 * cuDNN 9 backend (graph) API (libcudnn.so.9). Loaded by absolute path only: through the loader cache the
 * soname can resolve to a system cuDNN that differs from the one torch ships, and torch loaded afterwards
 * then binds to that one too. Attribute arrays are TypedArrays (C `bool` is one byte: `Uint8Array`).
 */
import { defineLibrary } from "./library.js";
import type { OutPtr, Ptr, Status } from "./types.js";

export interface CudnnApi {
  cudnnGetVersion(): number;
  cudnnGetErrorString(status: number): string;
  cudnnGetLastErrorString(message: Uint8Array, maxSize: number): void;
  cudnnCreate(handle: OutPtr): Status;
  cudnnDestroy(handle: Ptr): Status;
  cudnnSetStream(handle: Ptr, stream: Ptr): Status;
  cudnnBackendCreateDescriptor(type: number, desc: OutPtr): Status;
  cudnnBackendDestroyDescriptor(desc: Ptr): Status;
  cudnnBackendSetAttribute(
    desc: Ptr,
    name: number,
    type: number,
    count: number,
    values: ArrayBufferView,
  ): Status;
  cudnnBackendGetAttribute(
    desc: Ptr,
    name: number,
    type: number,
    requested: number,
    count: BigInt64Array,
    values: ArrayBufferView | null,
  ): Status;
  cudnnBackendFinalize(desc: Ptr): Status;
  cudnnBackendExecute(handle: Ptr, plan: Ptr, variantPack: Ptr): Status;
}

export const CUDNN = defineLibrary<CudnnApi>({
  id: "cudnn",
  title: "cuDNN 9",
  files: ["libcudnn.so.9"],
  absolute: true,
  prototypes: {
    cudnnGetVersion: "size_t cudnnGetVersion(void)",
    cudnnGetErrorString: "const char *cudnnGetErrorString(int status)",
    cudnnGetLastErrorString: "void cudnnGetLastErrorString(void *message, size_t maxSize)",
    cudnnCreate: "int cudnnCreate(_Out_ void **handle)",
    cudnnDestroy: "int cudnnDestroy(void *handle)",
    cudnnSetStream: "int cudnnSetStream(void *handle, void *stream)",
    cudnnBackendCreateDescriptor: "int cudnnBackendCreateDescriptor(int type, _Out_ void **desc)",
    cudnnBackendDestroyDescriptor: "int cudnnBackendDestroyDescriptor(void *desc)",
    cudnnBackendSetAttribute:
      "int cudnnBackendSetAttribute(void *desc, int name, int type, int64_t count, const void *values)",
    cudnnBackendGetAttribute:
      "int cudnnBackendGetAttribute(void *desc, int name, int type, int64_t requested, int64_t *count, void *values)",
    cudnnBackendFinalize: "int cudnnBackendFinalize(void *desc)",
    cudnnBackendExecute: "int cudnnBackendExecute(void *handle, void *plan, void *variantPack)",
  },
});

/** `cudnnBackendDescriptorType_t`. */
export const DESC = {
  POINTWISE: 0,
  CONVOLUTION: 1,
  ENGINE: 2,
  ENGINECFG: 3,
  ENGINEHEUR: 4,
  EXECUTION_PLAN: 5,
  OPERATION_CONVOLUTION_FORWARD: 10,
  OPERATION_POINTWISE: 13,
  OPERATIONGRAPH: 15,
  VARIANT_PACK: 16,
  TENSOR: 17,
} as const;

/** `cudnnBackendAttributeType_t`. */
export const ATTR_TYPE = {
  HANDLE: 0,
  DATA_TYPE: 1,
  BOOLEAN: 2,
  INT64: 3,
  FLOAT: 4,
  DOUBLE: 5,
  VOID_PTR: 6,
  CONVOLUTION_MODE: 7,
  HEUR_MODE: 8,
  NUMERICAL_NOTE: 11,
  POINTWISE_MODE: 14,
  BACKEND_DESCRIPTOR: 15,
} as const;

/** `cudnnBackendAttributeName_t` values used here. */
export const ATTR = {
  POINTWISE_MODE: 0,
  POINTWISE_MATH_PREC: 1,
  POINTWISE_SWISH_BETA: 8,
  CONVOLUTION_COMP_TYPE: 100,
  CONVOLUTION_CONV_MODE: 101,
  CONVOLUTION_DILATIONS: 102,
  CONVOLUTION_FILTER_STRIDES: 103,
  CONVOLUTION_POST_PADDINGS: 104,
  CONVOLUTION_PRE_PADDINGS: 105,
  CONVOLUTION_SPATIAL_DIMS: 106,
  ENGINEHEUR_MODE: 200,
  ENGINEHEUR_OPERATION_GRAPH: 201,
  ENGINEHEUR_RESULTS: 202,
  ENGINECFG_ENGINE: 300,
  EXECUTION_PLAN_HANDLE: 400,
  EXECUTION_PLAN_ENGINE_CONFIG: 401,
  EXECUTION_PLAN_WORKSPACE_SIZE: 402,
  CONV_FWD_ALPHA: 700,
  CONV_FWD_BETA: 701,
  CONV_FWD_CONV_DESC: 702,
  CONV_FWD_W: 703,
  CONV_FWD_X: 704,
  CONV_FWD_Y: 705,
  POINTWISE_PW_DESCRIPTOR: 750,
  POINTWISE_XDESC: 751,
  POINTWISE_BDESC: 752,
  POINTWISE_YDESC: 753,
  OPERATIONGRAPH_HANDLE: 800,
  OPERATIONGRAPH_OPS: 801,
  TENSOR_BYTE_ALIGNMENT: 900,
  TENSOR_DATA_TYPE: 901,
  TENSOR_DIMENSIONS: 902,
  TENSOR_STRIDES: 903,
  TENSOR_UNIQUE_ID: 906,
  TENSOR_IS_VIRTUAL: 907,
  VARIANT_PACK_UNIQUE_IDS: 1000,
  VARIANT_PACK_DATA_POINTERS: 1001,
  VARIANT_PACK_WORKSPACE: 1003,
  ENGINE_GLOBAL_INDEX: 1301,
  ENGINE_NUMERICAL_NOTE: 1303,
} as const;

/** `cudnnDataType_t`. */
export const CUDNN_DATA = {
  FLOAT: 0,
  DOUBLE: 1,
  HALF: 2,
  INT32: 4,
  INT8: 3,
  BFLOAT16: 9,
  INT64: 10,
  FP8_E4M3: 12,
} as const;

/** `cudnnPointwiseMode_t` values used here. */
export const POINTWISE = {
  ADD: 0,
  MUL: 1,
  RELU_FWD: 100,
  TANH_FWD: 101,
  SIGMOID_FWD: 102,
  GELU_FWD: 104,
  SWISH_FWD: 106,
  GELU_APPROX_TANH_FWD: 107,
} as const;

/** `cudnnBackendNumericalNote_t` values used here. */
export const NUMERICAL_NOTE = { TENSOR_CORE: 0, DOWN_CONVERT_INPUTS: 1 } as const;

/** `cudnnBackendHeurMode_t`. */
export const HEUR_MODE = { INSTANT: 0, B: 1, FALLBACK: 2, A: 3 } as const;
/** `cudnnConvolutionMode_t`: PyTorch's convolution is cross-correlation. */
export const CONV_MODE = { CONVOLUTION: 0, CROSS_CORRELATION: 1 } as const;

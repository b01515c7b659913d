/**
 * cuBLASLt (libcublasLt.so.13): matmul with fused epilogues. Loaded by absolute path only. Attribute values
 * are passed as TypedArrays (their address, for the call); alpha/beta are host pointers of the scale type.
 */
import { defineLibrary } from "./library.js";
import type { Mem, OutNum, OutPtr, Ptr, Status } from "./types.js";

export interface CublasLtApi {
  cublasLtCreate(handle: OutPtr): Status;
  cublasLtDestroy(handle: Ptr): Status;
  cublasLtGetVersion(): number;
  cublasLtGetStatusName(status: number): string;
  cublasLtGetStatusString(status: number): string;
  cublasLtMatmulDescCreate(desc: OutPtr, computeType: number, scaleType: number): Status;
  cublasLtMatmulDescDestroy(desc: Ptr): Status;
  cublasLtMatmulDescSetAttribute(desc: Ptr, attr: number, buf: ArrayBufferView, bytes: number): Status;
  cublasLtMatrixLayoutCreate(layout: OutPtr, type: number, rows: number, cols: number, ld: number): Status;
  cublasLtMatrixLayoutDestroy(layout: Ptr): Status;
  cublasLtMatrixLayoutSetAttribute(layout: Ptr, attr: number, buf: ArrayBufferView, bytes: number): Status;
  cublasLtMatmulPreferenceCreate(pref: OutPtr): Status;
  cublasLtMatmulPreferenceDestroy(pref: Ptr): Status;
  cublasLtMatmulPreferenceSetAttribute(pref: Ptr, attr: number, buf: ArrayBufferView, bytes: number): Status;
  cublasLtMatmulAlgoGetHeuristic(
    handle: Ptr,
    desc: Ptr,
    a: Ptr,
    b: Ptr,
    c: Ptr,
    d: Ptr,
    pref: Ptr,
    requested: number,
    results: Uint8Array,
    returned: OutNum,
  ): Status;
  cublasLtMatmul(
    handle: Ptr,
    desc: Ptr,
    alpha: Mem,
    a: Mem,
    aLayout: Ptr,
    b: Mem,
    bLayout: Ptr,
    beta: Mem,
    c: Mem,
    cLayout: Ptr,
    d: Mem,
    dLayout: Ptr,
    algo: Uint8Array | null,
    workspace: Mem,
    workspaceBytes: number,
    stream: Ptr,
  ): Status;
}

export const CUBLASLT = defineLibrary<CublasLtApi>({
  id: "cublaslt",
  title: "cuBLASLt",
  files: ["libcublasLt.so.13", "libcublasLt.so.12"],
  absolute: true,
  prototypes: {
    cublasLtCreate: "int cublasLtCreate(_Out_ void **handle)",
    cublasLtDestroy: "int cublasLtDestroy(void *handle)",
    cublasLtGetVersion: "size_t cublasLtGetVersion(void)",
    cublasLtGetStatusName: "const char *cublasLtGetStatusName(int status)",
    cublasLtGetStatusString: "const char *cublasLtGetStatusString(int status)",
    cublasLtMatmulDescCreate:
      "int cublasLtMatmulDescCreate(_Out_ void **desc, int computeType, int scaleType)",
    cublasLtMatmulDescDestroy: "int cublasLtMatmulDescDestroy(void *desc)",
    cublasLtMatmulDescSetAttribute:
      "int cublasLtMatmulDescSetAttribute(void *desc, int attr, const void *buf, size_t bytes)",
    cublasLtMatrixLayoutCreate:
      "int cublasLtMatrixLayoutCreate(_Out_ void **layout, int type, uint64_t rows, uint64_t cols, int64_t ld)",
    cublasLtMatrixLayoutDestroy: "int cublasLtMatrixLayoutDestroy(void *layout)",
    cublasLtMatrixLayoutSetAttribute:
      "int cublasLtMatrixLayoutSetAttribute(void *layout, int attr, const void *buf, size_t bytes)",
    cublasLtMatmulPreferenceCreate: "int cublasLtMatmulPreferenceCreate(_Out_ void **pref)",
    cublasLtMatmulPreferenceDestroy: "int cublasLtMatmulPreferenceDestroy(void *pref)",
    cublasLtMatmulPreferenceSetAttribute:
      "int cublasLtMatmulPreferenceSetAttribute(void *pref, int attr, const void *buf, size_t bytes)",
    cublasLtMatmulAlgoGetHeuristic:
      "int cublasLtMatmulAlgoGetHeuristic(void *handle, void *desc, void *a, void *b, void *c, void *d, " +
      "void *pref, int requested, void *results, _Out_ int *returned)",
    cublasLtMatmul:
      "int cublasLtMatmul(void *handle, void *desc, const void *alpha, const void *a, void *aLayout, " +
      "const void *b, void *bLayout, const void *beta, const void *c, void *cLayout, void *d, void *dLayout, " +
      "const void *algo, void *workspace, size_t workspaceBytes, void *stream)",
  },
});

/** `cublasComputeType_t`. */
export const CUBLAS_COMPUTE = { f16: 64, f32: 68, f32FastTf32: 77, i32: 72 } as const;
/** `cudaDataType_t`. */
export const CUDA_R = { f32: 0, f16: 2, i8: 3, i32: 10, bf16: 14, f8e4m3: 28 } as const;
/** `cublasOperation_t`. */
export const CUBLAS_OP = { N: 0, T: 1 } as const;
/** `cublasLtMatmulDescAttributes_t`. */
export const MATMUL_DESC = {
  POINTER_MODE: 2,
  TRANSA: 3,
  TRANSB: 4,
  EPILOGUE: 7,
  BIAS_POINTER: 8,
  /** Device float scales of the fp8 operands (cuBLASLt's A and B), as 8-byte device addresses. */
  A_SCALE_POINTER: 17,
  B_SCALE_POINTER: 18,
  /** fp8 only (int8 value): 1 = fast accumulation (no periodic promotion of partial sums to full fp32). */
  FAST_ACCUM: 25,
  BIAS_DATA_TYPE: 26,
  /** How A's and B's scale pointers are read (`cublasLtMatmulMatrixScale_t`, int32). */
  A_SCALE_MODE: 31,
  B_SCALE_MODE: 32,
} as const;
/** `cublasLtMatmulMatrixScale_t`: one float, or one float per row of op(A) / column of op(B). */
export const MATRIX_SCALE = { SCALAR_32F: 0, OUTER_VEC_32F: 3 } as const;
/** `cublasLtPointerMode_t`: ALPHA_DEVICE_VECTOR_BETA_ZERO makes alpha a device float vector over D's rows. */
export const POINTER_MODE = { HOST: 0, DEVICE: 1, ALPHA_DEVICE_VECTOR_BETA_ZERO: 3 } as const;
/** `cublasLtMatrixLayoutAttribute_t`. */
export const LAYOUT_ATTR = { TYPE: 0, ORDER: 1, BATCH_COUNT: 5, STRIDED_BATCH_OFFSET: 6 } as const;
/** `cublasLtMatmulPreferenceAttributes_t`. */
export const PREF_ATTR = { MAX_WORKSPACE_BYTES: 1 } as const;
/** `cublasLtEpilogue_t`. */
export const EPILOGUE = { DEFAULT: 1, RELU: 2, BIAS: 4, RELU_BIAS: 6, GELU: 32, GELU_BIAS: 36 } as const;
/** `cublasLtMatmulHeuristicResult_t`: 96 bytes; the algo is the first 64. */
export const HEURISTIC_RESULT = { size: 96, algoBytes: 64, workspaceSize: 64, state: 72, waves: 76 } as const;

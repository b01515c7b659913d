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
  /** `algo`: the 64-byte cublasLtMatmulAlgo_t, written in place; `bytes` must equal the attribute's width. */
  cublasLtMatmulAlgoConfigSetAttribute(
    algo: Uint8Array,
    attr: number,
    buf: ArrayBufferView,
    bytes: number,
  ): Status;
  cublasLtMatmulAlgoConfigGetAttribute(
    algo: Uint8Array,
    attr: number,
    buf: ArrayBufferView,
    bytes: number,
    written: OutNum,
  ): Status;
  cublasLtMatmulAlgoCapGetAttribute(
    algo: Uint8Array,
    attr: number,
    buf: ArrayBufferView,
    bytes: number,
    written: OutNum,
  ): Status;
  /** `result`: a 96-byte cublasLtMatmulHeuristicResult_t (HEURISTIC_RESULT), its workspace and waves filled in. */
  cublasLtMatmulAlgoCheck(
    handle: Ptr,
    desc: Ptr,
    a: Ptr,
    b: Ptr,
    c: Ptr,
    d: Ptr,
    algo: Uint8Array,
    result: Uint8Array,
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
    cublasLtMatmulAlgoConfigSetAttribute:
      "int cublasLtMatmulAlgoConfigSetAttribute(void *algo, int attr, const void *buf, size_t bytes)",
    cublasLtMatmulAlgoConfigGetAttribute:
      "int cublasLtMatmulAlgoConfigGetAttribute(const void *algo, int attr, void *buf, size_t bytes, " +
      "_Out_ size_t *written)",
    cublasLtMatmulAlgoCapGetAttribute:
      "int cublasLtMatmulAlgoCapGetAttribute(const void *algo, int attr, void *buf, size_t bytes, " +
      "_Out_ size_t *written)",
    cublasLtMatmulAlgoCheck:
      "int cublasLtMatmulAlgoCheck(void *handle, void *desc, void *a, void *b, void *c, void *d, " +
      "const void *algo, void *result)",
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

/*
 * The algorithm's configuration and capabilities (split-K). Values and value widths from cublasLt.h of CUDA 12, as
 * NVIDIA's own copy has them: NVIDIA/TensorRT plugin/common/cublasLtWrapper.h (commit 147005ff, "Copy of CUBLASLT
 * cublasLtReductionScheme_t", cublasLtMatmulAlgoConfigAttributes, cublasLtMatmulAlgoCapAttributes, cublasLtMatmulTile),
 * cross-checked against older copies of cublasLt.h itself (e.g. ggerganov/llama.cpp include/cuda/cublasLt.h, CUDA 11),
 * whose doc comments give the value types (the enums only grew, no value moved); INNER_SHAPE_ID and
 * CLUSTER_SHAPE_ID, newer, are uint16 in the cuBLAS documentation's table. A ConfigSet/Get whose byte count differs
 * from the attribute's width is refused (INVALID_VALUE), so the widths are part of the table.
 */

/** `cublasLtMatmulAlgoConfigAttributes_t`. */
export const ALGO_CONFIG = {
  /** int32, read-only (set by cublasLtMatmulAlgoInit). */
  ID: 0,
  /** uint32, a cublasLtMatmulTile_t (LT_TILE_SHAPES). */
  TILE_ID: 1,
  /** uint32, default 1: K cut into this many parts computed in parallel, summed by REDUCTION_SCHEME. */
  SPLITK_NUM: 2,
  /** uint32, a cublasLtReductionScheme_t (REDUCTION_SCHEME). */
  REDUCTION_SCHEME: 3,
  /** uint32, 0 or 1. */
  CTA_SWIZZLING: 4,
  CUSTOM_OPTION: 5,
  /** uint32, a cublasLtMatmulStages_t. */
  STAGES_ID: 6,
  /** uint16 (CUDA 11.8+). */
  INNER_SHAPE_ID: 7,
  /** uint16 (CUDA 11.8+, Hopper clusters). */
  CLUSTER_SHAPE_ID: 8,
} as const;
export type AlgoConfigAttribute = keyof typeof ALGO_CONFIG;
/** Bytes of each configuration attribute's value. */
export const ALGO_CONFIG_BYTES: Readonly<Record<AlgoConfigAttribute, 2 | 4>> = {
  ID: 4,
  TILE_ID: 4,
  SPLITK_NUM: 4,
  REDUCTION_SCHEME: 4,
  CTA_SWIZZLING: 4,
  CUSTOM_OPTION: 4,
  STAGES_ID: 4,
  INNER_SHAPE_ID: 2,
  CLUSTER_SHAPE_ID: 2,
};
/** `cublasLtMatmulAlgoCapAttributes_t` (those read here; each a 4-byte value). */
export const ALGO_CAP = {
  /** int32: 0 no split-K. */
  SPLITK_SUPPORT: 0,
  /** uint32: the REDUCTION_SCHEME bits the algorithm supports. */
  REDUCTION_SCHEME_MASK: 1,
  CTA_SWIZZLING_SUPPORT: 2,
  STRIDED_BATCH_SUPPORT: 3,
  OUT_OF_PLACE_RESULT_SUPPORT: 4,
  CUSTOM_OPTION_MAX: 7,
  /** uint32: the cublasLtEpilogue_t bits supported. */
  EPILOGUE_MASK: 12,
} as const;
/**
 * `cublasLtReductionScheme_t`: how split-K's partial sums are added. INPLACE: in D itself (output type), ordered by
 * counters in the workspace; COMPUTE_TYPE / OUTPUT_TYPE: partials in the workspace (fp32 / D's type), summed by a
 * second kernel.
 */
export const REDUCTION_SCHEME = { NONE: 0, INPLACE: 1, COMPUTE_TYPE: 2, OUTPUT_TYPE: 4, MASK: 7 } as const;
/** `cublasLtMatmulTile_t` ids 1–35 → [rows, cols] of D (cuBLASLt's column-major D); later ids are not listed here. */
export const LT_TILE_SHAPES: Readonly<Record<number, readonly [number, number]>> = {
  1: [8, 8],
  2: [8, 16],
  3: [16, 8],
  4: [8, 32],
  5: [16, 16],
  6: [32, 8],
  7: [8, 64],
  8: [16, 32],
  9: [32, 16],
  10: [64, 8],
  11: [32, 32],
  12: [32, 64],
  13: [64, 32],
  14: [32, 128],
  15: [64, 64],
  16: [128, 32],
  17: [64, 128],
  18: [128, 64],
  19: [64, 256],
  20: [128, 128],
  21: [256, 64],
  22: [64, 512],
  23: [128, 256],
  24: [256, 128],
  25: [512, 64],
  26: [64, 96],
  27: [96, 64],
  28: [96, 128],
  29: [128, 160],
  30: [160, 128],
  31: [192, 128],
  32: [128, 192],
  33: [128, 96],
  34: [32, 256],
  35: [256, 32],
};

/**
 * cuSPARSELt (libcusparseLt.so.0): matmuls with a 2:4 structured-sparse operand on sparse tensor cores.
 * Loaded by absolute path only (the copy PyTorch's wheels ship in site-packages/nvidia/cusparselt/lib).
 *
 * Its handle and descriptors are opaque structs the caller owns (`struct { uint8_t data[N]; }`), passed by
 * pointer, and the library keeps pointers to them between calls: allocate each one in native memory that
 * lives as long as the plan (OPAQUE_BYTES), never in a JS buffer. Attribute values are TypedArrays (their
 * address, for the call); alpha/beta are host floats.
 */
import { defineLibrary } from "./library.js";
import type { Mem, OutNum, Ptr, Status } from "./types.js";

export interface CusparseLtApi {
  cusparseLtInit(handle: Ptr): Status;
  cusparseLtDestroy(handle: Ptr): Status;
  cusparseLtGetVersion(handle: Ptr, version: OutNum): Status;
  cusparseLtGetErrorName(status: number): string;
  cusparseLtGetErrorString(status: number): string;
  cusparseLtDenseDescriptorInit(
    handle: Ptr,
    mat: Ptr,
    rows: number,
    cols: number,
    ld: number,
    alignment: number,
    valueType: number,
    order: number,
  ): Status;
  cusparseLtStructuredDescriptorInit(
    handle: Ptr,
    mat: Ptr,
    rows: number,
    cols: number,
    ld: number,
    alignment: number,
    valueType: number,
    order: number,
    sparsity: number,
  ): Status;
  cusparseLtMatDescriptorDestroy(mat: Ptr): Status;
  cusparseLtMatmulDescriptorInit(
    handle: Ptr,
    desc: Ptr,
    opA: number,
    opB: number,
    a: Ptr,
    b: Ptr,
    c: Ptr,
    d: Ptr,
    computeType: number,
  ): Status;
  cusparseLtMatmulDescSetAttribute(
    handle: Ptr,
    desc: Ptr,
    attr: number,
    buf: ArrayBufferView,
    bytes: number,
  ): Status;
  cusparseLtMatmulAlgSelectionInit(handle: Ptr, alg: Ptr, desc: Ptr, algorithm: number): Status;
  cusparseLtMatmulAlgSelectionDestroy(alg: Ptr): Status;
  cusparseLtMatmulAlgSetAttribute(
    handle: Ptr,
    alg: Ptr,
    attr: number,
    buf: ArrayBufferView,
    bytes: number,
  ): Status;
  cusparseLtMatmulAlgGetAttribute(
    handle: Ptr,
    alg: Ptr,
    attr: number,
    buf: ArrayBufferView,
    bytes: number,
  ): Status;
  cusparseLtMatmulPlanInit(handle: Ptr, plan: Ptr, desc: Ptr, alg: Ptr): Status;
  cusparseLtMatmulPlanDestroy(plan: Ptr): Status;
  cusparseLtMatmulGetWorkspace(handle: Ptr, plan: Ptr, bytes: OutNum): Status;
  cusparseLtSpMMAPrune(handle: Ptr, desc: Ptr, dense: Mem, pruned: Mem, alg: number, stream: Ptr): Status;
  cusparseLtSpMMAPruneCheck(handle: Ptr, desc: Ptr, dense: Mem, valid: Mem, stream: Ptr): Status;
  cusparseLtSpMMACompressedSize(handle: Ptr, plan: Ptr, compressed: OutNum, buffer: OutNum): Status;
  cusparseLtSpMMACompress(
    handle: Ptr,
    plan: Ptr,
    dense: Mem,
    compressed: Mem,
    buffer: Mem,
    stream: Ptr,
  ): Status;
  cusparseLtMatmulSearch(
    handle: Ptr,
    plan: Ptr,
    alpha: Mem,
    a: Mem,
    b: Mem,
    beta: Mem,
    c: Mem,
    d: Mem,
    workspace: Mem,
    streams: BigUint64Array,
    numStreams: number,
  ): Status;
  cusparseLtMatmul(
    handle: Ptr,
    plan: Ptr,
    alpha: Mem,
    a: Mem,
    b: Mem,
    beta: Mem,
    c: Mem,
    d: Mem,
    workspace: Mem,
    streams: BigUint64Array,
    numStreams: number,
  ): Status;
}

export const CUSPARSELT = defineLibrary<CusparseLtApi>({
  id: "cusparselt",
  title: "cuSPARSELt",
  files: ["libcusparseLt.so.0"],
  absolute: true,
  prototypes: {
    cusparseLtInit: "int cusparseLtInit(void *handle)",
    cusparseLtDestroy: "int cusparseLtDestroy(void *handle)",
    cusparseLtGetVersion: "int cusparseLtGetVersion(void *handle, _Out_ int *version)",
    cusparseLtGetErrorName: "const char *cusparseLtGetErrorName(int status)",
    cusparseLtGetErrorString: "const char *cusparseLtGetErrorString(int status)",
    cusparseLtDenseDescriptorInit:
      "int cusparseLtDenseDescriptorInit(void *handle, void *mat, int64_t rows, int64_t cols, int64_t ld, " +
      "uint32_t alignment, int valueType, int order)",
    cusparseLtStructuredDescriptorInit:
      "int cusparseLtStructuredDescriptorInit(void *handle, void *mat, int64_t rows, int64_t cols, int64_t ld, " +
      "uint32_t alignment, int valueType, int order, int sparsity)",
    cusparseLtMatDescriptorDestroy: "int cusparseLtMatDescriptorDestroy(void *mat)",
    cusparseLtMatmulDescriptorInit:
      "int cusparseLtMatmulDescriptorInit(void *handle, void *desc, int opA, int opB, void *a, void *b, " +
      "void *c, void *d, int computeType)",
    cusparseLtMatmulDescSetAttribute:
      "int cusparseLtMatmulDescSetAttribute(void *handle, void *desc, int attr, const void *buf, size_t bytes)",
    cusparseLtMatmulAlgSelectionInit:
      "int cusparseLtMatmulAlgSelectionInit(void *handle, void *alg, void *desc, int algorithm)",
    cusparseLtMatmulAlgSelectionDestroy: "int cusparseLtMatmulAlgSelectionDestroy(void *alg)",
    cusparseLtMatmulAlgSetAttribute:
      "int cusparseLtMatmulAlgSetAttribute(void *handle, void *alg, int attr, const void *buf, size_t bytes)",
    cusparseLtMatmulAlgGetAttribute:
      "int cusparseLtMatmulAlgGetAttribute(void *handle, void *alg, int attr, void *buf, size_t bytes)",
    cusparseLtMatmulPlanInit: "int cusparseLtMatmulPlanInit(void *handle, void *plan, void *desc, void *alg)",
    cusparseLtMatmulPlanDestroy: "int cusparseLtMatmulPlanDestroy(void *plan)",
    cusparseLtMatmulGetWorkspace:
      "int cusparseLtMatmulGetWorkspace(void *handle, void *plan, _Out_ size_t *bytes)",
    cusparseLtSpMMAPrune:
      "int cusparseLtSpMMAPrune(void *handle, void *desc, const void *dense, void *pruned, int alg, void *stream)",
    cusparseLtSpMMAPruneCheck:
      "int cusparseLtSpMMAPruneCheck(void *handle, void *desc, const void *dense, void *valid, void *stream)",
    cusparseLtSpMMACompressedSize:
      "int cusparseLtSpMMACompressedSize(void *handle, void *plan, _Out_ size_t *compressed, _Out_ size_t *buffer)",
    cusparseLtSpMMACompress:
      "int cusparseLtSpMMACompress(void *handle, void *plan, const void *dense, void *compressed, void *buffer, " +
      "void *stream)",
    cusparseLtMatmulSearch:
      "int cusparseLtMatmulSearch(void *handle, void *plan, const void *alpha, const void *a, const void *b, " +
      "const void *beta, const void *c, void *d, void *workspace, void *streams, int numStreams)",
    cusparseLtMatmul:
      "int cusparseLtMatmul(void *handle, void *plan, const void *alpha, const void *a, const void *b, " +
      "const void *beta, const void *c, void *d, void *workspace, void *streams, int numStreams)",
  },
});

/**
 * Bytes allocated for each opaque struct. cuSPARSELt 0.8.1's header declares all five (handle, matrix, matmul,
 * algorithm selection, plan) as `struct { alignas(16) uint8_t data[512]; }` (cusparseLt.h lines 54-62); older
 * releases declared 1024 and, before 0.3, 11024 bytes. A larger block than the library writes is harmless, a
 * smaller one is not, so this covers every release. `calloc` (koffi.alloc) gives the 16-byte alignment the
 * `alignas(16)` asks for on x86-64 and aarch64; sparselt-plan.ts checks it before the first call.
 */
export const OPAQUE_BYTES = 16384;
/** The `alignas(16)` of the opaque structs (cusparseLt.h lines 54-62). */
export const OPAQUE_ALIGNMENT = 16;
/**
 * What cuSPARSELt requires of every operand address (d_A, d_B, d_C, d_D): a multiple of 16 bytes (the library
 * refuses others with "unsupported alignment value for d_A (...), only multiples of 16 are supported"), and the
 * `alignment` argument of the descriptor inits, in bytes, a multiple of 16.
 */
export const OPERAND_ALIGNMENT = 16;
/**
 * `cusparseOrder_t`, from cusparse.h: COL = 1, ROW = 2 (0 is no order; cuSPARSELt refuses it as parameter 8,
 * `order`). Not cuBLASLt's cublasLtOrder_t, where COL = 0 and ROW = 1.
 */
export const CUSPARSE_ORDER = { COL: 1, ROW: 2 } as const;
/** `cusparseOperation_t`, from cusparse.h: NON_TRANSPOSE = 0, TRANSPOSE = 1 (CONJUGATE_TRANSPOSE = 2 unused). */
export const CUSPARSE_OP = { N: 0, T: 1 } as const;
/**
 * `cusparseComputeType` since cuSPARSELt 0.5.2 (cusparseLt.h lines 148-152: 32I, 16F, 32F); before it fp16 took
 * COMPUTE_16F = 0. fp16/bf16 operands use 32F (PyTorch's _cslt_sparse_mm does too), so alpha/beta are floats.
 */
export const CUSPARSE_COMPUTE = { i32: 0, f16: 1, f32: 2 } as const;
/** `cusparseLtSparsity_t` (line 105): 2:4 for fp16/bf16/int8/fp8, 1:2 for fp32. */
export const SPARSITY_50_PERCENT = 0;
/**
 * `cusparseLtMatmulDescAttribute_t` (lines 167-190). ACTIVATION_RELU and ACTIVATION_GELU take an int (0/1);
 * BIAS_POINTER takes the device address itself (`&ptr, sizeof(void *)`), a vector of D's rows in C's data type
 * for fp16/bf16 (fp32 only for int8 output): there is no bias-type attribute. cuSPARSELt 0.8.1 fuses GELU only
 * for int8 and fp8 inputs ("GeLU is only supported in the following types: A/B=INT8 ..., A/B=E4M3 ...", from
 * the library), never for fp16/bf16 — see sparseActivationRefusal in sparselt-plan.ts.
 */
export const SPARSELT_MATMUL_DESC = {
  ACTIVATION_RELU: 0,
  ACTIVATION_GELU: 3,
  BIAS_POINTER: 8,
  SPARSE_MAT_POINTER: 9,
} as const;
/** `cusparseLtMatmulAlg_t` (line 218). */
export const SPARSELT_ALG_DEFAULT = 0;
/** `cusparseLtMatmulAlgAttribute_t` (lines 232-239); every one an int. */
export const SPARSELT_ALG_ATTR = {
  CONFIG_ID: 0,
  CONFIG_MAX_ID: 1,
  SEARCH_ITERATIONS: 2,
  SPLIT_K: 3,
} as const;
/** `cusparseLtPruneAlg_t` (lines 321-324). */
export const SPARSELT_PRUNE = { TILE: 0, STRIP: 1 } as const;

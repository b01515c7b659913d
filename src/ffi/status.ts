/**
 * Status codes → typed errors. Each error names the C call, the status name and number, and whatever detail
 * the library offers (cuGetErrorString, the NVRTC log, cudnnGetLastErrorString). Detail lookups never load a
 * library: they are used only when it is already loaded.
 */
import { NativeError } from "../errors.js";
import { CUBLASLT } from "./cublaslt.js";
import { CUDA } from "./cuda.js";
import { CUDNN } from "./cudnn.js";
import { CUSPARSELT } from "./cusparselt.js";
import { NVRTC } from "./nvrtc.js";
import type { OutStr } from "./types.js";

/** A failed call into a native library. */
export class NativeCallError extends NativeError {
  constructor(
    readonly library: string,
    readonly call: string,
    readonly status: number,
    readonly statusName: string,
    readonly detail: string | undefined,
    code: string,
  ) {
    super(`${call} failed: ${statusName} (${status})${detail ? `: ${detail}` : ""}`, code);
    this.name = "NativeCallError";
  }
}

export class CudaError extends NativeCallError {
  constructor(call: string, status: number, detail = cudaDetail(status)) {
    super("cuda", call, status, cudaStatusName(status), detail, "native.cuda");
    this.name = "CudaError";
  }
}

export class NvrtcError extends NativeCallError {
  constructor(
    call: string,
    status: number,
    /** The compiler log, for NVRTC_ERROR_COMPILATION. */
    readonly log = "",
  ) {
    super("nvrtc", call, status, nvrtcStatusName(status), log.trim() || undefined, "native.nvrtc");
    this.name = "NvrtcError";
  }
}

export class CublasError extends NativeCallError {
  constructor(call: string, status: number, detail?: string) {
    super(
      "cublaslt",
      call,
      status,
      cublasStatusName(status),
      detail ?? cublasDetail(status),
      "native.cublas",
    );
    this.name = "CublasError";
  }
}

export class CudnnError extends NativeCallError {
  constructor(call: string, status: number, detail = cudnnLastError()) {
    super("cudnn", call, status, cudnnStatusName(status), detail, "native.cudnn");
    this.name = "CudnnError";
  }

  /** A 3000-range status: this graph or engine is not supported (try another engine). */
  get notSupported(): boolean {
    return this.status >= 3000 && this.status < 4000;
  }
}

export class CusparseLtError extends NativeCallError {
  constructor(call: string, status: number, detail = cusparseLtDetail(status)) {
    super("cusparselt", call, status, cusparseStatusName(status), detail, "native.cusparselt");
    this.name = "CusparseLtError";
  }
}

export class TorchShimError extends NativeCallError {
  constructor(
    call: string,
    status: number,
    detail = "PyTorch printed the exception and its backtrace on stderr",
  ) {
    super(
      "torch",
      call,
      status,
      status === 1 ? "AOTI_TORCH_FAILURE" : `AOTITorchError ${status}`,
      detail,
      "native.torch",
    );
    this.name = "TorchShimError";
  }
}

// ------------------------------------------------------------------------------------------ checks

export function checkCuda(call: string, status: number): void {
  if (status !== 0) throw new CudaError(call, status);
}

export function checkNvrtc(call: string, status: number, log?: string): void {
  if (status !== 0) throw new NvrtcError(call, status, log);
}

export function checkCublas(call: string, status: number): void {
  if (status !== 0) throw new CublasError(call, status);
}

export function checkCudnn(call: string, status: number): void {
  if (status !== 0) throw new CudnnError(call, status);
}

export function checkCusparseLt(call: string, status: number): void {
  if (status !== 0) throw new CusparseLtError(call, status);
}

export function checkTorch(call: string, status: number): void {
  if (status !== 0) throw new TorchShimError(call, status);
}

// ------------------------------------------------------------------------------------------ names

const CUDA_STATUS: Readonly<Record<number, string>> = {
  0: "SUCCESS",
  1: "INVALID_VALUE",
  2: "OUT_OF_MEMORY",
  3: "NOT_INITIALIZED",
  4: "DEINITIALIZED",
  34: "STUB_LIBRARY",
  46: "DEVICE_UNAVAILABLE",
  100: "NO_DEVICE",
  101: "INVALID_DEVICE",
  102: "DEVICE_NOT_LICENSED",
  200: "INVALID_IMAGE",
  201: "INVALID_CONTEXT",
  202: "CONTEXT_ALREADY_CURRENT",
  205: "MAP_FAILED",
  209: "NO_BINARY_FOR_GPU",
  214: "ECC_UNCORRECTABLE",
  216: "CONTEXT_ALREADY_IN_USE",
  218: "INVALID_PTX",
  221: "JIT_COMPILER_NOT_FOUND",
  222: "UNSUPPORTED_PTX_VERSION",
  223: "JIT_COMPILATION_DISABLED",
  300: "INVALID_SOURCE",
  301: "FILE_NOT_FOUND",
  302: "SHARED_OBJECT_SYMBOL_NOT_FOUND",
  303: "SHARED_OBJECT_INIT_FAILED",
  304: "OPERATING_SYSTEM",
  400: "INVALID_HANDLE",
  401: "ILLEGAL_STATE",
  500: "NOT_FOUND",
  600: "NOT_READY",
  700: "ILLEGAL_ADDRESS",
  701: "LAUNCH_OUT_OF_RESOURCES",
  702: "LAUNCH_TIMEOUT",
  708: "PRIMARY_CONTEXT_ACTIVE",
  709: "CONTEXT_IS_DESTROYED",
  710: "ASSERT",
  714: "HARDWARE_STACK_ERROR",
  715: "ILLEGAL_INSTRUCTION",
  716: "MISALIGNED_ADDRESS",
  717: "INVALID_ADDRESS_SPACE",
  718: "INVALID_PC",
  719: "LAUNCH_FAILED",
  720: "COOPERATIVE_LAUNCH_TOO_LARGE",
  800: "NOT_PERMITTED",
  801: "NOT_SUPPORTED",
  802: "SYSTEM_NOT_READY",
  803: "SYSTEM_DRIVER_MISMATCH",
  804: "COMPAT_NOT_SUPPORTED_ON_DEVICE",
  900: "STREAM_CAPTURE_UNSUPPORTED",
  901: "STREAM_CAPTURE_INVALIDATED",
  902: "STREAM_CAPTURE_MERGE",
  903: "STREAM_CAPTURE_UNMATCHED",
  904: "STREAM_CAPTURE_UNJOINED",
  905: "STREAM_CAPTURE_ISOLATION",
  906: "STREAM_CAPTURE_IMPLICIT",
  907: "CAPTURED_EVENT",
  908: "STREAM_CAPTURE_WRONG_THREAD",
  909: "TIMEOUT",
  910: "GRAPH_EXEC_UPDATE_FAILURE",
  999: "UNKNOWN",
};

const NVRTC_STATUS: readonly string[] = [
  "SUCCESS",
  "OUT_OF_MEMORY",
  "PROGRAM_CREATION_FAILURE",
  "INVALID_INPUT",
  "INVALID_PROGRAM",
  "INVALID_OPTION",
  "COMPILATION",
  "BUILTIN_OPERATION_FAILURE",
  "NO_NAME_EXPRESSIONS_AFTER_COMPILATION",
  "NO_LOWERED_NAMES_BEFORE_COMPILATION",
  "NAME_EXPRESSION_NOT_VALID",
  "INTERNAL_ERROR",
  "TIME_FILE_WRITE_FAILED",
  "NO_PCH_CREATE_ATTEMPTED",
  "PCH_CREATE_HEAP_EXHAUSTED",
  "PCH_CREATE",
  "CANCELLED",
  "TIME_TRACE_FILE_WRITE_FAILED",
];

const CUBLAS_STATUS: Readonly<Record<number, string>> = {
  0: "SUCCESS",
  1: "NOT_INITIALIZED",
  3: "ALLOC_FAILED",
  7: "INVALID_VALUE",
  8: "ARCH_MISMATCH",
  11: "MAPPING_ERROR",
  13: "EXECUTION_FAILED",
  14: "INTERNAL_ERROR",
  15: "NOT_SUPPORTED",
  16: "LICENSE_ERROR",
};

/** `cusparseStatus_t`, which cuSPARSELt returns. */
const CUSPARSE_STATUS: readonly string[] = [
  "SUCCESS",
  "NOT_INITIALIZED",
  "ALLOC_FAILED",
  "INVALID_VALUE",
  "ARCH_MISMATCH",
  "MAPPING_ERROR",
  "EXECUTION_FAILED",
  "INTERNAL_ERROR",
  "MATRIX_TYPE_NOT_SUPPORTED",
  "ZERO_PIVOT",
  "NOT_SUPPORTED",
  "INSUFFICIENT_RESOURCES",
];

const CUDNN_STATUS: Readonly<Record<number, string>> = {
  0: "SUCCESS",
  1001: "NOT_INITIALIZED",
  1002: "SUBLIBRARY_VERSION_MISMATCH",
  1003: "SERIALIZATION_VERSION_MISMATCH",
  1004: "DEPRECATED",
  1005: "LICENSE_ERROR",
  1006: "RUNTIME_IN_PROGRESS",
  1007: "RUNTIME_FP_OVERFLOW",
  1008: "SUBLIBRARY_LOADING_FAILED",
  2000: "BAD_PARAM",
  2001: "INVALID_VALUE",
  2002: "BAD_PARAM_NULL_POINTER",
  2003: "BAD_PARAM_MISALIGNED_POINTER",
  2004: "BAD_PARAM_NOT_FINALIZED",
  2005: "BAD_PARAM_OUT_OF_BOUND",
  2006: "BAD_PARAM_SIZE_INSUFFICIENT",
  2007: "BAD_PARAM_STREAM_MISMATCH",
  2008: "BAD_PARAM_SHAPE_MISMATCH",
  2009: "BAD_PARAM_DUPLICATED_ENTRIES",
  2010: "BAD_PARAM_ATTRIBUTE_TYPE",
  2011: "BAD_PARAM_CUDA_GRAPH_MISMATCH",
  2012: "BAD_PARAM_DESCRIPTOR_TYPE",
  3000: "NOT_SUPPORTED",
  3001: "NOT_SUPPORTED_GRAPH_PATTERN",
  3002: "NOT_SUPPORTED_SHAPE",
  3003: "NOT_SUPPORTED_DATA_TYPE",
  3004: "NOT_SUPPORTED_LAYOUT",
  3005: "NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER",
  3006: "NOT_SUPPORTED_INCOMPATIBLE_CUDART",
  3007: "NOT_SUPPORTED_ARCH_MISMATCH",
  3008: "NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING",
  3009: "NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE",
  3010: "NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT",
  3011: "NOT_SUPPORTED_PADDING",
  3012: "NOT_SUPPORTED_BAD_LAUNCH_PARAM",
  3013: "NOT_SUPPORTED_CUDA_GRAPH_NATIVE_API",
  3014: "NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE",
  4000: "INTERNAL_ERROR",
  4001: "INTERNAL_ERROR_COMPILATION_FAILED",
  4002: "INTERNAL_ERROR_UNEXPECTED_VALUE",
  4003: "INTERNAL_ERROR_HOST_ALLOCATION_FAILED",
  4004: "INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED",
  4005: "INTERNAL_ERROR_BAD_LAUNCH_PARAM",
  4006: "INTERNAL_ERROR_TEXTURE_CREATION_FAILED",
  5000: "EXECUTION_FAILED",
  5001: "EXECUTION_FAILED_CUDA_DRIVER",
  5002: "EXECUTION_FAILED_CUBLAS",
  5003: "EXECUTION_FAILED_CUDART",
  5004: "EXECUTION_FAILED_CURAND",
};

const CUDNN_RANGE: Readonly<Record<number, string>> = {
  1: "NOT_INITIALIZED",
  2: "BAD_PARAM",
  3: "NOT_SUPPORTED",
  4: "INTERNAL_ERROR",
  5: "EXECUTION_FAILED",
};

export function cudaStatusName(status: number): string {
  return `CUDA_ERROR_${CUDA_STATUS[status] ?? `UNRECOGNIZED_${status}`}`;
}

export function nvrtcStatusName(status: number): string {
  return `NVRTC_ERROR_${NVRTC_STATUS[status] ?? `UNRECOGNIZED_${status}`}`;
}

export function cublasStatusName(status: number): string {
  return `CUBLAS_STATUS_${CUBLAS_STATUS[status] ?? `UNRECOGNIZED_${status}`}`;
}

export function cusparseStatusName(status: number): string {
  return `CUSPARSE_STATUS_${CUSPARSE_STATUS[status] ?? `UNRECOGNIZED_${status}`}`;
}

export function cudnnStatusName(status: number): string {
  const exact = CUDNN_STATUS[status];
  if (exact) return `CUDNN_STATUS_${exact}`;
  const range = CUDNN_RANGE[Math.floor(status / 1000)];
  return range ? `CUDNN_STATUS_${range}_${status}` : `CUDNN_STATUS_UNRECOGNIZED_${status}`;
}

// ------------------------------------------------------------------------------------------ details

/** What to do about the CUDA statuses that mean "no usable GPU here" rather than a torchc bug. */
const CUDA_ADVICE: Readonly<Record<number, string>> = {
  34: "the libcuda.so.1 that was loaded is the CUDA toolkit's stub; install the NVIDIA driver, or set TORCHC_LIBRARY_PATH to the driver's folder",
  46: "the GPU is busy or in exclusive-process mode (check nvidia-smi)",
  100: "no NVIDIA GPU is visible to this process (check nvidia-smi and CUDA_VISIBLE_DEVICES), or use the reference backend (--backend reference) on the CPU",
  803: "the driver library and the loaded kernel module are different versions (a driver update needs a reboot)",
};

/** cuGetErrorString's text when the driver is loaded, then what to do, on one line. */
export function cudaDetail(status: number): string | undefined {
  let text: string | undefined;
  if (CUDA.isLoaded) {
    try {
      const out: OutStr = [null];
      if (CUDA.fn.cuGetErrorString(status, out) === 0 && out[0]) text = out[0];
    } catch {
      text = undefined;
    }
  }
  const advice = CUDA_ADVICE[status];
  if (text && advice) return `${text}; ${advice}`;
  return text ?? advice;
}

/** What a library says through `describe`: undefined where it is not loaded, `describe` throws or says nothing. */
function libraryText(lib: { readonly isLoaded: boolean }, describe: () => string): string | undefined {
  if (!lib.isLoaded) return undefined;
  try {
    return describe() || undefined;
  } catch {
    return undefined;
  }
}

function cublasDetail(status: number): string | undefined {
  return libraryText(CUBLASLT, () => CUBLASLT.fn.cublasLtGetStatusString(status));
}

/** cuSPARSELt's own description of a status, when it is loaded and has cusparseLtGetErrorString (0.6+). */
function cusparseLtDetail(status: number): string | undefined {
  return libraryText(CUSPARSELT, () => CUSPARSELT.fn.cusparseLtGetErrorString(status));
}

/** cuDNN's most recent error message (thread-local in cuDNN), or undefined. */
export function cudnnLastError(): string | undefined {
  return libraryText(CUDNN, () => {
    const buf = new Uint8Array(2048);
    CUDNN.fn.cudnnGetLastErrorString(buf, buf.length);
    const end = buf.indexOf(0);
    return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end)).trim();
  });
}

/** NVRTC's own description of a status, when NVRTC is loaded. */
export function nvrtcErrorString(status: number): string | undefined {
  return libraryText(NVRTC, () => NVRTC.fn.nvrtcGetErrorString(status));
}

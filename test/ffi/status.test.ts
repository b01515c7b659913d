import { describe, expect, it } from "vitest";
import { NativeError, TorchcError } from "../../src/errors.js";
import {
  CublasError,
  CudaError,
  CudnnError,
  checkCublas,
  checkCuda,
  checkCudnn,
  checkNvrtc,
  checkTorch,
  cublasStatusName,
  cudaStatusName,
  cudnnStatusName,
  NvrtcError,
  nvrtcStatusName,
  TorchShimError,
} from "../../src/ffi/status.js";

describe("status names", () => {
  it("names CUDA driver results", () => {
    expect(cudaStatusName(2)).toBe("CUDA_ERROR_OUT_OF_MEMORY");
    expect(cudaStatusName(201)).toBe("CUDA_ERROR_INVALID_CONTEXT");
    expect(cudaStatusName(700)).toBe("CUDA_ERROR_ILLEGAL_ADDRESS");
    expect(cudaStatusName(900)).toBe("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED");
    expect(cudaStatusName(901)).toBe("CUDA_ERROR_STREAM_CAPTURE_INVALIDATED");
    expect(cudaStatusName(12345)).toBe("CUDA_ERROR_UNRECOGNIZED_12345");
  });

  it("names NVRTC, cuBLAS and cuDNN statuses", () => {
    expect(nvrtcStatusName(6)).toBe("NVRTC_ERROR_COMPILATION");
    expect(nvrtcStatusName(99)).toBe("NVRTC_ERROR_UNRECOGNIZED_99");
    expect(cublasStatusName(15)).toBe("CUBLAS_STATUS_NOT_SUPPORTED");
    expect(cublasStatusName(7)).toBe("CUBLAS_STATUS_INVALID_VALUE");
    expect(cudnnStatusName(3000)).toBe("CUDNN_STATUS_NOT_SUPPORTED");
    expect(cudnnStatusName(2004)).toBe("CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED");
    expect(cudnnStatusName(3099)).toBe("CUDNN_STATUS_NOT_SUPPORTED_3099");
    expect(cudnnStatusName(7)).toBe("CUDNN_STATUS_UNRECOGNIZED_7");
  });
});

describe("typed errors", () => {
  it("passes status 0 and throws a typed error naming the call and the status otherwise", () => {
    expect(() => checkCuda("cuInit", 0)).not.toThrow();
    const e = catchError(() => checkCuda("cuMemAlloc_v2", 2));
    expect(e).toBeInstanceOf(CudaError);
    expect(e).toBeInstanceOf(NativeError);
    expect(e).toBeInstanceOf(TorchcError);
    expect(e.message).toMatch(/^cuMemAlloc_v2 failed: CUDA_ERROR_OUT_OF_MEMORY \(2\)/);
    expect(e).toMatchObject({
      call: "cuMemAlloc_v2",
      status: 2,
      statusName: "CUDA_ERROR_OUT_OF_MEMORY",
      code: "native.cuda",
    });
  });

  it("says what to do when there is no usable GPU, on one line, and nothing extra for other statuses", () => {
    const e = catchError(() => checkCuda("cuInit", 100));
    expect(e.message).toMatch(/^cuInit failed: CUDA_ERROR_NO_DEVICE \(100\): .*no NVIDIA GPU is visible/);
    expect(e.message).toContain("--backend reference");
    expect(e.message).not.toContain("\n");
    expect(e.message).not.toContain("pip install");
    expect(catchError(() => checkCuda("cuInit", 34)).message).toContain("stub");
    expect(catchError(() => checkCuda("cuCtxSynchronize", 700)).message).not.toMatch(/nvidia-smi|reference/);
  });

  it("keeps the NVRTC log", () => {
    const e = catchError(() =>
      checkNvrtc("nvrtcCompileProgram", 6, "k.cu(3): error: identifier x is undefined\n"),
    );
    expect(e).toBeInstanceOf(NvrtcError);
    expect((e as NvrtcError).log).toContain("identifier x");
    expect(e.message).toContain("NVRTC_ERROR_COMPILATION (6): k.cu(3): error: identifier x is undefined");
  });

  it("types cuBLAS, cuDNN and torch failures", () => {
    expect(catchError(() => checkCublas("cublasLtMatmul", 15))).toBeInstanceOf(CublasError);
    const cudnn = catchError(() => checkCudnn("cudnnBackendFinalize(plan)", 3001)) as CudnnError;
    expect(cudnn).toBeInstanceOf(CudnnError);
    expect(cudnn.notSupported).toBe(true);
    expect(cudnn.message).toContain("CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN (3001)");
    expect(new CudnnError("x", 2000).notSupported).toBe(false);
    const torch = catchError(() => checkTorch("aoti_torch_call_dispatcher(aten::relu)", 1));
    expect(torch).toBeInstanceOf(TorchShimError);
    expect(torch.message).toContain("aoti_torch_call_dispatcher(aten::relu) failed: AOTI_TORCH_FAILURE (1)");
    expect(torch.message).toContain("stderr");
  });
});

function catchError(f: () => void): Error & { code?: string } {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a throw");
}

import { describe, expect, it } from "vitest";
import * as device from "../../src/backends/cuda/device/index.js";
import * as ffi from "../../src/ffi/index.js";

describe("importing src/ffi and the device runtime on a machine without a GPU", () => {
  it("loads no library", () => {
    expect(ffi.ALL_LIBRARIES.map((l) => l.id)).toEqual([
      "cuda",
      "nvrtc",
      "cublaslt",
      "cudnn",
      "cusparselt",
      "torch_cuda",
      "torch_cpu",
    ]);
    for (const lib of ffi.ALL_LIBRARIES) expect(lib.isLoaded, lib.id).toBe(false);
    expect(typeof device.DeviceBuffer.alloc).toBe("function");
  });

  it("declares every prototype so that koffi parses it, under the symbol name it is keyed by", () => {
    const k = ffi.koffi();
    for (const lib of ffi.ALL_LIBRARIES) {
      for (const [name, proto] of Object.entries(lib.def.prototypes as Record<string, string>)) {
        const type = k.type(k.proto(proto));
        expect(type.proto?.name, `${lib.id}: ${proto}`).toBe(name);
      }
    }
  });

  it("binds the driver's versioned symbols, never the 32-bit-size ABI names", () => {
    const names = Object.keys(ffi.CUDA.def.prototypes);
    for (const legacy of [
      "cuMemAlloc",
      "cuMemFree",
      "cuMemcpyHtoD",
      "cuMemcpyDtoH",
      "cuMemsetD8",
      "cuStreamDestroy",
      "cuEventDestroy",
    ]) {
      expect(names).not.toContain(legacy);
      expect(names).toContain(`${legacy}_v2`);
    }
    expect(names).toContain("cuEventElapsedTime_v2");
    expect(names).toContain("cuStreamBeginCapture_v2");
  });

  it("loads cuDNN, cuBLASLt, cuSPARSELt, NVRTC and LibTorch by absolute path only", () => {
    expect(ffi.CUDNN.def.absolute).toBe(true);
    expect(ffi.CUBLASLT.def.absolute).toBe(true);
    expect(ffi.NVRTC.def.absolute).toBe(true);
    expect(ffi.CUSPARSELT.def.absolute).toBe(true);
    expect(ffi.TORCH_CPU.def.absolute).toBe(true);
    expect(ffi.TORCH_CUDA.def.absolute).toBe(true);
    expect(ffi.CUDA.def.absolute).toBe(false);
  });
});

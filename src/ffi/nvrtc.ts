/**
 * NVRTC (libnvrtc.so.13): CUDA C++ → CUBIN or PTX at run time. Loaded by absolute path only. Output buffers
 * (log, CUBIN, PTX) are declared `void *` so a Node Buffer of the reported size is filled in place.
 */
import { defineLibrary } from "./library.js";
import type { OutNum, OutPtr, OutStr, Ptr, Status } from "./types.js";

export interface NvrtcApi {
  nvrtcVersion(major: OutNum, minor: OutNum): Status;
  nvrtcGetNumSupportedArchs(count: OutNum): Status;
  nvrtcGetSupportedArchs(archs: Int32Array): Status;
  nvrtcCreateProgram(
    prog: OutPtr,
    src: string,
    name: string,
    numHeaders: number,
    headers: string[] | null,
    includeNames: string[] | null,
  ): Status;
  nvrtcAddNameExpression(prog: Ptr, nameExpression: string): Status;
  nvrtcCompileProgram(prog: Ptr, numOptions: number, options: string[] | null): Status;
  nvrtcGetProgramLogSize(prog: Ptr, size: OutNum): Status;
  nvrtcGetProgramLog(prog: Ptr, log: Uint8Array): Status;
  nvrtcGetCUBINSize(prog: Ptr, size: OutNum): Status;
  nvrtcGetCUBIN(prog: Ptr, cubin: Uint8Array): Status;
  nvrtcGetPTXSize(prog: Ptr, size: OutNum): Status;
  nvrtcGetPTX(prog: Ptr, ptx: Uint8Array): Status;
  nvrtcGetLoweredName(prog: Ptr, nameExpression: string, lowered: OutStr): Status;
  nvrtcDestroyProgram(prog: OutPtr): Status;
  nvrtcGetErrorString(result: number): string;
}

export const NVRTC = defineLibrary<NvrtcApi>({
  id: "nvrtc",
  title: "NVRTC",
  files: ["libnvrtc.so.13", "libnvrtc.so.12"],
  absolute: true,
  prototypes: {
    nvrtcVersion: "int nvrtcVersion(_Out_ int *major, _Out_ int *minor)",
    nvrtcGetNumSupportedArchs: "int nvrtcGetNumSupportedArchs(_Out_ int *count)",
    nvrtcGetSupportedArchs: "int nvrtcGetSupportedArchs(int *archs)",
    nvrtcCreateProgram:
      "int nvrtcCreateProgram(_Out_ void **prog, const char *src, const char *name, int numHeaders, " +
      "const char **headers, const char **includeNames)",
    nvrtcAddNameExpression: "int nvrtcAddNameExpression(void *prog, const char *nameExpression)",
    nvrtcCompileProgram: "int nvrtcCompileProgram(void *prog, int numOptions, const char **options)",
    nvrtcGetProgramLogSize: "int nvrtcGetProgramLogSize(void *prog, _Out_ size_t *size)",
    nvrtcGetProgramLog: "int nvrtcGetProgramLog(void *prog, void *log)",
    nvrtcGetCUBINSize: "int nvrtcGetCUBINSize(void *prog, _Out_ size_t *size)",
    nvrtcGetCUBIN: "int nvrtcGetCUBIN(void *prog, void *cubin)",
    nvrtcGetPTXSize: "int nvrtcGetPTXSize(void *prog, _Out_ size_t *size)",
    nvrtcGetPTX: "int nvrtcGetPTX(void *prog, void *ptx)",
    nvrtcGetLoweredName:
      "int nvrtcGetLoweredName(void *prog, const char *nameExpression, _Out_ const char **lowered)",
    nvrtcDestroyProgram: "int nvrtcDestroyProgram(_Inout_ void **prog)",
    nvrtcGetErrorString: "const char *nvrtcGetErrorString(int result)",
  },
});

/**
 * CUDA driver API (libcuda.so.1, CUDA 13). Symbols are the versioned names `cuda.h` maps to (`cuMemAlloc` →
 * `cuMemAlloc_v2`): the unsuffixed ones are the old 32-bit-size ABI and must never be bound. All handles are
 * `void *`; `CUdeviceptr` outs are `unsigned long long *` filled in place from a `BigUint64Array(1)`, so the
 * address always comes back as a BigInt.
 */
import { defineLibrary } from "./library.js";
import type { DevicePtr, Mem, OutNum, OutPtr, OutStr, Ptr, Status } from "./types.js";

export interface CudaApi {
  cuInit(flags: number): Status;
  cuDriverGetVersion(version: OutNum): Status;
  cuGetErrorString(error: number, str: OutStr): Status;
  cuGetErrorName(error: number, str: OutStr): Status;
  cuDeviceGetCount(count: OutNum): Status;
  cuDeviceGet(device: OutNum, ordinal: number): Status;
  cuDeviceGetName(name: Uint8Array, len: number, device: number): Status;
  cuDeviceGetAttribute(value: OutNum, attribute: number, device: number): Status;
  cuDeviceTotalMem_v2(bytes: OutNum, device: number): Status;
  cuDevicePrimaryCtxRetain(ctx: OutPtr, device: number): Status;
  cuDevicePrimaryCtxRelease_v2(device: number): Status;
  cuCtxSetCurrent(ctx: Ptr): Status;
  cuCtxGetCurrent(ctx: OutPtr): Status;
  cuCtxSynchronize(): Status;
  cuMemGetInfo_v2(free: OutNum, total: OutNum): Status;
  cuMemAlloc_v2(dptr: BigUint64Array, bytes: number): Status;
  cuMemFree_v2(dptr: DevicePtr): Status;
  cuMemAllocAsync(dptr: BigUint64Array, bytes: number, stream: Ptr): Status;
  cuMemFreeAsync(dptr: DevicePtr, stream: Ptr): Status;
  cuMemAllocHost_v2(pp: OutPtr, bytes: number): Status;
  cuLaunchHostFunc(stream: Ptr, fn: unknown, userData: Ptr): Status;
  cuMemFreeHost(p: bigint): Status;
  cuMemHostRegister_v2(p: bigint, bytes: number, flags: number): Status;
  cuMemHostUnregister(p: bigint): Status;
  cuMemcpyHtoD_v2(dst: DevicePtr, src: Mem, bytes: number): Status;
  cuMemcpyDtoH_v2(dst: Mem, src: DevicePtr, bytes: number): Status;
  cuMemcpyDtoD_v2(dst: DevicePtr, src: DevicePtr, bytes: number): Status;
  cuMemcpyHtoDAsync_v2(dst: DevicePtr, src: Mem, bytes: number, stream: Ptr): Status;
  cuMemcpyDtoHAsync_v2(dst: Mem, src: DevicePtr, bytes: number, stream: Ptr): Status;
  cuMemcpyDtoDAsync_v2(dst: DevicePtr, src: DevicePtr, bytes: number, stream: Ptr): Status;
  cuMemsetD8_v2(dst: DevicePtr, value: number, count: number): Status;
  cuMemsetD8Async(dst: DevicePtr, value: number, count: number, stream: Ptr): Status;
  cuMemsetD32_v2(dst: DevicePtr, value: number, count: number): Status;
  cuMemsetD32Async(dst: DevicePtr, value: number, count: number, stream: Ptr): Status;
  cuModuleLoadData(module: OutPtr, image: Mem): Status;
  cuModuleUnload(module: bigint): Status;
  cuModuleGetFunction(fn: OutPtr, module: bigint, name: string): Status;
  cuFuncSetAttribute(fn: bigint, attribute: number, value: number): Status;
  cuFuncGetAttribute(value: OutNum, attribute: number, fn: bigint): Status;
  cuLaunchKernel(
    fn: bigint,
    gridX: number,
    gridY: number,
    gridZ: number,
    blockX: number,
    blockY: number,
    blockZ: number,
    sharedMemBytes: number,
    stream: Ptr,
    kernelParams: BigUint64Array | null,
    extra: BigUint64Array | null,
  ): Status;
  /** `config` is the address of a CUlaunchConfig (see LAUNCH_CONFIG_BYTES). */
  cuLaunchKernelEx(
    config: bigint,
    fn: bigint,
    kernelParams: BigUint64Array | null,
    extra: BigUint64Array | null,
  ): Status;
  cuStreamCreate(stream: OutPtr, flags: number): Status;
  cuStreamSynchronize(stream: Ptr): Status;
  cuStreamQuery(stream: Ptr): Status;
  cuStreamWaitEvent(stream: Ptr, event: bigint, flags: number): Status;
  cuStreamDestroy_v2(stream: bigint): Status;
  cuStreamBeginCapture_v2(stream: bigint, mode: number): Status;
  cuStreamEndCapture(stream: bigint, graph: OutPtr): Status;
  cuStreamIsCapturing(stream: Ptr, status: OutNum): Status;
  cuEventCreate(event: OutPtr, flags: number): Status;
  cuEventRecord(event: bigint, stream: Ptr): Status;
  cuEventQuery(event: bigint): Status;
  cuEventSynchronize(event: bigint): Status;
  cuEventElapsedTime_v2(ms: OutNum, start: bigint, end: bigint): Status;
  cuEventDestroy_v2(event: bigint): Status;
  cuGraphInstantiateWithFlags(exec: OutPtr, graph: bigint, flags: number | bigint): Status;
  cuGraphUpload(exec: bigint, stream: Ptr): Status;
  cuGraphLaunch(exec: bigint, stream: Ptr): Status;
  cuGraphExecDestroy(exec: bigint): Status;
  cuGraphDestroy(graph: bigint): Status;
  cuGraphGetNodes(graph: bigint, nodes: BigUint64Array | null, count: OutNum): Status;
}

export const CUDA = defineLibrary<CudaApi>({
  id: "cuda",
  title: "the CUDA driver",
  files: ["libcuda.so.1"],
  absolute: false,
  prototypes: {
    cuInit: "int cuInit(unsigned int flags)",
    cuDriverGetVersion: "int cuDriverGetVersion(_Out_ int *version)",
    cuGetErrorString: "int cuGetErrorString(int error, _Out_ const char **str)",
    cuGetErrorName: "int cuGetErrorName(int error, _Out_ const char **str)",
    cuDeviceGetCount: "int cuDeviceGetCount(_Out_ int *count)",
    cuDeviceGet: "int cuDeviceGet(_Out_ int *device, int ordinal)",
    cuDeviceGetName: "int cuDeviceGetName(void *name, int len, int device)",
    cuDeviceGetAttribute: "int cuDeviceGetAttribute(_Out_ int *value, int attribute, int device)",
    cuDeviceTotalMem_v2: "int cuDeviceTotalMem_v2(_Out_ size_t *bytes, int device)",
    cuDevicePrimaryCtxRetain: "int cuDevicePrimaryCtxRetain(_Out_ void **ctx, int device)",
    cuDevicePrimaryCtxRelease_v2: "int cuDevicePrimaryCtxRelease_v2(int device)",
    cuCtxSetCurrent: "int cuCtxSetCurrent(void *ctx)",
    cuCtxGetCurrent: "int cuCtxGetCurrent(_Out_ void **ctx)",
    cuCtxSynchronize: "int cuCtxSynchronize(void)",
    cuMemGetInfo_v2: "int cuMemGetInfo_v2(_Out_ size_t *free, _Out_ size_t *total)",
    cuMemAlloc_v2: "int cuMemAlloc_v2(unsigned long long *dptr, size_t bytes)",
    cuMemFree_v2: "int cuMemFree_v2(unsigned long long dptr)",
    cuMemAllocAsync: "int cuMemAllocAsync(unsigned long long *dptr, size_t bytes, void *stream)",
    cuMemFreeAsync: "int cuMemFreeAsync(unsigned long long dptr, void *stream)",
    cuMemAllocHost_v2: "int cuMemAllocHost_v2(_Out_ void **pp, size_t bytes)",
    cuMemFreeHost: "int cuMemFreeHost(void *p)",
    cuMemHostRegister_v2: "int cuMemHostRegister_v2(void *p, size_t bytes, unsigned int flags)",
    cuMemHostUnregister: "int cuMemHostUnregister(void *p)",
    // fn: a koffi-registered `void fn(void *userData)` (see backends/cuda/device/completion.ts).
    cuLaunchHostFunc: "int cuLaunchHostFunc(void *stream, void *fn, void *userData)",
    cuMemcpyHtoD_v2: "int cuMemcpyHtoD_v2(unsigned long long dst, const void *src, size_t bytes)",
    cuMemcpyDtoH_v2: "int cuMemcpyDtoH_v2(void *dst, unsigned long long src, size_t bytes)",
    cuMemcpyDtoD_v2: "int cuMemcpyDtoD_v2(unsigned long long dst, unsigned long long src, size_t bytes)",
    cuMemcpyHtoDAsync_v2:
      "int cuMemcpyHtoDAsync_v2(unsigned long long dst, const void *src, size_t bytes, void *stream)",
    cuMemcpyDtoHAsync_v2:
      "int cuMemcpyDtoHAsync_v2(void *dst, unsigned long long src, size_t bytes, void *stream)",
    cuMemcpyDtoDAsync_v2:
      "int cuMemcpyDtoDAsync_v2(unsigned long long dst, unsigned long long src, size_t bytes, void *stream)",
    cuMemsetD8_v2: "int cuMemsetD8_v2(unsigned long long dst, unsigned char value, size_t count)",
    cuMemsetD8Async:
      "int cuMemsetD8Async(unsigned long long dst, unsigned char value, size_t count, void *stream)",
    cuMemsetD32_v2: "int cuMemsetD32_v2(unsigned long long dst, unsigned int value, size_t count)",
    cuMemsetD32Async:
      "int cuMemsetD32Async(unsigned long long dst, unsigned int value, size_t count, void *stream)",
    cuModuleLoadData: "int cuModuleLoadData(_Out_ void **module, const void *image)",
    cuModuleUnload: "int cuModuleUnload(void *module)",
    cuModuleGetFunction: "int cuModuleGetFunction(_Out_ void **fn, void *module, const char *name)",
    cuFuncSetAttribute: "int cuFuncSetAttribute(void *fn, int attribute, int value)",
    cuFuncGetAttribute: "int cuFuncGetAttribute(_Out_ int *value, int attribute, void *fn)",
    cuLaunchKernel:
      "int cuLaunchKernel(void *fn, unsigned int gridX, unsigned int gridY, unsigned int gridZ, " +
      "unsigned int blockX, unsigned int blockY, unsigned int blockZ, unsigned int sharedMemBytes, " +
      "void *stream, void **kernelParams, void **extra)",
    cuLaunchKernelEx: "int cuLaunchKernelEx(void *config, void *fn, void **kernelParams, void **extra)",
    cuStreamCreate: "int cuStreamCreate(_Out_ void **stream, unsigned int flags)",
    cuStreamSynchronize: "int cuStreamSynchronize(void *stream)",
    cuStreamQuery: "int cuStreamQuery(void *stream)",
    cuStreamWaitEvent: "int cuStreamWaitEvent(void *stream, void *event, unsigned int flags)",
    cuStreamDestroy_v2: "int cuStreamDestroy_v2(void *stream)",
    cuStreamBeginCapture_v2: "int cuStreamBeginCapture_v2(void *stream, int mode)",
    cuStreamEndCapture: "int cuStreamEndCapture(void *stream, _Out_ void **graph)",
    cuStreamIsCapturing: "int cuStreamIsCapturing(void *stream, _Out_ int *status)",
    cuEventCreate: "int cuEventCreate(_Out_ void **event, unsigned int flags)",
    cuEventRecord: "int cuEventRecord(void *event, void *stream)",
    cuEventQuery: "int cuEventQuery(void *event)",
    cuEventSynchronize: "int cuEventSynchronize(void *event)",
    cuEventElapsedTime_v2: "int cuEventElapsedTime_v2(_Out_ float *ms, void *start, void *end)",
    cuEventDestroy_v2: "int cuEventDestroy_v2(void *event)",
    cuGraphInstantiateWithFlags:
      "int cuGraphInstantiateWithFlags(_Out_ void **exec, void *graph, unsigned long long flags)",
    cuGraphUpload: "int cuGraphUpload(void *exec, void *stream)",
    cuGraphLaunch: "int cuGraphLaunch(void *exec, void *stream)",
    cuGraphExecDestroy: "int cuGraphExecDestroy(void *exec)",
    cuGraphDestroy: "int cuGraphDestroy(void *graph)",
    cuGraphGetNodes: "int cuGraphGetNodes(void *graph, void **nodes, _Inout_ size_t *count)",
  },
});

/** `CUdevice_attribute` values used here. */
export const CU_DEVICE_ATTRIBUTE = {
  MAX_THREADS_PER_BLOCK: 1,
  MAX_SHARED_MEMORY_PER_BLOCK: 8,
  MULTIPROCESSOR_COUNT: 16,
  COMPUTE_CAPABILITY_MAJOR: 75,
  COMPUTE_CAPABILITY_MINOR: 76,
  MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: 97,
} as const;

/** `CUfunction_attribute` values used here. */
export const CU_FUNC_ATTRIBUTE = {
  MAX_THREADS_PER_BLOCK: 0,
  SHARED_SIZE_BYTES: 1,
  NUM_REGS: 4,
  MAX_DYNAMIC_SHARED_SIZE_BYTES: 8,
} as const;

export const CU_STREAM_NON_BLOCKING = 1;
/**
 * CUlaunchConfig { u32 gridDimX..Z, blockDimX..Z, sharedMemBytes; CUstream hStream @32; CUlaunchAttribute* attrs @40;
 * u32 numAttrs @48 } and CUlaunchAttribute { u32 id; pad[4]; union value[64] @8 } (cuda.h, CUDA 12+).
 */
export const LAUNCH_CONFIG_BYTES = 56;
export const LAUNCH_ATTRIBUTE_BYTES = 72;
/** CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION: the kernel may start before the previous one ends. */
export const CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6;
export const CU_EVENT_DEFAULT = 0;
export const CU_EVENT_BLOCKING_SYNC = 1;
export const CU_EVENT_DISABLE_TIMING = 2;

/** `CUstreamCaptureMode`. */
export const CU_STREAM_CAPTURE_MODE = { global: 0, threadLocal: 1, relaxed: 2 } as const;
/** `CUstreamCaptureStatus`. */
export const CU_STREAM_CAPTURE_STATUS = { none: 0, active: 1, invalidated: 2 } as const;
/** `CUgraphInstantiate_flags`. */
export const CU_GRAPH_INSTANTIATE = {
  autoFreeOnLaunch: 1,
  upload: 2,
  deviceLaunch: 4,
  useNodePriority: 8,
} as const;

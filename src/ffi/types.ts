/** TypeScript shapes of the values koffi 3 passes to and from C. */

/** A native pointer or handle as koffi 3 returns it: a BigInt, or null for NULL. */
export type Ptr = bigint | null;

/** What a pointer parameter accepts: a pointer, or host memory whose address is passed for the call only. */
export type Mem = bigint | null | ArrayBufferView | ArrayBuffer;

/** A one-cell out parameter declared `_Out_ T **`: pass `[null]`, read `[0]` after the call. */
export type OutPtr = [Ptr];

/** A one-cell out parameter declared `_Out_ int *`, `_Out_ size_t *`, `_Out_ float *`: pass `[0]`. */
export type OutNum = [number];

/** A one-cell out parameter declared `_Out_ const char **`: koffi returns the C string. */
export type OutStr = [string | null];

/** A CUDA device address (`CUdeviceptr`, unsigned 64-bit). */
export type DevicePtr = bigint;

/** The int status every C call here returns (CUresult, nvrtcResult, cublasStatus_t, cudnnStatus_t, AOTITorchError). */
export type Status = number;

/**
 * Tensors that live in device memory, for chaining models and pre/post-processing without going through the
 * host. `run()` accepts them as inputs (copied on the module's stream into the execution context, no host
 * round trip) and returns them when asked (`run(inputs, { outputs: "device" })`, or into buffers from
 * `allocateOutputs()`). A DeviceTensor is owned by whoever it says; `dispose()` frees it, and using it after
 * that is refused before any pointer reaches C.
 */
import type { DType } from "../ir/dtype.js";
import type { Shape } from "../ir/tensor.js";

export interface DeviceTensor {
  readonly kind: "device";
  readonly dtype: DType;
  readonly shape: Shape;
  /** Device address (CUdeviceptr) of the first element; contiguous, row-major. */
  readonly ptr: bigint;
  /** Bytes valid from `ptr`. */
  readonly bytes: number;
  /** CUDA device ordinal. */
  readonly device: number;
  /** Who frees it: "torchc" (a run or allocate*() made it; call dispose()) or "user" (wrapped memory). */
  readonly owner: "torchc" | "user";
  /** False after dispose(). */
  readonly alive: boolean;
  dispose(): void;
}

export function isDeviceTensor(x: unknown): x is DeviceTensor {
  return typeof x === "object" && x !== null && (x as { kind?: unknown }).kind === "device";
}

/**
 * Thin koffi bindings to the native libraries torchc calls. Importing this module loads nothing: each library
 * is found (see discover.ts) and loaded on the first use of one of its functions.
 */

export * from "./cublaslt.js";
export * from "./cuda.js";
export * from "./cudnn.js";
export * from "./cusparselt.js";
export * from "./discover.js";
export { koffi } from "./koffi.js";
export * from "./library.js";
export * from "./nvrtc.js";
export * from "./status.js";
export * from "./torch.js";
export * from "./types.js";

import { CUBLASLT } from "./cublaslt.js";
import { CUDA } from "./cuda.js";
import { CUDNN } from "./cudnn.js";
import { CUSPARSELT } from "./cusparselt.js";
import type { NativeLibrary } from "./library.js";
import { NVRTC } from "./nvrtc.js";
import { TORCH_CPU, TORCH_CUDA } from "./torch.js";

/** Every library declared here, in the order an environment report lists them. */
export const ALL_LIBRARIES: readonly NativeLibrary<object>[] = [
  CUDA,
  NVRTC,
  CUBLASLT,
  CUDNN,
  CUSPARSELT,
  TORCH_CUDA,
  TORCH_CPU,
];

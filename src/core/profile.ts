/**
 * The per-step profile of one forward pass (`torchc bench --profile`, `CompiledModule.profile`): each step run
 * on its own between two CUDA events, repeated, medians. A contract between the backend that measures it and
 * the runtime and CLI that show it.
 */

/** What ran in a step. */
export type ProfiledKind =
  | "element"
  | "rows"
  | "attention"
  | "gemv"
  | "pointwise"
  | "cublaslt"
  /** The generated small-M tensor-core GEMM, where it replaced cuBLASLt. */
  | "gemm"
  /** The same GEMM running a few-channel 1×1 convolution (TORCHC_POINTWISE_TC=1). */
  | "conv-gemm"
  /** The generated int8 implicit-GEMM convolution, where it replaced cuDNN's int8 graph (TORCHC_INT8_IGEMM=1). */
  | "conv-int8"
  | "cudnn"
  /** 2:4-sparse linears and 1×1 convolutions (sparseWeights). */
  | "cusparselt"
  | "libtorch"
  | "copy";

export interface ProfiledStep {
  /** Position in launch order across the whole forward pass. */
  readonly index: number;
  readonly kind: ProfiledKind;
  /** The engine's one-line description of the step (or the fallback segment's). */
  readonly description: string;
  /** IR nodes the step covers, in order. */
  readonly nodes: readonly string[];
  /** Median GPU time (ms) of the step between its two events. */
  readonly medianMs: number;
  /** medianMs / totalMs. */
  readonly share: number;
}

export interface ProfileReport {
  readonly steps: readonly ProfiledStep[];
  /** Sum of the step medians (ms); more than a CUDA graph replay by the launch gaps the graph removes. */
  readonly totalMs: number;
  /** Per kind: step count, summed median ms and share of the total, in descending time. */
  readonly byKind: readonly {
    readonly kind: ProfiledKind;
    readonly steps: number;
    readonly ms: number;
    readonly share: number;
  }[];
  /** Steps that launch a GPU kernel or library call (every step but LibTorch segments, which may launch several). */
  readonly kernels: number;
  readonly reps: number;
}

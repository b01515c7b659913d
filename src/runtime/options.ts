import type { AnyCandidate } from "../converters/types.js";
import { TorchcError } from "../errors.js";
import type { Tensor } from "../ir/tensor.js";
import type { OpName } from "../ops/index.js";
import type { Precision } from "../passes/assign-precision.js";
import type { Fp16OverflowMode } from "../passes/fp16-overflow.js";
import type { Pass } from "../passes/pass.js";
import type { QuantPrecision } from "../passes/quantize-insert.js";
import type { CalibrationOptions } from "./calibration.js";
import type { LoadedArtifacts } from "./package-artifacts.js";
import type { Backend } from "./segment-runner.js";
import type { DynamicOptions, InputSpec } from "./shape-range.js";

export type BackendName = "reference" | "cuda";

/** Precisions as users spell them (Torch-TensorRT's names and PyTorch's dtype names). */
export type PrecisionName = "fp32" | "fp16" | "bf16" | Precision | QuantPrecision;

/** compile()'s options; names follow Torch-TensorRT's, camel-cased. */
export interface CompileOptions {
  /**
   * Input shapes: static (`{ dtype, shape }`, needed for TorchScript archives; .pt2 archives carry them), or a
   * range `{ minShape, optShape, maxShape }` of the dimension torch.export made dynamic (runtime/shape-range.ts).
   * A .pt2 exported with dynamic shapes gets the ranges it recorded by default.
   */
  readonly inputs?: readonly InputSpec[];
  /** Buckets, build time and cache bound of a module with a batch range (runtime/shape-range.ts). */
  readonly dynamic?: DynamicOptions;
  /** Float types kernels may use. Default ["fp32"]. */
  readonly enabledPrecisions?: readonly PrecisionName[];
  /** int8 / fp8 post-training quantization: calibration data, algorithm and cache (runtime/calibration.ts). */
  readonly calibration?: CalibrationOptions;
  /** Smallest engine segment worth building; shorter runs of convertible nodes fall back. Default 5. */
  readonly minBlockSize?: number;
  /**
   * Ops that always run in the fallback (`aten.silu.default`), typed as the op catalogue's names and checked at
   * run time too, with a "did you mean" for a near miss. An op the model uses that the catalogue lacks is accepted
   * at run time (pass it with a cast).
   */
  readonly torchExecutedOps?: readonly OpName[];
  /** Fail instead of falling back. */
  readonly requireFullCompilation?: boolean;
  /** Where engine segments run: "reference" (CPU layer interpreter) or "cuda". Default "reference". */
  readonly backend?: BackendName | Backend;
  /** Replace or edit the lowering pipeline: a list of passes, or a function of the default list. */
  readonly passes?: readonly Pass[] | ((defaults: Pass[]) => Pass[]);
  /** Allow TF32 tensor cores for fp32 matmuls and convolutions (cuda backend). Default false. */
  readonly tf32?: boolean;
  /**
   * Time the top cuDNN engine candidates of every convolution at the first launch and keep the fastest (cuda
   * backend). Default false: on an H100 it bought 1–6% (EfficientNet-B0, ResNet-50 fp16) for 9–23 s more compile time.
   */
  readonly tune?: boolean;
  /**
   * Execution contexts (cuda backend): how many forward passes can be in flight at once. Each has its own
   * stream, activation arenas, workspaces, I/O buffers and CUDA graphs (compiled.memory() reports the cost);
   * weights are shared. Overlapping run() calls beyond this queue in order. Default 1.
   */
  readonly contexts?: number;
  /**
   * How run() waits for the GPU without blocking the event loop (cuda backend): "poll" (default; event
   * queries between event-loop turns, lowest latency), "worker" (an event wait on a worker thread, leaves
   * the JS thread idle) or "hostfn" (cuLaunchHostFunc; measured only). bench/NOTES.md has the measurements.
   */
  readonly completion?: "worker" | "poll" | "hostfn";
  /** CUDA device ordinal (cuda backend). Default 0. */
  readonly device?: number;
  /**
   * Most bytes of cuBLASLt workspace per execution context (cuda backend; default 32 MiB). cuDNN plans keep
   * the workspace their engine needs.
   */
  readonly workspaceBytes?: number;
  /**
   * Extra converter tables, ranked by priority together with the built-in ones (Torch-TensorRT's custom
   * converters). Build candidates with `converter(…)` from "torchc".
   */
  readonly converters?: readonly (readonly AnyCandidate[])[];
  /**
   * After building, run the model once on a seeded random input (or `verify.inputs`) and compare it with the
   * aten reference, node by node for engine segments (`torchc verify`); the result is `compiled.verification`
   * and ends the report text. Default false.
   */
  readonly verify?: boolean | { readonly inputs?: readonly Tensor[]; readonly tolerance?: number };
  /**
   * fp16 only: what to do where a sample run overflows float16 (|x| > 65504 becomes inf). "keep-fp32" keeps the
   * nodes that make or read such values in float32 (found on the CPU reference interpreter; the sample is the first
   * calibration batch, else `verify.inputs`, else seeded random inputs of the declared shapes) and the compile
   * report lists them; "error" fails the compile naming them; "ignore" (default) checks nothing
   * (passes/fp16-overflow.ts).
   */
  readonly fp16Overflow?: Fp16OverflowMode;
  /**
   * Compute float64 as float32 (Torch-TensorRT's truncate_double): float64 weights, constants and values inside
   * the model become float32; float64 inputs and outputs keep their type (cast on entry and exit). Default false.
   */
  readonly truncateDouble?: boolean;
  /**
   * Run linear layers whose weights are 2:4 structured-sparse along K (exact zeros) on sparse tensor cores
   * through cuSPARSELt (cuda backend, fp16), each only where it times faster than dense; the compile report
   * lists every such layer and why any ran dense (Torch-TensorRT's sparse_weights). true fails the compile
   * when this GPU (compute capability < 8.0) or machine (no cuSPARSELt) cannot run sparse at all; "prefer"
   * compiles dense then. Default false: nothing is checked.
   */
  readonly sparseWeights?: boolean | "prefer";
  /**
   * Engines saved in a package, for the backend to reuse instead of choosing plans again (set by
   * `loadCompiled`; see runtime/package-artifacts.ts). Not saved, not a user option.
   */
  readonly artifacts?: LoadedArtifacts;
}

export function normalizePrecisions(names: readonly PrecisionName[] | undefined): Precision[] {
  const map: Record<string, Precision> = {
    fp32: "float32",
    float32: "float32",
    fp16: "float16",
    half: "float16",
    float16: "float16",
    bf16: "bfloat16",
    bfloat16: "bfloat16",
  };
  // int8 / fp8 are applied by calibration (runtime/calibration.ts) before the float precisions below.
  const floats = (names ?? ["fp32"]).filter((n) => n !== "int8" && n !== "fp8");
  const out = floats.map((n) => {
    const p = map[n];
    if (!p)
      throw new TorchcError(
        `unknown precision '${n}' (use fp32, fp16, bf16, int8 or fp8)`,
        "options.precision",
      );
    return p;
  });
  if (!out.includes("float32")) out.push("float32");
  return [...new Set(out)];
}

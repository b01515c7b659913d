import { InputError } from "../errors.js";
import type { OpName } from "../ops/index.js";
import { FP16_OVERFLOW_MODES, type Fp16OverflowMode } from "../passes/fp16-overflow.js";
import type { BackendName, CompileOptions, PrecisionName } from "../runtime/options.js";
import { calibrationFrom } from "./calibration-options.js";
import { parseInputShapes } from "./options.js";

/** The compile options every command that compiles accepts (names as in Torch-TensorRT, kebab-cased). */
export const COMPILE_FLAGS = {
  precision: { type: "string", multiple: true },
  backend: { type: "string" },
  "min-block-size": { type: "string" },
  "torch-executed-ops": { type: "string", multiple: true },
  "require-full-compilation": { type: "boolean" },
  "input-shape": { type: "string", multiple: true },
  tf32: { type: "boolean" },
  tune: { type: "boolean" },
  contexts: { type: "string" },
  "pipeline-rows": { type: "string" },
  device: { type: "string" },
  "calibration-data": { type: "string" },
  "calibration-cache": { type: "string" },
  "calibration-algorithm": { type: "string" },
  "keep-sensitive": { type: "string" },
  "sensitivity-metric": { type: "string" },
  "sensitivity-target": { type: "string" },
  "sensitivity-batches": { type: "string" },
  "sparse-weights": { type: "string" },
  "fp16-overflow": { type: "string" },
} as const;

/** The compile options' help, stating the default backend of the command it is printed for. */
export const compileUsage = (defaultBackend: BackendName = "reference"): string =>
  "  --precision fp32|fp16|bf16|int8|fp8   enabled precisions (repeatable; default fp32)\n" +
  "  --calibration-data DIR         int8/fp8: a folder of .npy input batches to calibrate on\n" +
  "  --calibration-cache FILE       int8/fp8: JSON of calibrated ranges, read if it exists, else written\n" +
  "  --calibration-algorithm percentile|entropy|minmax   int8/fp8 ranges (default percentile = 99.99 %)\n" +
  "  --keep-sensitive N|auto        int8/fp8: keep the N layers whose quantization moves the output most in the\n" +
  "                                 float precision (auto: until the rest's summed score is at most the target)\n" +
  "  --sensitivity-metric cosine|relative-max   the score: 1 − cos or max|err|/max|ref| against fp32 (default cosine)\n" +
  "  --sensitivity-target X         --keep-sensitive auto's target (default 1e-3 cosine, 2e-2 relative-max)\n" +
  "  --sensitivity-batches N        calibration batches the scores are measured on (default 8, at most 64)\n" +
  `  --backend reference|cuda       where engine segments run (default ${defaultBackend})\n` +
  "  --min-block-size N             smallest engine segment (default 5)\n" +
  "  --torch-executed-ops OP[,OP]   ops that always fall back, e.g. aten.silu.default\n" +
  "  --require-full-compilation     fail instead of falling back\n" +
  "  --input-shape [dtype:]1x3x224x224   input types (TorchScript archives), or a batch range\n" +
  "                                 min:opt:max, e.g. 1x3x224x224:8x3x224x224:64x3x224x224\n" +
  "  --tf32                         allow TF32 for fp32 (cuda)\n" +
  "  --tune                         time cuDNN engine candidates per convolution, keep the fastest (cuda; slower compile)\n" +
  "  --contexts N                   execution contexts: forward passes in flight at once (cuda; default 1)\n" +
  "  --pipeline-rows N              with a batch range: host batches over N rows run as pieces of N, each piece's\n" +
  "                                 copy to the GPU overlapping the previous pieces' forward passes\n" +
  "  --device N                     CUDA device ordinal (cuda; default 0)\n" +
  "  --fp16-overflow keep-fp32|error|ignore   fp16: where a sample run overflows fp16, keep those nodes in fp32,\n" +
  "                                 or fail naming them (default ignore; sample: --calibration-data, else random)\n" +
  "  --sparse-weights[=prefer]      run 2:4-sparse linear weights on sparse tensor cores where faster (cuda, fp16);\n" +
  "                                 =prefer compiles dense when cuSPARSELt or the GPU cannot";

export const COMPILE_USAGE = compileUsage();

export function compileOptionsFrom(
  values: Record<string, unknown>,
  defaults: Partial<CompileOptions> = {},
): CompileOptions {
  const minBlock = values["min-block-size"] as string | undefined;
  const n = minBlock === undefined ? undefined : Number(minBlock);
  if (n !== undefined && (!Number.isInteger(n) || n < 1))
    throw new InputError(`--min-block-size ${minBlock}: expected a positive integer`);
  const ops = (values["torch-executed-ops"] as string[] | undefined)
    ?.flatMap((s) => s.split(","))
    .map((s) => s.trim())
    .filter(Boolean);
  const count = (flag: string): number | undefined => {
    const v = values[flag] as string | undefined;
    if (v === undefined) return undefined;
    const k = Number(v);
    if (!Number.isInteger(k) || k < 0) throw new InputError(`--${flag} ${v}: expected a whole number`);
    return k;
  };
  const pipelineRows = count("pipeline-rows");
  return {
    ...defaults,
    ...(pipelineRows !== undefined ? { dynamic: { ...defaults.dynamic, pipelineRows } } : {}),
    contexts: count("contexts") ?? defaults.contexts,
    device: count("device") ?? defaults.device,
    enabledPrecisions: (values.precision as PrecisionName[] | undefined) ?? defaults.enabledPrecisions,
    backend: (values.backend as BackendName | undefined) ?? defaults.backend,
    minBlockSize: n ?? defaults.minBlockSize,
    // Names typed on the command line are checked against the catalogue (and the model) by compile().
    torchExecutedOps: (ops as OpName[] | undefined) ?? defaults.torchExecutedOps,
    requireFullCompilation:
      (values["require-full-compilation"] as boolean | undefined) ?? defaults.requireFullCompilation,
    inputs: parseInputShapes(values["input-shape"] as string[] | undefined) ?? defaults.inputs,
    tf32: (values.tf32 as boolean | undefined) ?? defaults.tf32,
    tune: (values.tune as boolean | undefined) ?? defaults.tune,
    calibration: calibrationFrom(values) ?? defaults.calibration,
    sparseWeights: sparseWeightsFrom(values["sparse-weights"]) ?? defaults.sparseWeights,
    fp16Overflow: fp16OverflowFrom(values["fp16-overflow"]) ?? defaults.fp16Overflow,
  };
}

/**
 * `--sparse-weights` takes an optional value, which parseArgs cannot express: a bare `--sparse-weights` becomes
 * `--sparse-weights=true` before parsing (main.ts), so it never swallows the next argument.
 */
export function expandSparseWeightsFlag(argv: readonly string[]): string[] {
  return argv.map((a) => (a === "--sparse-weights" ? "--sparse-weights=true" : a));
}

/** `--sparse-weights` is true, `--sparse-weights=prefer` is "prefer". */
function sparseWeightsFrom(v: unknown): boolean | "prefer" | undefined {
  if (v === undefined) return undefined;
  if (v === "true") return true;
  if (v === "prefer" || v === "false") return v === "prefer" ? "prefer" : false;
  throw new InputError(`--sparse-weights=${String(v)}: expected nothing, prefer or false`);
}

/** `--fp16-overflow keep-fp32|error|ignore`. */
function fp16OverflowFrom(v: unknown): Fp16OverflowMode | undefined {
  if (v === undefined) return undefined;
  if (FP16_OVERFLOW_MODES.includes(v as Fp16OverflowMode)) return v as Fp16OverflowMode;
  throw new InputError(`--fp16-overflow ${String(v)}: expected ${FP16_OVERFLOW_MODES.join(", ")}`);
}

// The lowering pipeline: one ordered list of named passes. Users edit the list (insertPass / removePass or
// plain array operations) and run it with runPipeline, which verifies the graph after every pass.
import { TorchcError } from "../errors.js";
import type { Graph } from "../ir/graph.js";
import { checkGraph } from "../ir/verify.js";
import {
  assignPrecisionPass,
  type Precision,
  type PrecisionOptions,
  reducedPrecisionOf,
} from "./assign-precision.js";
import { cancelCasts } from "./cancel-casts.js";
import { canonicalizeViews } from "./canonicalize-views.js";
import { decomposeToCore } from "./decompose-to-core.js";
import { eliminateCommonSubexpressionsPass } from "./eliminate-common-subexpressions.js";
import { eliminateDeadCodePass } from "./eliminate-dead-code.js";
import { foldBatchNorm } from "./fold-batch-norm.js";
import { type FoldConstantsOptions, foldConstantsPass } from "./fold-constants.js";
import { type Fp16OverflowPassOptions, fp16OverflowPass } from "./fp16-overflow.js";
import { functionalizeViews } from "./functionalize-views.js";
import type { Pass } from "./pass.js";
import { foldQuantizedLayersPass } from "./quantize-fold.js";
import { removeEvalNoOps } from "./remove-eval-no-ops.js";
import { type Trace, TraceRecorder } from "./rewrite/trace.js";

export interface PipelineOptions {
  /** Float types kernels may use, as in Torch-TensorRT. Default ["float32"]: no precision pass. */
  readonly enabledPrecisions?: readonly Precision[];
  /** Fine-tuning of the precision pass (which ops stay float32, I/O types). */
  readonly precision?: Omit<PrecisionOptions, "enabledPrecisions">;
  /** Size limits of constant folding, or false to skip it. */
  readonly foldConstants?: FoldConstantsOptions | false;
  /** Fold inference batch norm into the conv/linear before it (default true). */
  readonly foldBatchNorm?: boolean;
  /** Keep nodes where sample inputs overflow fp16 in float32, or fail (passes/fp16-overflow.ts). Default: neither. */
  readonly fp16Overflow?: Fp16OverflowPassOptions;
}

/**
 * The default order, and why: no-ops go first so patterns see through them; decomposition brings both IR
 * flavours to the core set; views are canonicalized on the core set; folding then sees weights behind
 * views and permutes; batch norm folds into convs whose weights are now plain constants; CSE and DCE
 * clean up what folding duplicated or orphaned; precision runs last, on the final op set.
 */
export function defaultPipeline(options: PipelineOptions = {}): Pass[] {
  const passes: Pass[] = [
    functionalizeViews,
    removeEvalNoOps,
    decomposeToCore,
    canonicalizeViews,
    foldQuantizedLayersPass,
  ];
  if (options.foldConstants !== false) passes.push(foldConstantsPass(options.foldConstants || {}));
  if (options.foldBatchNorm !== false) passes.push(foldBatchNorm);
  passes.push(eliminateCommonSubexpressionsPass, eliminateDeadCodePass);
  const enabledPrecisions = options.enabledPrecisions ?? ["float32"];
  if (reducedPrecisionOf(enabledPrecisions)) {
    const precision = { ...options.precision, enabledPrecisions };
    passes.push(
      options.fp16Overflow
        ? fp16OverflowPass(precision, options.fp16Overflow)
        : assignPrecisionPass(precision),
      cancelCasts,
      eliminateDeadCodePass,
    );
  }
  return passes;
}

/** A copy of `passes` with `pass` inserted before or after the pass named `anchor`. */
export function insertPass(
  passes: readonly Pass[],
  pass: Pass,
  where: { before: string } | { after: string },
): Pass[] {
  const anchor = "before" in where ? where.before : where.after;
  const i = passes.findIndex((p) => p.name === anchor);
  if (i < 0)
    throw new TorchcError(
      `no pass named '${anchor}' in the pipeline (${passes.map((p) => p.name).join(", ")})`,
      "passes.unknown",
    );
  const at = "before" in where ? i : i + 1;
  return [...passes.slice(0, at), pass, ...passes.slice(at)];
}

/** A copy of `passes` without those named `name`. */
export function removePass(passes: readonly Pass[], name: string): Pass[] {
  return passes.filter((p) => p.name !== name);
}

/** A pass left the graph malformed: a bug in that pass. */
export class PassVerificationError extends TorchcError {
  constructor(
    pass: string,
    readonly problems: readonly string[],
  ) {
    super(
      `pass '${pass}' produced a malformed graph:\n  ${problems.slice(0, 10).join("\n  ")}`,
      "passes.malformed",
    );
    this.name = "PassVerificationError";
  }
}

export interface RunPipelineOptions {
  /** Check the graph after every pass (default true; it is linear in graph size). */
  readonly verify?: boolean;
  /** Record into an existing trace (e.g. the CLI's); a fresh one by default. */
  readonly trace?: TraceRecorder;
}

/** Runs passes in order; returns the final graph and the trace of every change. */
export function runPipeline(
  graph: Graph,
  passes: readonly Pass[],
  options: RunPipelineOptions = {},
): { graph: Graph; trace: Trace } {
  const trace = options.trace ?? new TraceRecorder();
  let current = graph;
  for (const pass of passes) {
    const start = performance.now();
    const firstEntry = trace.size;
    const next = pass.run(current, { trace });
    if (options.verify !== false) {
      const problems = checkGraph(next);
      if (problems.length > 0) throw new PassVerificationError(pass.name, problems);
    }
    trace.summarize({
      pass: pass.name,
      firstEntry,
      nodesBefore: current.nodes.length,
      nodesAfter: next.nodes.length,
      changes: trace.size - firstEntry,
      ms: performance.now() - start,
    });
    current = next;
  }
  return { graph: current, trace: trace.snapshot() };
}

/**
 * Refit (Torch-TensorRT's refit_module_weights): new weights for a compiled module of the same architecture,
 * without building engines again. The new model goes through the same lowering and partitioning as the compiled
 * one; since folding turns weights into new constants, it is the lowered graphs and partitions that must have the
 * same structure (the error names the first difference). Each engine segment's network is converted again and
 * handed to the backend, which re-uploads every constant in the layout and precision its engine uses (the CUDA
 * backend: same offsets in the same weight buffer, so captured CUDA graphs stay valid); backends that run
 * segments on the host rebuild their runners, which costs nothing worth keeping.
 */
import { convertSegment } from "../converters/convert-segment.js";
import type { ConverterRegistry } from "../converters/index.js";
import { TorchcError } from "../errors.js";
import type { LoadedModel } from "../frontends/load-model.js";
import type { Graph } from "../ir/graph.js";
import { checkGraph } from "../ir/verify.js";
import { type Partition, partitionGraph } from "../partition/index.js";
import type { Pass } from "../passes/pass.js";
import { defaultPipeline, runPipeline } from "../passes/pipeline.js";
import { reportProgress } from "../util/progress.js";
import { type CompileOptions, normalizePrecisions } from "./options.js";
import {
  changedBlockWeights,
  changedWeights,
  firstDifference,
  firstSegmentDifference,
} from "./refit-compare.js";
import type { Backend, SegmentRunner } from "./segment-runner.js";
import { truncateDouble } from "./truncate-double.js";

/** New weights: a loaded model, a graph, a saved package, or a path to any of them (.pt2, .pt, .torchc). */
export type RefitSource = LoadedModel | Graph | string;

export interface RefitReport {
  readonly ms: number;
  /** Engine segments refitted in place, and runners rebuilt (host backends). */
  readonly engines: number;
  readonly rebuiltRunners: number;
  /** Weights whose values changed. */
  readonly changedWeights: number;
}

/** What refit needs of a compiled module. */
export interface RefitTarget {
  readonly graph: Graph;
  readonly partition: Partition;
  readonly options: CompileOptions;
  readonly registry: ConverterRegistry;
  /** The module's runners, replaced in place where the backend rebuilds them. */
  readonly runners: SegmentRunner[];
  readonly backend: Backend;
  /** Whether forward passes run in backend execution contexts (device backends). */
  readonly contexts: boolean;
}

function refused(detail: string, code = "refit.mismatch"): never {
  throw new TorchcError(`refit: ${detail}`, code);
}

/** The lowered graph of the new weights: packages are lowered already; models go through the module's pipeline. */
async function loweredGraph(source: RefitSource, options: CompileOptions): Promise<Graph> {
  if (typeof source === "string") {
    const { isPackageFile, loadPackage } = await import("./package.js");
    if (isPackageFile(source)) return loadPackage(source).graph;
    const { loadModel } = await import("../frontends/load-model.js");
    return lower((await loadModel(source, { inputTypes: options.inputs })).graph, options);
  }
  if (typeof source !== "object" || source === null)
    refused("the new weights must be a model, a graph or a path");
  return lower("graph" in source ? source.graph : source, options);
}

function lower(graph: Graph, options: CompileOptions): Graph {
  const defaults = defaultPipeline({ enabledPrecisions: normalizePrecisions(options.enabledPrecisions) });
  // A module loaded from a package was compiled with its saved lowering, which is the default pipeline.
  const passes: readonly Pass[] =
    options.passes === undefined || (Array.isArray(options.passes) && options.passes.length === 0)
      ? defaults
      : typeof options.passes === "function"
        ? options.passes(defaults)
        : options.passes;
  // Checked once at the end, not after every pass: a refit is timed against the compile (issue 12), and its result
  // is compared node by node with the compiled graph, which every pass's output was checked for.
  const lowered = runPipeline(options.truncateDouble ? truncateDouble(graph) : graph, passes, {
    verify: false,
  }).graph;
  const problems = checkGraph(lowered);
  if (problems.length > 0) refused(`the new model does not lower to a well-formed graph: ${problems[0]}`);
  return lowered;
}

/** Refits `target` with `source`'s weights; returns the new graph and partition (for save) and a report. */
export async function refitModule(
  target: RefitTarget,
  source: RefitSource,
): Promise<{ graph: Graph; partition: Partition; report: RefitReport }> {
  const t0 = performance.now();
  const { options } = target;
  if ((options.enabledPrecisions ?? []).some((p) => p === ("int8" as never) || p === ("fp8" as never)))
    refused(
      "quantized modules cannot be refitted (their scales come from calibration); compile again",
      "refit.unsupported",
    );
  reportProgress({ phase: "refit: lower" });
  const lowered = await loweredGraph(source, options);
  reportProgress({ phase: "refit: partition and compare" });
  const partition = partitionGraph(lowered, {
    registry: target.registry,
    minBlockSize: options.minBlockSize,
    torchExecutedOps: options.torchExecutedOps,
    requireFullCompilation: options.requireFullCompilation,
  });
  const diff =
    firstDifference(target.partition.graph, partition.graph) ??
    firstSegmentDifference(target.partition.segments, partition.segments);
  if (diff) refused(`the new model's structure differs: ${diff}`);
  const { backend } = target;
  if (target.contexts && !backend.prepareRefit)
    refused(`the ${backend.name} backend cannot refit engines`, "refit.unsupported");
  // Device backends: every engine is checked and every fallback segment's weights compared before anything is
  // uploaded, so a refused refit changes nothing.
  const uploads: (() => void)[] = [];
  reportProgress({ phase: "refit: plan engines" });
  for (const [i, segment] of partition.segments.entries()) {
    if (!target.contexts) break;
    if (segment.kind === "engine") {
      const network = convertSegment(partition.graph, segment, { registry: target.registry });
      uploads.push(backend.prepareRefit!(target.runners[i], network));
      continue;
    }
    const changed = changedWeights(
      target.partition.graph,
      partition.graph,
      new Set(segment.nodes.map((n) => n.name)),
    );
    // A control segment's blocks are compiled modules of their own, which refit does not reach: new weights
    // inside them would be silently ignored.
    if (segment.kind === "control")
      changed.push(...controlChanges(target.partition.graph, partition.graph, segment));
    if (changed.length > 0)
      refused(
        `${segment.kind} segment ${i} reads weights whose values changed ('${changed[0]}'), and the ${backend.name} backend cannot swap a ${segment.kind} segment's constants`,
        "refit.unsupported",
      );
  }
  reportProgress({ phase: "refit: upload" });
  for (const u of uploads) u();
  // Host backends: runners cost nothing to build again.
  let rebuilt = 0;
  for (const [i, segment] of partition.segments.entries()) {
    if (target.contexts) break;
    const runner = target.runners[i];
    target.runners[i] =
      segment.kind === "engine"
        ? await backend.engine(
            segment,
            convertSegment(partition.graph, segment, { registry: target.registry }),
          )
        : await backend.fallback(segment);
    await runner.dispose?.();
    rebuilt++;
  }
  const engines = uploads.length;
  reportProgress({ phase: "refit: count changes" });
  return {
    graph: partition.graph,
    partition,
    report: {
      ms: performance.now() - t0,
      engines,
      rebuiltRunners: rebuilt,
      changedWeights: changedWeights(target.partition.graph, partition.graph).length,
    },
  };
}

/** Weights that changed inside the blocks of a control segment's nodes (paired with the built graph by position). */
function controlChanges(built: Graph, next: Graph, segment: Partition["segments"][number]): string[] {
  return segment.nodes.flatMap((node) => {
    const at = next.nodes.indexOf(node);
    return at < 0 ? [] : changedBlockWeights(built, next, built.nodes[at], node);
  });
}

// Keeping fp16 honest: float16 holds |x| ≤ 65504; a larger result becomes inf. Random-weight torchvision models
// (mobilenet_v2, inception_v3) overflow so in PyTorch eager fp16 too. This pass runs sample inputs through the
// CPU reference interpreter and keeps in float32 the nodes that make or read values fp16 cannot hold:
//
// 1. One float32 run of the graph before precision assignment: every node that reads or writes a float value
//    whose |x| exceeds the limit is pinned (the producer, and the readers that would get inf through a cast).
// 2. The graph after assign-precision with those pins, run with its float16 casts in place (the interpreter
//    rounds every float16 result, so it overflows where fp16 would): each node whose output is non-finite
//    while its inputs are finite is pinned too, unless its float32 result was non-finite already (not an
//    overflow). An inserted float32 → float16 cast that overflows pins its readers. Repeat until the sample
//    run is finite or nothing more can be pinned (bounded).
//
// Only results matter to the interpreter (it computes each op in float64 and rounds once), so an overflow
// inside an accumulation whose final result fits is not seen: the engine accumulates in float32.
import { TorchcError } from "../errors.js";
import { isFloating } from "../ir/dtype.js";
import { formatLocation, type Graph, type Node, nodeInputs } from "../ir/graph.js";
import { type Tensor, toFloat64Array } from "../ir/tensor.js";
import { interpret } from "../ops/interpret.js";
import { assignPrecision, type PrecisionOptions, reducedPrecisionOf } from "./assign-precision.js";
import type { Pass, PassContext } from "./pass.js";

/** The largest finite float16. */
export const FP16_MAX = 65504;

/** What to do where a sample run overflows fp16: nothing (default), fail the compile, or keep those nodes in fp32. */
export type Fp16OverflowMode = "ignore" | "error" | "keep-fp32";
export const FP16_OVERFLOW_MODES: readonly Fp16OverflowMode[] = ["ignore", "error", "keep-fp32"];

export interface Fp16OverflowOptions {
  /** Inputs of the graph, one list per sample (a user's example or calibration batch, or seeded random). */
  readonly samples: readonly (readonly Tensor[])[];
  /** |x| above which a float32 value counts as overflowing. Default FP16_MAX; lower it to leave headroom. */
  readonly maxMagnitude?: number;
  /** Most float16 runs (rounds) after the float32 one. Default 8. */
  readonly maxIterations?: number;
}

/** A node kept in float32, and why. */
export interface KeptNode {
  readonly node: string;
  readonly op: string;
  readonly modulePath?: string;
  readonly source?: string;
  /** "node 'x' (aten.op) in module '…' at file.py:12" */
  readonly where: string;
  /** Largest finite |x| the node read or wrote in the float32 sample run. */
  readonly maxAbs: number;
  /** "magnitude": float32 values beyond the limit; "fp16-overflow": inf in the float16 run from finite inputs. */
  readonly reason: "magnitude" | "fp16-overflow";
}

export interface Fp16OverflowResult {
  /** The graph after assign-precision with the kept nodes in float32. */
  readonly graph: Graph;
  /** In graph order. */
  readonly kept: readonly KeptNode[];
  /** Whether the last float16 sample run was finite everywhere. */
  readonly finite: boolean;
  /** When not finite: the first node of the last run whose output is not finite while its inputs are. */
  readonly remaining?: string;
  /** Interpreter runs (float32 and float16) and samples, and the time taken. */
  readonly runs: number;
  readonly samples: number;
  readonly ms: number;
}

interface RunStats {
  /** Largest finite |x| of each float value. */
  readonly maxAbs: Map<string, number>;
  /** Values holding inf or NaN. */
  readonly nonFinite: Set<string>;
  /** Nodes with a non-finite output while every value they read is finite, in run order. */
  readonly sources: Node[];
}

/** Runs the graph on every sample and records magnitudes and non-finite values. */
function observe(graph: Graph, samples: Fp16OverflowOptions["samples"]): RunStats {
  const stats: RunStats = { maxAbs: new Map(), nonFinite: new Set(), sources: [] };
  const note = (name: string, t: Tensor) => {
    if (!isFloating(t.dtype)) return;
    let max = stats.maxAbs.get(name) ?? 0;
    for (const v of toFloat64Array(t)) {
      if (Number.isFinite(v)) max = Math.max(max, Math.abs(v));
      else stats.nonFinite.add(name);
    }
    stats.maxAbs.set(name, max);
  };
  for (const [name, w] of Object.entries(graph.weights)) note(name, w.tensor as Tensor);
  const seen = new Set<string>();
  for (const inputs of samples) {
    for (const [i, n] of graph.inputs.entries()) note(n, inputs[i]);
    interpret(graph, inputs, {
      onNode(node, outs) {
        const inputsFinite = nodeInputs(node).every((v) => !stats.nonFinite.has(v));
        node.outputs.forEach((o, i) => {
          if (o && outs[i]) note(o, outs[i]);
        });
        const bad = node.outputs.some((o) => stats.nonFinite.has(o));
        if (bad && inputsFinite && !seen.has(node.name)) {
          seen.add(node.name);
          stats.sources.push(node);
        }
      },
    });
  }
  return stats;
}

/** Largest |x| a node reads or writes. */
function magnitudeAt(node: Node, stats: RunStats): number {
  return Math.max(0, ...[...node.outputs, ...nodeInputs(node)].map((v) => stats.maxAbs.get(v) ?? 0));
}

/** Original nodes to pin for a node of the assigned graph that overflowed (an inserted cast: its readers). */
function originalsOf(node: Node, assigned: Graph, original: ReadonlyMap<string, Node>): string[] {
  if (original.has(node.name)) return [node.name];
  const out = new Set(node.outputs);
  return assigned.nodes
    .filter((n) => original.has(n.name) && nodeInputs(n).some((v) => out.has(v)))
    .map((n) => n.name);
}

/**
 * Assigns precision (float16 enabled) and keeps in float32 every node where the sample run overflows float16.
 * Pure: the input graph is not changed; the result holds the new graph and the nodes kept.
 */
export function keepOverflowInFloat32(
  graph: Graph,
  precision: PrecisionOptions,
  options: Fp16OverflowOptions,
): Fp16OverflowResult {
  const t0 = performance.now();
  if (options.samples.length === 0)
    throw new TorchcError("fp16 overflow analysis needs at least one sample input", "options.invalid");
  const limit = options.maxMagnitude ?? FP16_MAX;
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const order = new Map(graph.nodes.map((n, i) => [n.name, i]));
  const fp32 = observe(graph, options.samples);
  const kept = new Map<string, KeptNode>();
  const keep = (name: string, reason: KeptNode["reason"]) => {
    const node = byName.get(name);
    if (!node || kept.has(name) || node.subgraphs) return false;
    const { modulePath, sourceLocation: source } = node.meta;
    const maxAbs = magnitudeAt(node, fp32);
    kept.set(name, {
      node: name,
      op: node.op,
      modulePath,
      source,
      where: formatLocation(node),
      maxAbs,
      reason,
    });
    return true;
  };
  for (const node of graph.nodes) {
    const large = [...node.outputs, ...nodeInputs(node)].some(
      (v) => isFloating(graph.values[v]?.dtype ?? "int64") && (fp32.maxAbs.get(v) ?? 0) > limit,
    );
    if (large) keep(node.name, "magnitude");
  }
  const fp32Broken = new Set(fp32.sources.map((n) => n.name));
  let rounds = 0;
  let assigned: Graph;
  let last: RunStats;
  for (;;) {
    assigned = assignPrecision(graph, { ...precision, fp32Nodes: [...kept.keys()] });
    last = observe(assigned, options.samples);
    rounds++;
    if (last.sources.length === 0 || rounds >= (options.maxIterations ?? 8)) break;
    const fresh = last.sources
      .flatMap((n) => originalsOf(n, assigned, byName))
      .filter((n) => !fp32Broken.has(n) && keep(n, "fp16-overflow"));
    if (fresh.length === 0) break;
  }
  const sorted = [...kept.values()].sort((a, b) => order.get(a.node)! - order.get(b.node)!);
  return {
    graph: assigned,
    kept: sorted,
    finite: last.sources.length === 0,
    remaining: last.sources[0] ? formatLocation(last.sources[0]) : undefined,
    runs: (1 + rounds) * options.samples.length,
    samples: options.samples.length,
    ms: performance.now() - t0,
  };
}

/** One line per kept node, for the compile report. */
export function formatKeptNodes(r: Fp16OverflowResult, sampleSource = "sample inputs"): string {
  const cost = `${r.runs} interpreter run(s), ${r.ms.toFixed(0)} ms`;
  const head =
    r.kept.length === 0 && r.finite
      ? `fp16 overflow: none on ${sampleSource}; every node stays in fp16 (${cost})`
      : `fp16 overflow: ${r.kept.length} node(s) kept in float32 because fp16 overflows on ${sampleSource} (${cost})`;
  const lines = r.kept.map(
    (k) =>
      `  ${k.modulePath ?? k.node} (${k.op}) max |x| ${k.maxAbs.toExponential(2)}${k.source ? ` at ${k.source}` : ""}`,
  );
  const tail = r.finite ? [] : [`  still not finite in fp16 after keeping these: ${r.remaining}`];
  return [head, ...lines, ...tail].join("\n");
}

/** The sample run overflowed fp16 and the compile asked for an error (fp16Overflow: "error"). */
export class Fp16OverflowError extends TorchcError {
  constructor(readonly result: Fp16OverflowResult) {
    const first = result.kept[0];
    super(
      `fp16 overflows on the sample input at ${first.where} (max |x| ${first.maxAbs.toExponential(2)} > ${FP16_MAX})` +
        `${result.kept.length > 1 ? ` and ${result.kept.length - 1} more node(s)` : ""}; ` +
        `compile with fp16Overflow: "keep-fp32" (--fp16-overflow=keep-fp32) to keep them in float32`,
      "precision.fp16-overflow",
    );
    this.name = "Fp16OverflowError";
  }
}

export interface Fp16OverflowPassOptions extends Fp16OverflowOptions {
  readonly mode: Exclude<Fp16OverflowMode, "ignore">;
  /** Receives the analysis (the compile report lists the kept nodes). */
  readonly onResult?: (result: Fp16OverflowResult) => void;
}

/**
 * assign-precision that keeps fp16-overflowing nodes in float32 ("keep-fp32") or fails naming them ("error").
 * It takes assign-precision's name and place, so pipeline edits anchored on that name still apply.
 */
export function fp16OverflowPass(precision: PrecisionOptions, options: Fp16OverflowPassOptions): Pass {
  const name = "assign-precision";
  return Object.freeze({
    name,
    doc: `compute in float16/bfloat16 where enabled; normalization, softmax, big reductions and nodes where a sample run overflows fp16 stay float32 (${options.mode})`,
    run(graph: Graph, ctx: PassContext): Graph {
      if (reducedPrecisionOf(precision.enabledPrecisions) !== "float16")
        return assignPrecision(graph, precision, ctx, name);
      const r = keepOverflowInFloat32(graph, precision, options);
      options.onResult?.(r);
      if (options.mode === "error") {
        if (r.kept.length > 0) throw new Fp16OverflowError(r);
        return assignPrecision(graph, precision, ctx, name);
      }
      for (const k of r.kept)
        ctx.trace.record({
          pass: name,
          rule: "keep-float32-on-overflow",
          node: k.node,
          op: k.op,
          detail: `max |x| ${k.maxAbs.toExponential(2)} (${k.reason})`,
        });
      // The same assignment again, recorded in the trace this time.
      return assignPrecision(graph, { ...precision, fp32Nodes: r.kept.map((k) => k.node) }, ctx, name);
    },
  });
}

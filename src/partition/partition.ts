import { DEFAULT_REGISTRY } from "../converters/index.js";
import type { ConverterRegistry } from "../converters/registry.js";
import type { EngineCapabilities } from "../converters/types.js";
import { TorchcError } from "../errors.js";
import type { Graph, Node, TensorType, Weight } from "../ir/graph.js";
import { formatLocation } from "../ir/graph.js";
import { nodeReads } from "../ir/reads.js";
import { classifyNodes, type Placement } from "./classify.js";
import { functionalize } from "./functionalize.js";
import { groupByKind } from "./group.js";
import { buildReport, type PartitionReport } from "./report.js";
import type { Segment, SegmentKind } from "./segment.js";

export interface PartitionOptions {
  /** Default: every converter torchc has. */
  readonly registry?: ConverterRegistry;
  readonly caps?: EngineCapabilities;
  /** Engine blocks with fewer nodes run in the fallback instead (Torch-TensorRT's min_block_size). Default 5. */
  readonly minBlockSize?: number;
  /** Op overloads always left to the fallback, e.g. "aten.silu.default". */
  readonly torchExecutedOps?: readonly string[];
  /** Throw instead of falling back; minBlockSize is then ignored. */
  readonly requireFullCompilation?: boolean;
}

export interface Partition {
  /**
   * The graph the segments refer to: the input graph, or, when it has in-place nodes, its functional form
   * (later reads of an overwritten value name the in-place node's result; so may its outputs).
   */
  readonly graph: Graph;
  readonly segments: readonly Segment[];
  readonly report: PartitionReport;
}

export const DEFAULT_MIN_BLOCK_SIZE = 5;

/**
 * Splits a graph into engine and fallback segments. Nodes are placed one by one (options, then converter
 * registry), grouped so each segment depends only on earlier ones, and engine blocks below `minBlockSize`
 * are handed to the fallback, repeating until the grouping is stable. In-place nodes are first rewritten to
 * dataflow (`partition.graph`), which is what the segments refer to.
 */
export function partitionGraph(input: Graph, options: PartitionOptions = {}): Partition {
  const graph = functionalize(input);
  const placement = classifyNodes(graph, { ...options, registry: options.registry ?? DEFAULT_REGISTRY });
  if (options.requireFullCompilation) {
    const bad = graph.nodes.filter((n) => placement.get(n)?.kind === "fallback");
    if (bad.length > 0) {
      const lines = bad.map(
        (n) => `  ${formatLocation(n)}: ${(placement.get(n) as { reason: string }).reason}`,
      );
      throw new TorchcError(
        `requireFullCompilation is set but ${bad.length} node${bad.length === 1 ? "" : "s"} would fall back:\n${lines.join("\n")}`,
        "partition.incomplete",
      );
    }
  }
  const minBlock = options.requireFullCompilation ? 1 : (options.minBlockSize ?? DEFAULT_MIN_BLOCK_SIZE);
  // The grouping's one free choice is the kind of the first group: try both, keep the one that leaves fewer
  // nodes to the fallback, then fewer segments.
  const plans = (["engine", "fallback"] as const).map((first) => plan(graph, placement, minBlock, first));
  const best = plans.reduce((a, b) => (score(b) < score(a) ? b : a));
  const groups = best.groups;
  for (const [n, p] of best.placement) placement.set(n, p);
  const segments = buildSegments(graph, groups);
  return { graph, segments, report: buildReport(graph, segments, placement) };
}

interface Plan {
  readonly groups: { kind: SegmentKind; nodes: Node[] }[];
  readonly placement: Map<Node, Placement>;
}

/** Groups the nodes, handing engine blocks below minBlock to the fallback until the grouping is stable. */
function plan(
  graph: Graph,
  initial: ReadonlyMap<Node, Placement>,
  minBlock: number,
  first: SegmentKind,
): Plan {
  const placement = new Map(initial);
  const kindOf = (n: Node): SegmentKind => placement.get(n)!.kind;
  for (;;) {
    const groups = groupByKind(graph, kindOf, first);
    const small = groups.filter((g) => g.kind === "engine" && g.nodes.length < minBlock);
    if (small.length === 0) return { groups, placement };
    for (const g of small) {
      const reason = `in an engine block of ${g.nodes.length} node${g.nodes.length === 1 ? "" : "s"}, fewer than minBlockSize (${minBlock})`;
      for (const n of g.nodes) placement.set(n, { kind: "fallback", reason });
    }
  }
}

function score(p: Plan): number {
  const fallback = p.groups.filter((g) => g.kind === "fallback").reduce((a, g) => a + g.nodes.length, 0);
  return fallback * 1e6 + p.groups.length;
}

function buildSegments(
  graph: Graph,
  groups: readonly { kind: SegmentKind; nodes: readonly Node[] }[],
): Segment[] {
  const segmentOf = new Map<string, number>();
  groups.forEach((g, i) => {
    for (const n of g.nodes) for (const o of n.outputs) segmentOf.set(o, i);
  });
  // Values each segment must hand on: read by a later segment, or returned by the graph.
  const exported = groups.map(() => new Set<string>());
  groups.forEach((g, i) => {
    for (const n of g.nodes) {
      for (const v of nodeReads(n)) {
        const s = segmentOf.get(v);
        if (s !== undefined && s !== i) exported[s].add(v);
      }
    }
  });
  for (const v of graph.outputs) {
    const s = segmentOf.get(v);
    if (s !== undefined) exported[s].add(v);
  }
  return groups.map((g, index) => {
    const defined = new Set(g.nodes.flatMap((n) => n.outputs));
    const inputs: string[] = [];
    const weights: string[] = [];
    for (const n of g.nodes) {
      for (const v of nodeReads(n)) {
        if (defined.has(v)) continue;
        const list = v in graph.weights ? weights : inputs;
        if (!list.includes(v)) list.push(v);
      }
    }
    const outputs = g.nodes.flatMap((n) => n.outputs).filter((v) => exported[index].has(v));
    return Object.freeze({
      index,
      kind: g.kind,
      nodes: Object.freeze([...g.nodes]),
      inputs: Object.freeze(inputs),
      weights: Object.freeze(weights),
      outputs: Object.freeze(outputs),
      graph: segmentGraph(graph, g.nodes, inputs, weights, outputs),
    });
  });
}

function segmentGraph(
  graph: Graph,
  nodes: readonly Node[],
  inputs: string[],
  weights: string[],
  outputs: string[],
): Graph {
  const values: Record<string, TensorType> = {};
  const ws: Record<string, Weight> = {};
  for (const v of [...inputs, ...weights, ...nodes.flatMap((n) => n.outputs)]) values[v] = graph.values[v];
  for (const w of weights) ws[w] = graph.weights[w];
  return Object.freeze({
    inputs: Object.freeze([...inputs]),
    outputs: Object.freeze([...outputs]),
    nodes: Object.freeze([...nodes]),
    values: Object.freeze(values),
    weights: Object.freeze(ws),
  });
}

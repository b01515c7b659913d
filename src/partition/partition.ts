import { TorchcError } from "../errors.js";
import type { Graph, Node, TensorType, Weight } from "../ir/graph.js";
import { formatLocation } from "../ir/graph.js";
import { DEFAULT_REGISTRY } from "../converters/index.js";
import type { ConverterRegistry } from "../converters/registry.js";
import type { EngineCapabilities } from "../converters/types.js";
import { type Placement, classifyNodes } from "./classify.js";
import { groupByKind } from "./group.js";
import { nodeReads } from "./reads.js";
import { type PartitionReport, buildReport } from "./report.js";
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
  readonly segments: readonly Segment[];
  readonly report: PartitionReport;
}

export const DEFAULT_MIN_BLOCK_SIZE = 5;

/**
 * Splits a graph into engine and fallback segments. Nodes are placed one by one (options, then converter
 * registry), grouped so each segment depends only on earlier ones, and engine blocks below `minBlockSize`
 * are handed to the fallback, repeating until the grouping is stable.
 */
export function partitionGraph(graph: Graph, options: PartitionOptions = {}): Partition {
  const placement = classifyNodes(graph, { ...options, registry: options.registry ?? DEFAULT_REGISTRY });
  if (options.requireFullCompilation) {
    const bad = graph.nodes.filter((n) => placement.get(n)?.kind === "fallback");
    if (bad.length > 0) {
      const lines = bad.map((n) => `  ${formatLocation(n)}: ${(placement.get(n) as { reason: string }).reason}`);
      throw new TorchcError(
        `requireFullCompilation is set but ${bad.length} node${bad.length === 1 ? "" : "s"} would fall back:\n${lines.join("\n")}`,
        "partition.incomplete",
      );
    }
  }
  const minBlock = options.requireFullCompilation ? 1 : (options.minBlockSize ?? DEFAULT_MIN_BLOCK_SIZE);
  const kindOf = (n: Node): SegmentKind => placement.get(n)!.kind;
  let groups = groupByKind(graph, kindOf);
  for (;;) {
    const small = groups.filter((g) => g.kind === "engine" && g.nodes.length < minBlock);
    if (small.length === 0) break;
    for (const g of small) {
      const reason = `in an engine block of ${g.nodes.length} node${g.nodes.length === 1 ? "" : "s"}, fewer than minBlockSize (${minBlock})`;
      for (const n of g.nodes) placement.set(n, { kind: "fallback", reason } satisfies Placement);
    }
    groups = groupByKind(graph, kindOf);
  }
  const segments = buildSegments(graph, groups);
  return { segments, report: buildReport(graph, segments, placement) };
}

function buildSegments(graph: Graph, groups: readonly { kind: SegmentKind; nodes: readonly Node[] }[]): Segment[] {
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

function segmentGraph(graph: Graph, nodes: readonly Node[], inputs: string[], weights: string[], outputs: string[]): Graph {
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

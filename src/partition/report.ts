import type { Graph, Node } from "../ir/graph.js";
import type { Placement } from "./classify.js";
import type { Segment, SegmentKind } from "./segment.js";

export interface SegmentSummary {
  readonly index: number;
  readonly kind: SegmentKind;
  readonly nodes: number;
  /** Op overloads with their counts, most frequent first. */
  readonly ops: readonly { readonly op: string; readonly count: number }[];
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
}

export interface FallbackNode {
  readonly node: string;
  readonly op: string;
  readonly segment: number;
  /** The converter's refusal, "in torchExecutedOps", or the minBlockSize rule. */
  readonly reason: string;
  readonly modulePath?: string;
  readonly sourceLocation?: string;
}

export interface PartitionReport {
  readonly segments: readonly SegmentSummary[];
  readonly fallbackNodes: readonly FallbackNode[];
  readonly totals: {
    readonly nodes: number;
    readonly engineNodes: number;
    readonly fallbackNodes: number;
    readonly engineSegments: number;
    readonly fallbackSegments: number;
    /** Segments of one control-flow node each (`prim.If`, `prim.Loop`). */
    readonly controlSegments: number;
  };
}

function opCounts(nodes: readonly Node[]): { op: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const n of nodes) counts.set(n.op, (counts.get(n.op) ?? 0) + 1);
  return [...counts]
    .map(([op, count]) => ({ op, count }))
    .sort((a, b) => b.count - a.count || a.op.localeCompare(b.op));
}

export function buildReport(
  graph: Graph,
  segments: readonly Segment[],
  placement: ReadonlyMap<Node, Placement>,
): PartitionReport {
  const fallbackNodes: FallbackNode[] = [];
  for (const s of segments) {
    if (s.kind !== "fallback") continue;
    for (const n of s.nodes) {
      const p = placement.get(n);
      fallbackNodes.push({
        node: n.name,
        op: n.op,
        segment: s.index,
        reason: p && p.kind === "fallback" ? p.reason : "unknown",
        ...(n.meta.modulePath ? { modulePath: n.meta.modulePath } : {}),
        ...(n.meta.sourceLocation ? { sourceLocation: n.meta.sourceLocation } : {}),
      });
    }
  }
  const engine = segments.filter((s) => s.kind === "engine");
  return {
    segments: segments.map((s) => ({
      index: s.index,
      kind: s.kind,
      nodes: s.nodes.length,
      ops: opCounts(s.nodes),
      inputs: s.inputs,
      outputs: s.outputs,
    })),
    fallbackNodes,
    totals: {
      nodes: graph.nodes.length,
      engineNodes: engine.reduce((a, s) => a + s.nodes.length, 0),
      fallbackNodes: fallbackNodes.length,
      engineSegments: engine.length,
      fallbackSegments: segments.filter((s) => s.kind === "fallback").length,
      controlSegments: segments.filter((s) => s.kind === "control").length,
    },
  };
}

const shortOp = (op: string) => op.replace(/^aten\./, "").replace(/\.default$/, "");
const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? "" : "s"}`;

/** The text of `torchc inspect --partition`: a summary, one block per segment, then every fallback node. */
export function formatPartitionReport(report: PartitionReport): string {
  const t = report.totals;
  const lines = [
    `${plural(t.nodes, "node")}: ${plural(t.engineNodes, "node")} in ${plural(t.engineSegments, "engine segment")}, ` +
      `${plural(t.fallbackNodes, "node")} in ${plural(t.fallbackSegments, "fallback segment")}` +
      (t.controlSegments > 0 ? `, ${plural(t.controlSegments, "control-flow segment")}` : ""),
    "",
  ];
  for (const s of report.segments) {
    const ops = s.ops.map((o) => (o.count > 1 ? `${shortOp(o.op)} ×${o.count}` : shortOp(o.op))).join(", ");
    lines.push(`segment ${s.index}  ${s.kind.padEnd(8)}  ${plural(s.nodes, "node").padEnd(9)}  ${ops}`);
    lines.push(`  inputs: ${s.inputs.join(", ") || "—"}  outputs: ${s.outputs.join(", ") || "—"}`);
  }
  if (report.fallbackNodes.length > 0) {
    lines.push("", "fallback nodes:");
    const w = Math.max(...report.fallbackNodes.map((f) => f.node.length));
    const ow = Math.max(...report.fallbackNodes.map((f) => f.op.length));
    for (const f of report.fallbackNodes) {
      const where = [f.modulePath ? `module ${f.modulePath}` : "", f.sourceLocation ?? ""]
        .filter(Boolean)
        .join(", ");
      lines.push(`  ${f.node.padEnd(w)}  ${f.op.padEnd(ow)}  ${f.reason}${where ? `  (${where})` : ""}`);
    }
  } else {
    lines.push("", "no fallback nodes: the whole graph runs in engines");
  }
  return lines.join("\n");
}

import type { Graph, Node } from "../ir/graph.js";
import { nodeReads } from "../ir/reads.js";
import type { SegmentKind } from "./segment.js";

/**
 * Orders the nodes topologically while keeping nodes of one kind together: it takes ready nodes of the
 * current kind (earliest first) for as long as there are any, then switches kind. Each group therefore
 * reads only what earlier groups produce, so running the groups in order introduces no cycles. Once a kind
 * runs dry only the other can have ready nodes, so the kind of the first group is the one free choice.
 */
export function groupByKind(
  graph: Graph,
  kindOf: (node: Node) => SegmentKind,
  first: SegmentKind = "engine",
): { kind: SegmentKind; nodes: Node[] }[] {
  const producer = new Map<string, number>();
  graph.nodes.forEach((n, i) => {
    for (const o of n.outputs) producer.set(o, i);
  });
  const pending = graph.nodes.map(() => 0);
  const users: number[][] = graph.nodes.map(() => []);
  graph.nodes.forEach((n, i) => {
    const deps = new Set<number>();
    for (const v of nodeReads(n)) {
      const p = producer.get(v);
      if (p !== undefined && p !== i) deps.add(p);
    }
    pending[i] = deps.size;
    for (const d of deps) users[d].push(i);
  });
  // Ready nodes per kind, kept sorted by original index so the order stays close to the source.
  const ready: Record<SegmentKind, number[]> = { engine: [], fallback: [] };
  const push = (i: number) => {
    const list = ready[kindOf(graph.nodes[i])];
    let at = list.length;
    while (at > 0 && list[at - 1] > i) at--;
    list.splice(at, 0, i);
  };
  graph.nodes.forEach((_, i) => {
    if (pending[i] === 0) push(i);
  });
  const groups: { kind: SegmentKind; nodes: Node[] }[] = [];
  let current: SegmentKind | null = null;
  let done = 0;
  while (done < graph.nodes.length) {
    if (current === null || ready[current].length === 0) {
      const flip = (k: SegmentKind): SegmentKind => (k === "engine" ? "fallback" : "engine");
      const next: SegmentKind =
        current !== null ? flip(current) : ready[first].length > 0 ? first : flip(first);
      if (ready[next].length === 0) throw new Error("graph has a cycle");
      current = next;
      groups.push({ kind: current, nodes: [] });
    }
    const i = ready[current].shift()!;
    groups[groups.length - 1].nodes.push(graph.nodes[i]);
    done++;
    for (const u of users[i]) if (--pending[u] === 0) push(u);
  }
  return groups;
}

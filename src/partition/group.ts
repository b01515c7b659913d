import type { Graph, Node } from "../ir/graph.js";
import { nodeReads } from "../ir/reads.js";
import type { SegmentKind } from "./segment.js";

/**
 * Orders the nodes topologically while keeping nodes of one kind together: it takes ready nodes of the
 * current kind (earliest first) for as long as there are any, then switches kind. Each group therefore
 * reads only what earlier groups produce, so running the groups in order introduces no cycles. Once a kind
 * runs dry only the other can have ready nodes, so the kind of the first group is the one free choice. A
 * control-flow node ("control") is a group of its own, taken as soon as it is ready.
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
  const ready: Record<SegmentKind, number[]> = { engine: [], fallback: [], control: [] };
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
  // The straight-line kind being grouped (a control node between two groups of it does not change it).
  let straight: StraightKind | null = null;
  let open = false;
  let done = 0;
  while (done < graph.nodes.length) {
    let i: number;
    if (open && ready[straight!].length > 0) i = ready[straight!].shift()!;
    else if (ready.control.length > 0) {
      // A control node is a group of one; taking it as soon as it is ready lets its users join the current kind.
      i = ready.control.shift()!;
      groups.push({ kind: "control", nodes: [graph.nodes[i]] });
      open = false;
    } else {
      const next = nextStraight(straight, first, ready);
      straight = next;
      groups.push({ kind: next, nodes: [] });
      open = true;
      i = ready[next].shift()!;
    }
    if (open) groups[groups.length - 1].nodes.push(graph.nodes[i]);
    done++;
    for (const u of users[i]) if (--pending[u] === 0) push(u);
  }
  return groups;
}

type StraightKind = Exclude<SegmentKind, "control">;

/** The kind of the next straight-line group: the current one if it has ready nodes after a control node, else the other. */
function nextStraight(
  current: StraightKind | null,
  first: SegmentKind,
  ready: Record<SegmentKind, number[]>,
): StraightKind {
  const flip = (k: StraightKind): StraightKind => (k === "engine" ? "fallback" : "engine");
  const start: StraightKind = first === "fallback" ? "fallback" : "engine";
  const order: StraightKind[] = current === null ? [start, flip(start)] : [current, flip(current)];
  const next = order.find((k) => ready[k].length > 0);
  if (next === undefined) throw new Error("graph has a cycle");
  return next;
}

// Reads of a node including those made inside its nested graphs (prim.If / prim.Loop bodies may read outer
// values by name). Passes that count uses or rename values must see these too.
import type { Graph, Node } from "../ir/graph.js";
import { nodeInputs, renameNodeInputs } from "../ir/graph.js";

/** Outer values a nested graph reads: everything it uses that it does not define itself. */
function freeReads(graph: Graph): string[] {
  const defined = new Set<string>([...graph.inputs, ...Object.keys(graph.weights)]);
  const out: string[] = [];
  const use = (v: string) => {
    if (!defined.has(v)) out.push(v);
  };
  for (const node of graph.nodes) {
    readsOf(node).forEach(use);
    for (const o of node.outputs) defined.add(o);
  }
  graph.outputs.forEach(use);
  return out;
}

// Nodes are immutable, so what a node reads can be cached by identity.
const readsCache = new WeakMap<Node, readonly string[]>();

/** Value names a node reads: its arguments, then the free reads of its nested graphs (do not mutate). */
export function readsOf(node: Node): readonly string[] {
  let reads = readsCache.get(node);
  if (!reads) {
    const list = nodeInputs(node);
    for (const sub of node.subgraphs ?? []) list.push(...freeReads(sub));
    reads = Object.freeze(list);
    readsCache.set(node, reads);
  }
  return reads;
}

function renameInGraph(graph: Graph, rename: (v: string) => string): Graph {
  const inner = new Set<string>([
    ...graph.inputs,
    ...Object.keys(graph.weights),
    ...graph.nodes.flatMap((n) => n.outputs),
  ]);
  const outer = (v: string) => (inner.has(v) ? v : rename(v));
  const nodes = graph.nodes.map((n) => renameReads(n, outer));
  const outputs = graph.outputs.map(outer);
  const same = nodes.every((n, i) => n === graph.nodes[i]) && outputs.every((o, i) => o === graph.outputs[i]);
  return same ? graph : { ...graph, nodes, outputs };
}

/** Renames reads of a node, including free reads inside its nested graphs. Same node back if unchanged. */
export function renameReads(node: Node, rename: (v: string) => string): Node {
  if (readsOf(node).every((v) => rename(v) === v)) return node;
  const renamed = renameNodeInputs(node, rename);
  if (!node.subgraphs) return renamed;
  const subgraphs = node.subgraphs.map((g) => renameInGraph(g, rename));
  return subgraphs.every((g, i) => g === node.subgraphs![i]) ? renamed : { ...renamed, subgraphs };
}

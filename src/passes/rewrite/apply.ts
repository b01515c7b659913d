import { TorchcError } from "../../errors.js";
import type { Graph, Node, TensorType } from "../../ir/graph.js";
import { readsOf, renameReads } from "../graph-reads.js";
import type { GraphIndex } from "./graph-index.js";
import type { Replacement } from "./replacement.js";

/** A rule produced a replacement that would break the graph: a bug in that rule. */
export class RewriteError extends TorchcError {
  constructor(rule: string, node: Node, detail: string) {
    super(`rule '${rule}' at node '${node.name}' (${node.op}): ${detail}`, "passes.bad-rewrite");
    this.name = "RewriteError";
  }
}

const sameType = (a: TensorType, b: TensorType) => a.dtype === b.dtype && a.shape.join() === b.shape.join();
const showType = (t: TensorType) => `${t.dtype}[${t.shape.join(", ")}]`;

function check(index: GraphIndex, root: Node, position: number, r: Replacement, rule: string): void {
  const fail = (detail: string) => new RewriteError(rule, root, detail);
  const typeOf = (v: string) => r.values[v] ?? index.graph.values[v];
  for (const [from, to] of Object.entries(r.mapping)) {
    if (!root.outputs.includes(from)) throw fail(`maps '${from}', which is not an output of the node`);
    const t = typeOf(to);
    if (!t) throw fail(`maps '${from}' to unknown value '${to}'`);
    if (!sameType(t, index.typeOf(from))) {
      throw fail(`replaces '${from}': ${showType(index.typeOf(from))} by '${to}': ${showType(t)}`);
    }
  }
  for (const out of root.outputs) {
    if (!(out in r.mapping) && !index.isUnused(out)) throw fail(`drops output '${out}', which is still used`);
  }
  const available = new Set<string>(Object.keys(r.weights));
  for (const node of r.nodes) {
    for (const input of readsOf(node)) {
      if (available.has(input)) continue;
      const p = index.producerOf(input);
      const defined = p ? index.positionOf(p.node) < position : input in index.graph.values;
      if (!defined || root.outputs.includes(input)) throw fail(`new node '${node.name}' reads '${input}', not defined before it`);
    }
    for (const out of node.outputs) available.add(out);
  }
  for (const to of Object.values(r.mapping)) {
    if (available.has(to) || to in index.graph.weights || index.graph.inputs.includes(to)) continue;
    const p = index.producerOf(to);
    if (!p || index.positionOf(p.node) >= position) throw fail(`maps an output to '${to}', not defined before the node`);
  }
}

/**
 * Puts a replacement in place of `root`: new nodes go where the root was (so order stays topological),
 * uses of the root's outputs are renamed, and nodes that fed the root and are now unused are pruned.
 * Returns a new graph; unchanged nodes are shared with the old one.
 */
export function applyReplacement(index: GraphIndex, root: Node, r: Replacement, rule: string): Graph {
  const graph = index.graph;
  const position = index.positionOf(root);
  check(index, root, position, r, rule);
  const rename = (v: string) => r.mapping[v] ?? v;
  let nodes: Node[] = [
    ...graph.nodes.slice(0, position),
    ...r.nodes,
    ...graph.nodes.slice(position + 1).map((n) => renameReads(n, rename)),
  ];
  const outputs = graph.outputs.map(rename);
  const values: Record<string, TensorType> = { ...graph.values, ...r.values };
  for (const out of root.outputs) delete values[out];

  const dead = prunableProducers(nodes, outputs, readsOf(root).map((v) => index.producerOf(v)?.node));
  if (dead.size > 0) {
    nodes = nodes.filter((n) => !dead.has(n));
    for (const n of dead) for (const out of n.outputs) delete values[out];
  }
  return Object.freeze({
    inputs: graph.inputs,
    outputs: Object.freeze(outputs),
    nodes: Object.freeze(nodes),
    values: Object.freeze(values),
    weights: Object.keys(r.weights).length > 0 ? Object.freeze({ ...graph.weights, ...r.weights }) : graph.weights,
  });
}

/** The root's producers that nothing reads any more, and transitively theirs. */
function prunableProducers(nodes: readonly Node[], outputs: readonly string[], seeds: (Node | undefined)[]): Set<Node> {
  const uses = new Map<string, number>();
  const producer = new Map<string, Node>();
  for (const o of outputs) uses.set(o, (uses.get(o) ?? 0) + 1);
  for (const n of nodes) {
    for (const v of readsOf(n)) uses.set(v, (uses.get(v) ?? 0) + 1);
    for (const o of n.outputs) producer.set(o, n);
  }
  const dead = new Set<Node>();
  const work = seeds.filter((n): n is Node => n !== undefined);
  while (work.length > 0) {
    const n = work.pop()!;
    const current = producer.get(n.outputs[0] ?? "");
    if (current !== n || dead.has(n) || n.outputs.length === 0) continue;
    if (n.outputs.some((o) => (uses.get(o) ?? 0) > 0)) continue;
    dead.add(n);
    for (const v of readsOf(n)) {
      uses.set(v, (uses.get(v) ?? 0) - 1);
      const p = producer.get(v);
      if (p) work.push(p);
    }
  }
  return dead;
}

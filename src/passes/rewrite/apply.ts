import { TorchcError } from "../../errors.js";
import type { Graph, Node, TensorType, Weight } from "../../ir/graph.js";
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
      if (!defined || root.outputs.includes(input))
        throw fail(`new node '${node.name}' reads '${input}', not defined before it`);
    }
    for (const out of node.outputs) available.add(out);
  }
  for (const to of Object.values(r.mapping)) {
    if (available.has(to) || to in index.graph.weights || index.graph.inputs.includes(to)) continue;
    const p = index.producerOf(to);
    if (!p || index.positionOf(p.node) >= position)
      throw fail(`maps an output to '${to}', not defined before the node`);
  }
}

/**
 * Puts a replacement in place of `root`: new nodes go where the root was (so order stays topological),
 * uses of the root's outputs are renamed, and nodes that fed the root and are now unused are pruned.
 * Returns a new graph (unchanged nodes are shared with the old one) and how many nodes were pruned (all
 * of them stood before the root).
 */
export function applyReplacement(index: GraphIndex, root: Node, r: Replacement, rule: string): { graph: Graph; pruned: number } {
  const graph = index.graph;
  const position = index.positionOf(root);
  check(index, root, position, r, rule);
  const adopted = adoptRootNames(root, r);
  const rename = (v: string) => adopted.mapping[v] ?? v;
  const dead = prunableProducers(index, root, adopted);
  const before = dead.size > 0 ? graph.nodes.slice(0, position).filter((n) => !dead.has(n)) : graph.nodes.slice(0, position);
  const nodes: Node[] = [...before, ...adopted.nodes, ...graph.nodes.slice(position + 1).map((n) => renameReads(n, rename))];
  const values: Record<string, TensorType> = { ...graph.values, ...adopted.values };
  for (const out of root.outputs) if (!(out in adopted.values)) delete values[out];
  for (const n of dead) for (const out of n.outputs) delete values[out];
  const next: Graph = Object.freeze({
    inputs: graph.inputs,
    outputs: Object.freeze(graph.outputs.map(rename)),
    nodes: Object.freeze(nodes),
    values: Object.freeze(values),
    weights: Object.keys(adopted.weights).length > 0 ? Object.freeze({ ...graph.weights, ...adopted.weights }) : graph.weights,
  });
  return { graph: next, pruned: dead.size };
}

/**
 * New values that replace a root output take over its name (and the node making the first one takes the
 * root's node name), so value names such as graph outputs stay stable through lowering and a trace can
 * follow a node from pass to pass. Only mappings to pre-existing values still need renaming downstream.
 */
function adoptRootNames(root: Node, r: Replacement): Replacement {
  const adopt = new Map<string, string>();
  const mapping: Record<string, string> = {};
  for (const [from, to] of Object.entries(r.mapping)) {
    if (to in r.values && !adopt.has(to)) adopt.set(to, from);
    else mapping[from] = to;
  }
  if (adopt.size === 0) return r;
  const name = (v: string) => adopt.get(v) ?? v;
  const first = r.mapping[root.outputs[0]];
  const nodes = r.nodes.map((n) => {
    const renamed = renameReads(n, name);
    const named = first !== undefined && adopt.has(first) && n.outputs.includes(first) ? root.name : n.name;
    return { ...renamed, name: named, outputs: n.outputs.map(name) };
  });
  const values: Record<string, TensorType> = {};
  for (const [v, t] of Object.entries(r.values)) values[name(v)] = t;
  const weights: Record<string, Weight> = {};
  for (const [v, w] of Object.entries(r.weights)) weights[name(v)] = w;
  return { nodes, values, weights, mapping };
}

/** The root's producers that nothing reads once the replacement is in, and transitively theirs. */
function prunableProducers(index: GraphIndex, root: Node, r: Replacement): Set<Node> {
  const newReads = new Set(r.nodes.flatMap((n) => readsOf(n)));
  const live = new Set<string>();
  for (const [from, to] of Object.entries(r.mapping)) if (!index.isUnused(from)) live.add(to);
  const gone = new Set<Node>([root]);
  const used = (v: string) =>
    index.isGraphOutput(v) || newReads.has(v) || live.has(v) || index.usersOf(v).some((u) => !gone.has(u));
  const work = readsOf(root).map((v) => index.producerOf(v)?.node);
  while (work.length > 0) {
    const n = work.pop();
    if (!n || gone.has(n) || n.outputs.length === 0 || n.outputs.some(used)) continue;
    gone.add(n);
    for (const v of readsOf(n)) work.push(index.producerOf(v)?.node);
  }
  gone.delete(root);
  return gone;
}

import { freezeGraph } from "../ir/frozen.js";
import type { Graph, Node, TensorType, Weight } from "../ir/graph.js";
import { readsOf } from "./graph-reads.js";
import type { Pass, PassContext } from "./pass.js";

const RULE = { name: "unused-result" } as const;
const WEIGHT_RULE = { name: "unused-weight" } as const;

/**
 * Removes nodes none of whose outputs reach a graph output, then weights nothing reads. Nodes without
 * outputs are kept: they can only exist for an effect (removing known static asserts is
 * remove-eval-no-ops' job).
 */
export function eliminateDeadCode(graph: Graph, ctx?: PassContext, pass = "eliminate-dead-code"): Graph {
  const live = new Set<string>(graph.outputs);
  const keep: Node[] = [];
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i];
    if (node.outputs.length > 0 && !node.outputs.some((o) => live.has(o))) {
      ctx?.trace.fired(pass, RULE, node);
      continue;
    }
    keep.push(node);
    for (const v of readsOf(node)) live.add(v);
  }
  const weights: Record<string, Weight> = {};
  for (const [name, w] of Object.entries(graph.weights)) {
    if (live.has(name)) weights[name] = w;
    else
      ctx?.trace.record({
        pass,
        rule: WEIGHT_RULE.name,
        node: name,
        op: `weight:${w.kind}`,
        detail: w.target,
      });
  }
  if (keep.length === graph.nodes.length && Object.keys(weights).length === Object.keys(graph.weights).length)
    return graph;
  keep.reverse();
  const kept = new Set([...graph.inputs, ...Object.keys(weights), ...keep.flatMap((n) => n.outputs)]);
  const values: Record<string, TensorType> = {};
  for (const [v, t] of Object.entries(graph.values)) if (kept.has(v)) values[v] = t;
  // Built directly and frozen once, not through an immer draft (a delete per dropped value): every part kept
  // is frozen already, so freezing stops at it. Same records, same key order.
  return freezeGraph({ ...graph, nodes: keep, values, weights });
}

export const eliminateDeadCodePass: Pass = Object.freeze({
  name: "eliminate-dead-code",
  doc: "drop nodes whose results nothing uses, then unused weights",
  run: (graph: Graph, ctx: PassContext) => eliminateDeadCode(graph, ctx),
});

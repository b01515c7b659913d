import type { Graph } from "../ir/graph.js";
import { renameNodeInputs } from "../ir/graph.js";
import { mutatedValue } from "../ops/index.js";

/**
 * Rewrites reads of values that in-place nodes (`relu_`, `add_`) overwrite so they name the node's result
 * instead: the graph becomes pure dataflow, which partitioning (free to reorder nodes) relies on. Reads inside
 * control-flow blocks are left alone. Returns the same graph when it has no in-place nodes.
 */
export function functionalize(graph: Graph): Graph {
  if (!graph.nodes.some((n) => mutatedValue(n) !== undefined)) return graph;
  const latest = new Map<string, string>();
  const origin = new Map<string, string>();
  const current = (v: string) => latest.get(v) ?? v;
  const nodes = graph.nodes.map((node) => {
    const n = renameNodeInputs(node, current);
    const mutated = mutatedValue(n);
    if (mutated !== undefined && n.outputs.length > 0) {
      const orig = origin.get(mutated) ?? mutated;
      latest.set(orig, n.outputs[0]);
      origin.set(n.outputs[0], orig);
    }
    return n;
  });
  return Object.freeze({
    ...graph,
    nodes: Object.freeze(nodes),
    outputs: Object.freeze(graph.outputs.map(current)),
  });
}

import type { Graph, Node } from "./graph.js";
import { nodeInputs } from "./graph.js";

/** Names a nested block reads from the graph around it. */
function freeNames(graph: Graph): string[] {
  const defined = new Set<string>([...graph.inputs, ...Object.keys(graph.weights)]);
  const free: string[] = [];
  const use = (n: string) => {
    if (!defined.has(n) && !free.includes(n)) free.push(n);
  };
  for (const node of graph.nodes) {
    for (const n of nodeReads(node)) use(n);
    for (const o of node.outputs) defined.add(o);
  }
  for (const o of graph.outputs) use(o);
  return free;
}

/**
 * Every value a node reads, including what the blocks of a control-flow node read from outside, so a
 * partition never separates a loop body from a value it captures.
 */
export function nodeReads(node: Node): string[] {
  const reads = nodeInputs(node);
  for (const sub of node.subgraphs ?? [])
    for (const n of freeNames(sub)) if (!reads.includes(n)) reads.push(n);
  return reads;
}

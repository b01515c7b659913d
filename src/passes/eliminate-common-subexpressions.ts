import type { Draft } from "immer";
import { editGraph } from "../ir/frozen.js";
import type { Graph, Node, TensorType, Weight } from "../ir/graph.js";
import { tensorBytes } from "../ir/tensor.js";
import { renameReads } from "./graph-reads.js";
import { isDeterministic } from "./op-effects.js";
import type { Pass, PassContext } from "./pass.js";

const NODE_RULE = { name: "duplicate-node" } as const;
const WEIGHT_RULE = { name: "duplicate-constant" } as const;

/** Constants this small or smaller are compared byte by byte to merge duplicates (folding makes many). */
const MAX_CONSTANT_BYTES = 1 << 16;

function nodeKey(node: Node, types: Readonly<Record<string, TensorType>>): string {
  return JSON.stringify([node.op, node.args, node.outputs.map((o) => types[o])]);
}

function constantKey(w: Weight): string | undefined {
  const bytes = tensorBytes(w.tensor);
  if (w.kind !== "constant" || bytes.byteLength > MAX_CONSTANT_BYTES) return undefined;
  return `${w.tensor.dtype}[${w.tensor.shape.join(",")}]:${Buffer.from(bytes).toString("base64")}`;
}

/**
 * Merges nodes that compute the same thing: same op, same arguments after earlier merges, same output
 * types. One forward walk suffices because merging renames later reads before they are keyed. Identical
 * small compile-time constants are merged first (parameters and buffers keep their identity).
 */
export function eliminateCommonSubexpressions(
  graph: Graph,
  ctx?: PassContext,
  pass = "eliminate-common-subexpressions",
): Graph {
  const rename = new Map<string, string>();
  const seenConstants = new Map<string, string>();
  const weights: Record<string, Weight> = {};
  for (const [name, w] of Object.entries(graph.weights)) {
    const key = constantKey(w);
    const first = key === undefined ? undefined : seenConstants.get(key);
    if (first !== undefined) {
      rename.set(name, first);
      ctx?.trace.record({
        pass,
        rule: WEIGHT_RULE.name,
        node: name,
        op: "weight:constant",
        detail: `same as ${first}`,
      });
      continue;
    }
    if (key !== undefined) seenConstants.set(key, name);
    weights[name] = w;
  }
  const seen = new Map<string, Node>();
  const nodes: Node[] = [];
  const to = (v: string) => rename.get(v) ?? v;
  for (const original of graph.nodes) {
    const node = renameReads(original, to);
    const mergeable = node.outputs.length > 0 && !node.subgraphs && isDeterministic(node.op, node.args);
    const key = mergeable ? nodeKey(node, graph.values) : undefined;
    const first = key === undefined ? undefined : seen.get(key);
    if (first) {
      node.outputs.forEach((o, i) => {
        rename.set(o, first.outputs[i]);
      });
      ctx?.trace.fired(pass, NODE_RULE, node, `same as ${first.name}`);
      continue;
    }
    if (key !== undefined) seen.set(key, node);
    nodes.push(node);
  }
  if (rename.size === 0) return graph;
  return editGraph(graph, (g) => {
    g.outputs = g.outputs.map(to);
    g.nodes = nodes as Draft<Node>[];
    for (const v of rename.keys()) delete g.values[v];
    g.weights = weights as Draft<Record<string, Weight>>;
  });
}

export const eliminateCommonSubexpressionsPass: Pass = Object.freeze({
  name: "eliminate-common-subexpressions",
  doc: "merge nodes with the same op, arguments and types, and identical small constants",
  run: (graph: Graph, ctx: PassContext) => eliminateCommonSubexpressions(graph, ctx),
});

import type { Graph } from "../ir/graph.js";
import { nodeReads } from "../ir/reads.js";
import { type ConvertContext, DEFAULT_CAPABILITIES, type EngineCapabilities } from "./types.js";

const usedCache = new WeakMap<Graph, ReadonlySet<string>>();

/** Values some node (or a block nested in it) reads or the graph returns, computed once per graph. */
export function usedValues(graph: Graph): ReadonlySet<string> {
  let used = usedCache.get(graph);
  if (!used) {
    const s = new Set<string>(graph.outputs);
    for (const n of graph.nodes) for (const i of nodeReads(n)) s.add(i);
    used = s;
    usedCache.set(graph, used);
  }
  return used;
}

export function graphContext(graph: Graph, caps: EngineCapabilities = DEFAULT_CAPABILITIES): ConvertContext {
  const used = usedValues(graph);
  return {
    graph,
    caps,
    typeOf: (v) => {
      const t = graph.values[v];
      if (!t) throw new Error(`converter asked for the type of unknown value '${v}'`);
      return t;
    },
    constantOf: (v) => graph.weights[v]?.tensor,
    isUsed: (v) => used.has(v),
  };
}

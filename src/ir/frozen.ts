/**
 * Graphs are immutable at run time, not only by `readonly`: the graphs the IR's editing API returns (the
 * GraphBuilder, the rewrite engine, the passes that edit graphs directly) are deep-frozen with immer, so
 * writing to a graph, its records, a node or a node's arguments throws (ES modules run in strict mode).
 * `editGraph` edits through an immer draft; the result shares every node and record the recipe did not
 * touch with the input. Tensor data (typed arrays) cannot be frozen in JavaScript and stays writable.
 */
import { type Draft, freeze, produce } from "immer";
import type { Graph } from "./graph.js";

/**
 * `graph`, deep-frozen in place (no copy). Objects that are frozen already are taken as frozen all the way
 * down, so build a graph's records unfrozen and freeze it once, here.
 */
export function freezeGraph<G extends Graph>(graph: G): G {
  return freeze(graph, true);
}

/** A copy of `graph` as `recipe` edits its draft: untouched parts shared, the result deep-frozen. */
export function editGraph(graph: Graph, recipe: (draft: Draft<Graph>) => void): Graph {
  return produce(graph, recipe);
}

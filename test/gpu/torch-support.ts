/** Shared by the LibTorch fallback's GPU tests: one torch environment per process, a graph as one segment. */
import { createTorchEnv, type TorchFallbackEnv } from "../../src/backends/torch/index.js";
import type { Graph } from "../../src/ir/graph.js";
import type { Segment } from "../../src/partition/segment.js";

/** The whole graph as one fallback segment. */
export function wholeGraph(graph: Graph): Segment {
  return {
    index: 0,
    kind: "fallback",
    nodes: graph.nodes,
    inputs: graph.inputs,
    weights: Object.keys(graph.weights),
    outputs: graph.outputs,
    graph,
  };
}

let envPromise: Promise<TorchFallbackEnv> | undefined;

/** LibTorch loaded once for the process. */
export const torchEnv = (): Promise<TorchFallbackEnv> => (envPromise ??= createTorchEnv());

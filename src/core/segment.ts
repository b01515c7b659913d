import type { Graph, Node } from "../ir/graph.js";

/** "control": one `prim.If` / `prim.Loop` node, whose blocks are compiled on their own (runtime/control-runner.ts). */
export type SegmentKind = "engine" | "fallback" | "control";

/**
 * A contiguous run of nodes that one executor runs: an engine (converted to a Network) or a fallback
 * (LibTorch on the GPU, or the aten reference interpreter on the CPU). Segments come in an order where each
 * reads only graph inputs, weights, and outputs of earlier segments.
 */
export interface Segment {
  readonly index: number;
  readonly kind: SegmentKind;
  readonly nodes: readonly Node[];
  /** Values read from outside the segment: graph inputs and earlier segments' outputs (not weights). */
  readonly inputs: readonly string[];
  /** Weights the segment reads. */
  readonly weights: readonly string[];
  /** Values later segments or the graph outputs read. */
  readonly outputs: readonly string[];
  /** The segment as a standalone graph (inputs, weights, nodes, outputs), for an executor to run. */
  readonly graph: Graph;
}

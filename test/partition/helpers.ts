import { convertSegment } from "../../src/converters/index.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import type { DType } from "../../src/ir/dtype.js";
import type { Arg, Graph, TensorType } from "../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers } from "../../src/ir/tensor.js";
import { runNetworkReference } from "../../src/network/reference/index.js";
import { interpret } from "../../src/ops/index.js";
import type { Partition } from "../../src/partition/index.js";

export const T = (name: string): Arg => ({ kind: "tensor", name });
export const f32 = (shape: number[], dtype: DType = "float32"): TensorType => ({ dtype, shape });

/** Builds a graph from `[op, args, outType]` steps; each step's output is named by the step key. */
export function chain(
  inputs: Record<string, TensorType>,
  steps: [name: string, op: string, args: Record<string, Arg>, out?: TensorType][],
  outputs: string[],
): Graph {
  const b = new GraphBuilder();
  for (const [n, t] of Object.entries(inputs)) b.addInput(n, t);
  for (const [name, op, args, out] of steps)
    b.addNode(op, args, [{ name, type: out ?? Object.values(inputs)[0] }], {}, `n_${name}`);
  b.setOutputs(outputs);
  return b.build();
}

/**
 * Runs a partition the way a runtime would: segments in order, engines through their Network on the layer
 * reference, fallbacks through the aten interpreter; returns the graph outputs.
 */
export function runPartition(p: Partition, inputs: readonly Tensor[]): Tensor[] {
  const values = new Map<string, Tensor>();
  for (const [i, n] of p.graph.inputs.entries()) values.set(n, inputs[i]);
  for (const [k, w] of Object.entries(p.graph.weights)) values.set(k, w.tensor);
  for (const s of p.segments) {
    const ins = s.inputs.map((v) => values.get(v)!);
    const outs =
      s.kind === "engine" ? runNetworkReference(convertSegment(p.graph, s), ins) : interpret(s.graph, ins);
    for (const [i, v] of s.outputs.entries()) values.set(v, outs[i]);
  }
  return p.graph.outputs.map((o) => values.get(o)!);
}

export function randomTensor(t: TensorType, seed: number): Tensor {
  const n = t.shape.reduce((a, d) => a * d, 1);
  return tensorFromNumbers(
    t.dtype,
    t.shape,
    Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3) * 2),
  );
}

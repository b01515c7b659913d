// Small graphs for the fp16 overflow tests (passes, runtime, CUDA plan emulation).
import type { Graph } from "../../src/ir/graph.js";
import { float, ints, none, TestGraph } from "./graphs.js";

/**
 * x·1000 → mm with positive weights (K = 256: hidden values ≈ 1.3e5, beyond fp16) → layer norm over the features
 * (back to ≈ 1), plus the row sum of the hidden values scaled by 1e-6 (≈ 30): a real net's overflow shape.
 */
export function overflowingGraph(): Graph {
  const g = new TestGraph();
  const x = g.input("x", [1, 256]);
  const big = g.node("aten.mul.Tensor", { self: x, other: float(1000) }, "scale_up");
  const y = g.node(
    "aten.mm.default",
    { self: big, mat2: g.weight("w", [256, 32], { lo: 0.5, hi: 1.5 }) },
    "proj",
  );
  const [z] = g.nodeOutputs(
    "aten.native_layer_norm.default",
    { input: y, normalized_shape: ints([32]), weight: none, bias: none, eps: float(1e-5) },
    "norm",
  );
  const s = g.node(
    "aten.sum.dim_IntList",
    { self: y, dim: ints([1]), keepdim: { kind: "bool", value: true } },
    "total",
  );
  const small = g.node("aten.mul.Tensor", { self: s, other: float(1e-6) }, "scale_down");
  return g.build(g.node("aten.add.Tensor", { self: z, other: small }, "out"));
}

/** Two small linear layers with ReLU: nothing near fp16's limit. */
export function tameGraph(): Graph {
  const g = new TestGraph();
  const x = g.input("x", [2, 16]);
  const h = g.node("aten.relu.default", {
    self: g.node("aten.mm.default", { self: x, mat2: g.weight("w1", [16, 8]) }),
  });
  return g.build(g.node("aten.mm.default", { self: h, mat2: g.weight("w2", [8, 4]) }));
}

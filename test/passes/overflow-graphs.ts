// Small graphs for the fp16 overflow tests (passes, runtime, CUDA plan emulation).
import type { Graph } from "../../src/ir/graph.js";
import { float, ints, none, TestGraph } from "./graphs.js";

/** A stride-1 k×k convolution without bias, padded to keep the spatial size. */
function sameConv(g: TestGraph, input: string, w: string, k: number, groups: number, name: string): string {
  return g.node(
    "aten.convolution.default",
    {
      input,
      weight: w,
      bias: none,
      stride: ints([1, 1]),
      padding: ints([(k - 1) / 2, (k - 1) / 2]),
      dilation: ints([1, 1]),
      transposed: { kind: "bool", value: false },
      output_padding: ints([0, 0]),
      groups: { kind: "int", value: groups },
    },
    name,
  );
}

/** The global (spatial) mean of an NCHW value as "pool", times 1e-4 as "scale_down": back into fp16's range. */
function meanScaledDown(g: TestGraph, v: string): string {
  const pooled = g.node(
    "aten.mean.dim",
    { self: v, dim: ints([2, 3]), keepdim: { kind: "bool", value: false } },
    "pool",
  );
  return g.node("aten.mul.Tensor", { self: pooled, other: float(1e-4) }, "scale_down");
}

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

/**
 * A conv block: x·2000 → 3×3 conv with positive weights (values ≈ 1.4e5, beyond fp16) → 1×1 conv with mixed-sign
 * weights → global mean → ·1e-4 (back into range). In fp16 the big conv gives inf and the 1×1 conv inf − inf = NaN.
 * (A per-channel scale right after the conv would not do: the CUDA plan folds it into the conv's weights; nor a
 * relu6, which clamps inf to 6, the right value.)
 */
export function overflowingConvGraph(): Graph {
  const g = new TestGraph();
  const x = g.input("x", [1, 16, 8, 8]);
  const conv = (input: string, w: string, k: number, name: string) => sameConv(g, input, w, k, 1, name);
  const big = g.node("aten.mul.Tensor", { self: x, other: float(2000) }, "scale_up");
  const c1 = conv(big, g.weight("w1", [16, 16, 3, 3], { lo: 0.5, hi: 1.5 }), 3, "expand");
  const c2 = conv(c1, g.weight("w2", [8, 16, 1, 1]), 1, "project");
  return g.build(meanScaledDown(g, c2));
}

/**
 * A MobileNetV2 inverted residual whose residual stream leaves fp16's range: x·40000 → 1×1 expand (values ≈ 5e5) →
 * relu6 → 3×3 depthwise → relu6 → 1×1 project (large weights: ≈ 3e4) → + the scaled input (sum ≈ 7e4) → global mean
 * → ·1e-4. In fp16 the expand's inf is clamped by relu6 (harmless) but the residual add overflows.
 */
export function invertedResidualGraph(): Graph {
  const g = new TestGraph();
  const x = g.input("x", [1, 16, 6, 6]);
  const conv = (input: string, w: string, k: number, groups: number, name: string) =>
    sameConv(g, input, w, k, groups, name);
  const relu6 = (v: string, name: string) =>
    g.node("aten.hardtanh.default", { self: v, min_val: float(0), max_val: float(6) }, name);
  const big = g.node("aten.mul.Tensor", { self: x, other: float(40000) }, "scale_up");
  const e = relu6(
    conv(big, g.weight("we", [32, 16, 1, 1], { lo: 0.5, hi: 1.5 }), 1, 1, "expand"),
    "expand_relu6",
  );
  const d = relu6(
    conv(e, g.weight("wd", [32, 1, 3, 3], { lo: 0.5, hi: 1.5 }), 3, 32, "depthwise"),
    "dw_relu6",
  );
  const p = conv(d, g.weight("wp", [16, 32, 1, 1], { lo: 100, hi: 200 }), 1, 1, "project");
  const sum = g.node("aten.add.Tensor", { self: p, other: big }, "residual");
  return g.build(meanScaledDown(g, sum));
}

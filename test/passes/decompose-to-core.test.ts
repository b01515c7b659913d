import { describe, expect, it } from "vitest";
import { isCoreOp } from "../../src/passes/core-ops.js";
import { decomposeToCore } from "../../src/passes/decompose-to-core.js";
import { eliminateDeadCodePass } from "../../src/passes/eliminate-dead-code.js";
import { foldConstantsPass } from "../../src/passes/fold-constants.js";
import { bool, dtype, expectSameResults, float, int, ints, lower, none, opsOf, TestGraph } from "./graphs.js";

const str = (value: string) => ({ kind: "string", value }) as const;

interface Case {
  name: string;
  build(g: TestGraph): string;
  /** The ops expected after lowering (in order). */
  want: string[];
}

const cases: Case[] = [
  {
    name: "conv2d ⇒ convolution",
    build: (g) =>
      g.node("aten.conv2d.default", {
        input: g.input("x", [1, 2, 6, 6]),
        weight: g.weight("w", [4, 2, 3, 3]),
        bias: g.weight("b", [4]),
        stride: ints([2, 2]),
      }),
    want: ["aten.convolution.default"],
  },
  {
    name: "conv1d with 'same' padding ⇒ convolution",
    build: (g) =>
      g.node("aten.conv1d.padding", {
        input: g.input("x", [1, 2, 9]),
        weight: g.weight("w", [3, 2, 5]),
        padding: str("same"),
      }),
    want: ["aten.convolution.default"],
  },
  {
    name: "conv_transpose2d ⇒ convolution(transposed)",
    build: (g) =>
      g.node("aten.conv_transpose2d.input", {
        input: g.input("x", [1, 4, 3, 3]),
        weight: g.weight("w", [4, 2, 3, 3]),
        stride: ints([2, 2]),
        output_padding: ints([1, 1]),
      }),
    want: ["aten.convolution.default"],
  },
  {
    name: "core ATen linear (permute + addmm) ⇒ linear",
    build: (g) => {
      const wt = g.node("aten.permute.default", { self: g.weight("w", [4, 3]), dims: ints([1, 0]) });
      return g.node("aten.addmm.default", { self: g.weight("b", [4]), mat1: g.input("x", [2, 3]), mat2: wt });
    },
    want: ["aten.linear.default"],
  },
  {
    name: "core ATen 3-d linear (view + mm + view, t) ⇒ linear",
    build: (g) => {
      const flat = g.node("aten.view.default", { self: g.input("x", [2, 5, 3]), size: ints([10, 3]) });
      const wt = g.node("aten.t.default", { self: g.weight("w", [4, 3]) });
      return g.node("aten._unsafe_view.default", {
        self: g.node("aten.mm.default", { self: flat, mat2: wt }),
        size: ints([2, 5, 4]),
      });
    },
    want: ["aten.linear.default"],
  },
  {
    name: "linear + bias add ⇒ linear with bias",
    build: (g) => {
      const y = g.node("aten.linear.default", {
        input: g.input("x", [2, 5, 3]),
        weight: g.weight("w", [4, 3]),
      });
      return g.node("aten.add.Tensor", { self: g.weight("b", [4]), other: y });
    },
    want: ["aten.linear.default"],
  },
  {
    name: "matmul by a weight ⇒ linear (the permute folds)",
    build: (g) =>
      g.node("aten.matmul.default", { self: g.input("x", [2, 5, 3]), other: g.weight("w", [3, 4]) }),
    want: ["aten.linear.default"],
  },
  {
    name: "broadcast batched matmul ⇒ expand + view + bmm + view",
    build: (g) =>
      g.node("aten.matmul.default", { self: g.input("a", [2, 3, 4, 5]), other: g.input("b", [3, 5, 6]) }),
    want: [
      "aten.view.default",
      "aten.expand.default",
      "aten.view.default",
      "aten.bmm.default",
      "aten.view.default",
    ],
  },
  {
    name: "batch_norm ⇒ _native_batch_norm_legit_no_training",
    build: (g) =>
      g.node("aten.batch_norm.default", {
        input: g.input("x", [2, 3, 4]),
        weight: g.weight("g", [3]),
        bias: g.weight("b", [3]),
        running_mean: g.weight("m", [3]),
        running_var: g.weight("v", [3], { lo: 0.5, hi: 1.5 }),
        training: bool(false),
        momentum: float(0.1),
        eps: float(1e-5),
        cudnn_enabled: bool(true),
      }),
    want: ["aten._native_batch_norm_legit_no_training.default"],
  },
  {
    name: "layer_norm and group_norm ⇒ native forms",
    build: (g) => {
      const x = g.input("x", [2, 4, 3]);
      const l = g.node("aten.layer_norm.default", {
        input: x,
        normalized_shape: ints([3]),
        weight: g.weight("g", [3]),
        bias: g.weight("b", [3]),
      });
      return g.node("aten.group_norm.default", {
        input: l,
        num_groups: int(2),
        weight: g.weight("gg", [4]),
        bias: none,
      });
    },
    want: ["aten.native_layer_norm.default", "aten.native_group_norm.default"],
  },
  {
    name: "relu6 ⇒ hardtanh, clamp(min=0) ⇒ relu",
    build: (g) => {
      const r = g.node("aten.relu6.default", { self: g.input("x", [8]) });
      return g.node("aten.clamp.default", { self: r, min: float(0) });
    },
    want: ["aten.hardtanh.default", "aten.relu.default"],
  },
  {
    name: "core ATen hardswish and hardsigmoid ⇒ named activations",
    build: (g) => {
      const x = g.input("x", [16], "float32");
      const shifted = (v: string) => {
        const p = g.node("aten.add.Tensor", { self: v, other: int(3) });
        return g.node("aten.clamp.default", {
          self: g.node("aten.clamp.default", { self: p, min: int(0) }),
          max: int(6),
        });
      };
      const hs = g.node("aten.div.Tensor", {
        self: g.node("aten.mul.Tensor", { self: x, other: shifted(x) }),
        other: int(6),
      });
      return g.node("aten.div.Tensor", { self: shifted(hs), other: int(6) });
    },
    want: ["aten.hardswish.default", "aten.hardsigmoid.default"],
  },
  {
    name: "core ATen silu ⇒ silu",
    build: (g) => {
      const x = g.input("x", [6]);
      return g.node("aten.mul.Tensor", { self: x, other: g.node("aten.sigmoid.default", { self: x }) });
    },
    want: ["aten.silu.default"],
  },
  {
    name: "global adaptive pool ⇒ mean, max_pool2d_with_indices ⇒ max_pool2d",
    build: (g) => {
      const [m] = g.nodeOutputs("aten.max_pool2d_with_indices.default", {
        self: g.input("x", [1, 2, 6, 6]),
        kernel_size: ints([2, 2]),
      });
      return g.node("aten.adaptive_avg_pool2d.default", { self: m, output_size: ints([1, 1]) });
    },
    want: ["aten.max_pool2d.default", "aten.mean.dim"],
  },
  {
    name: "softmax, Scalar overloads and casts ⇒ core forms",
    build: (g) => {
      const s = g.node("aten.softmax.int", { self: g.input("x", [2, 5]), dim: int(-1) });
      const a = g.node("aten.add.Scalar", { self: s, other: float(1) });
      return g.node("aten.to.dtype", { self: a, dtype: dtype("float16") });
    },
    want: ["aten._softmax.default", "aten.add.Tensor", "aten._to_copy.default"],
  },
  {
    name: "transpose, narrow, stack, pad ⇒ permute, slice, cat, constant_pad_nd",
    build: (g) => {
      const x = g.input("x", [3, 4]);
      const t = g.node("aten.transpose.int", { self: x, dim0: int(0), dim1: int(1) });
      const n = g.node("aten.narrow.default", { self: t, dim: int(0), start: int(1), length: int(3) });
      const s = g.node("aten.stack.default", { tensors: { kind: "tensors", names: [n, n] }, dim: int(1) });
      return g.node("aten.pad.default", {
        self: s,
        pad: ints([1, 1]),
        mode: str("constant"),
        value: float(0.5),
      });
    },
    want: [
      "aten.permute.default",
      "aten.slice.Tensor",
      "aten.view.default",
      "aten.view.default",
      "aten.cat.default",
      "aten.constant_pad_nd.default",
    ],
  },
  ...[true, false].map((safe) => ({
    name: `core ATen attention math${safe ? " with safe softmax" : ""} ⇒ scaled_dot_product_attention`,
    build: (g: TestGraph) => {
      const [q, k, v] = ["q", "k", "v"].map((n) => g.input(n, [2, 3, 5, 4]));
      const qs = g.node("aten.mul.Scalar", { self: q, other: float(0.7) });
      const kt = g.node("aten.mul.Tensor", {
        self: g.node("aten.permute.default", { self: k, dims: ints([0, 1, 3, 2]) }),
        other: float(0.7),
      });
      const bmm = g.node("aten.bmm.default", {
        self: g.node("aten.view.default", { self: qs, size: ints([6, 5, 4]) }),
        mat2: g.node("aten.view.default", { self: kt, size: ints([6, 4, 5]) }),
      });
      const scores = g.node("aten.view.default", { self: bmm, size: ints([2, 3, 5, 5]) });
      let p = g.node("aten._softmax.default", { self: scores, dim: int(-1), half_to_float: bool(false) });
      if (safe) {
        const finite = g.node("aten.logical_not.default", {
          self: g.node("aten.eq.Scalar", { self: scores, other: float(Number.NEGATIVE_INFINITY) }),
        });
        const masked = g.node("aten.logical_not.default", {
          self: g.node("aten.any.dim", { self: finite, dim: int(-1), keepdim: bool(true) }),
        });
        p = g.node("aten.where.self", {
          condition: masked,
          self: g.node("aten.full_like.default", { self: p, fill_value: int(0) }),
          other: p,
        });
      }
      const out = g.node("aten.bmm.default", {
        self: g.node("aten.view.default", { self: p, size: ints([6, 5, 5]) }),
        mat2: g.node("aten.view.default", { self: v, size: ints([6, 5, 4]) }),
      });
      return g.node("aten.view.default", { self: out, size: ints([2, 3, 5, 4]) });
    },
    want: ["aten.scaled_dot_product_attention.default"],
  })),
  {
    name: "upsample_nearest2d (TorchScript overload) ⇒ upsample_nearest2d.vec",
    build: (g) =>
      g.node("aten.upsample_nearest2d.default", {
        self: g.input("x", [1, 2, 3, 4]),
        output_size: ints([7, 9]),
      }),
    want: ["aten.upsample_nearest2d.vec"],
  },
  {
    name: "in-place relu_ on a dead operand ⇒ relu",
    build: (g) =>
      g.node("aten.relu_.default", { self: g.node("aten.neg.default", { self: g.input("x", [4]) }) }),
    want: ["aten.neg.default", "aten.relu.default"],
  },
];

describe("decompose-to-core", () => {
  it.each(cases)("$name", ({ build, want }) => {
    const g = new TestGraph();
    const graph = g.build(build(g));
    const { graph: out } = lower(graph, decomposeToCore, foldConstantsPass(), eliminateDeadCodePass);
    expect(opsOf(out)).toEqual(want);
    expect(opsOf(out).every(isCoreOp)).toBe(true);
    expectSameResults(graph, out);
  });

  it("keeps an in-place op whose operand is read afterwards", () => {
    const g = new TestGraph();
    const x = g.node("aten.neg.default", { self: g.input("x", [4]) });
    const r = g.node("aten.relu_.default", { self: x });
    const graph = g.build(g.node("aten.add.Tensor", { self: r, other: x }));
    expect(opsOf(lower(graph, decomposeToCore).graph)).toContain("aten.relu_.default");
  });

  it("keeps 'same' padding that would need asymmetric pads", () => {
    const g = new TestGraph();
    const graph = g.build(
      g.node("aten.conv2d.padding", {
        input: g.input("x", [1, 1, 5, 5]),
        weight: g.weight("w", [1, 1, 2, 2]),
        padding: str("same"),
      }),
    );
    expect(opsOf(lower(graph, decomposeToCore).graph)).toEqual(["aten.conv2d.padding"]);
  });
});

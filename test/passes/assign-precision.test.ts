import { describe, expect, it } from "vitest";
import type { Graph } from "../../src/ir/graph.js";
import { assignPrecisionPass } from "../../src/passes/assign-precision.js";
import { eliminateDeadCodePass } from "../../src/passes/eliminate-dead-code.js";
import { BATCH_NORM } from "../../src/passes/fold-batch-norm.js";
import { bool, dtype, expectSameResults, float, int, ints, lower, none, TestGraph } from "./graphs.js";

function convBnSoftmax(): Graph {
  const g = new TestGraph();
  const x = g.input("x", [1, 3, 6, 6]);
  const c = g.node("aten.convolution.default", {
    input: x,
    weight: g.weight("w", [4, 3, 3, 3]),
    bias: g.weight("b", [4]),
    stride: ints([1, 1]),
    padding: ints([1, 1]),
    dilation: ints([1, 1]),
    transposed: bool(false),
    output_padding: ints([0, 0]),
    groups: int(1),
  });
  const [bn] = g.nodeOutputs(BATCH_NORM, {
    input: c,
    weight: g.weight("gamma", [4]),
    bias: g.weight("beta", [4]),
    running_mean: g.weight("mean", [4], { kind: "buffer" }),
    running_var: g.weight("var", [4], { lo: 0.5, hi: 2, kind: "buffer" }),
    momentum: float(0.1),
    eps: float(1e-5),
  });
  const r = g.node("aten.relu.default", { self: bn });
  const s = g.node("aten._softmax.default", { self: r, dim: int(1), half_to_float: bool(false) });
  return g.build(g.node("aten.mul.Tensor", { self: s, other: float(2) }));
}

const dtypeOf = (graph: Graph, op: string) =>
  graph.values[graph.nodes.find((n) => n.op === op)!.outputs[0]].dtype;

describe("assign-precision", () => {
  it("computes in float16, keeps norms and softmax in float32, casts at the edges", () => {
    const graph = convBnSoftmax();
    const { graph: out, trace } = lower(
      graph,
      assignPrecisionPass({ enabledPrecisions: ["float16", "float32"] }),
      eliminateDeadCodePass,
    );
    expect(out.values[out.inputs[0]].dtype).toBe("float32");
    expect(out.values[out.outputs[0]].dtype).toBe("float32");
    expect(out.outputs).toEqual(graph.outputs);
    expect(dtypeOf(out, "aten.convolution.default")).toBe("float16");
    expect(dtypeOf(out, BATCH_NORM)).toBe("float32");
    expect(dtypeOf(out, "aten.relu.default")).toBe("float16");
    expect(dtypeOf(out, "aten._softmax.default")).toBe("float32");
    expect(out.weights.w_f16?.tensor.dtype).toBe("float16");
    expect(out.weights.mean.tensor.dtype).toBe("float32");
    const casts = out.nodes.filter((n) => n.op === "aten._to_copy.default").map((n) => n.args.dtype);
    expect(casts).toEqual([
      dtype("float16"),
      dtype("float32"),
      dtype("float16"),
      dtype("float32"),
      dtype("float16"),
      dtype("float32"),
    ]);
    expect(trace.entries.filter((e) => e.rule === "keep-float32").map((e) => e.op)).toEqual([
      BATCH_NORM,
      "aten._softmax.default",
    ]);
    expectSameResults(graph, out, 2e-2);
  });

  it("uses bfloat16 when that is the reduced type enabled", () => {
    const graph = convBnSoftmax();
    const { graph: out } = lower(graph, assignPrecisionPass({ enabledPrecisions: ["bfloat16"] }));
    expect(dtypeOf(out, "aten.convolution.default")).toBe("bfloat16");
    expectSameResults(graph, out, 5e-2);
  });

  it("changes inputs and outputs too when keepIOTypes is false", () => {
    const graph = convBnSoftmax();
    const { graph: out } = lower(
      graph,
      assignPrecisionPass({ enabledPrecisions: ["float16"], keepIOTypes: false }),
    );
    expect(out.values[out.inputs[0]].dtype).toBe("float16");
  });

  it("is a no-op with float32 only", () => {
    const graph = convBnSoftmax();
    expect(lower(graph, assignPrecisionPass({ enabledPrecisions: ["float32"] })).graph).toBe(graph);
  });

  it("keeps big reductions in float32 (threshold configurable)", () => {
    const g = new TestGraph();
    const x = g.input("x", [2, 64, 8, 8]);
    const m = g.node("aten.mean.dim", { self: x, dim: ints([2, 3]), keepdim: bool(true), dtype: none });
    const graph = g.build(g.node("aten.sigmoid.default", { self: m }));
    const small = lower(graph, assignPrecisionPass({ enabledPrecisions: ["float16"] })).graph;
    expect(dtypeOf(small, "aten.mean.dim")).toBe("float16");
    const big = lower(
      graph,
      assignPrecisionPass({ enabledPrecisions: ["float16"], maxReducedPrecisionReduction: 32 }),
    ).graph;
    expect(dtypeOf(big, "aten.mean.dim")).toBe("float32");
    expectSameResults(graph, big, 1e-2);
  });

  it("runs a float → int conversion at the model's precision (float32 input)", () => {
    const g = new TestGraph();
    const x = g.input("x", [4]);
    const graph = g.build(
      g.node("aten._to_copy.default", {
        self: g.node("aten.mul.Tensor", { self: x, other: float(1000.3) }),
        dtype: dtype("int64"),
      }),
    );
    const { graph: out } = lower(graph, assignPrecisionPass({ enabledPrecisions: ["float16"] }));
    const toInt = out.nodes.find((n) => n.args.dtype?.kind === "dtype" && n.args.dtype.value === "int64")!;
    const src = toInt.args.self.kind === "tensor" ? toInt.args.self.name : "";
    expect(out.values[src].dtype).toBe("float32");
  });
});

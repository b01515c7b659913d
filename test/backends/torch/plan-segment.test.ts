// Whole-segment planning: in-place rebinding, constants, refusals listed before any native call.
import { describe, expect, it } from "vitest";
import { planFallback, planFallbackOrThrow } from "../../../src/backends/torch/plan-segment.js";
import { createTorchFallbackRunner } from "../../../src/backends/torch/runner.js";
import { UnsupportedOpError } from "../../../src/errors.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import type { Graph } from "../../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers } from "../../../src/ir/tensor.js";
import { evaluateNode, interpret } from "../../../src/ops/index.js";
import type { Segment } from "../../../src/partition/segment.js";
import { caseGraph } from "./cases.js";
import { evaluatePlan, relMaxError } from "./helpers.js";

const f32 = (...shape: number[]) => ({ dtype: "float32" as const, shape });

function segmentOf(graph: Graph): Segment {
  return {
    index: 3,
    kind: "fallback",
    nodes: graph.nodes,
    inputs: graph.inputs,
    weights: Object.keys(graph.weights),
    outputs: graph.outputs,
    graph,
  };
}

/** x → relu_(x) (in place) → y = x + 1 (reads x after the mutation); outputs x and y. */
function inplaceGraph(): Graph {
  const b = new GraphBuilder();
  b.addInput("x", f32(4));
  b.addNode(
    "aten.relu_.default",
    { self: { kind: "tensor", name: "x" } },
    [{ name: "r", type: f32(4) }],
    {},
    "relu_",
  );
  b.addNode(
    "aten.add.Tensor",
    { self: { kind: "tensor", name: "x" }, other: { kind: "float", value: 1 } },
    [{ name: "y", type: f32(4) }],
    {},
    "add",
  );
  b.setOutputs(["x", "y"]);
  return b.build();
}

describe("planning a segment", () => {
  it("runs in-place ops functionally and rebinds the mutated value for later readers and outputs", () => {
    const g = inplaceGraph();
    const plan = planFallbackOrThrow(g);
    expect(plan.steps.map((s) => s.call.op)).toEqual(["aten::relu", "aten::add"]);
    expect(plan.steps[1].call.args[0]).toEqual({ kind: "tensor", value: "r" });
    expect(plan.outputs).toEqual([
      { name: "x", value: "r", type: f32(4) },
      { name: "y", value: "y", type: f32(4) },
    ]);
    const x = tensorFromNumbers("float32", [4], [-1, 2, -3, 4]);
    const got = evaluatePlan(plan, g, new Map([["x", x]]));
    const want = interpret(g, [x]);
    expect(relMaxError(got.get("x") as never, want[0])).toBe(0);
    expect(relMaxError(got.get("y") as never, want[1])).toBe(0);
  });

  it("collects constants made by rewrites with the node's location in their names", () => {
    const plan = planFallbackOrThrow(inplaceGraph());
    expect(Object.keys(plan.constants)).toEqual(["add_c"]);
    expect(plan.constants.add_c.shape).toEqual([]);
  });

  it("lists every node it cannot run, with location and reason, in one error", () => {
    const b = new GraphBuilder();
    b.addInput("x", f32(2, 3));
    b.addNode(
      "aten.var.correction",
      {
        self: { kind: "tensor", name: "x" },
        dim: { kind: "ints", value: [1] },
        correction: { kind: "int", value: 2 },
      },
      [{ name: "v", type: f32(2) }],
      { modulePath: "head.stats" },
      "var",
    );
    b.addNode(
      "aten.frobnicate.default",
      { self: { kind: "tensor", name: "v" } },
      [{ name: "w", type: f32(2) }],
      {},
      "frob",
    );
    b.setOutputs(["w"]);
    const g = b.build();
    const r = planFallback(g);
    expect("unsupported" in r && r.unsupported.map((u) => u.node.name)).toEqual(["var", "frob"]);
    let err: unknown;
    try {
      planFallbackOrThrow(g, {}, "fallback segment 3");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedOpError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/fallback segment 3: 2 node\(s\)/);
    expect(msg).toMatch(/node 'var' \(aten.var.correction\) in module 'head.stats': correction 2/);
    expect(msg).toMatch(/node 'frob' \(aten.frobnicate.default\).*torchc's op table/);
  });

  it("refuses an unsupported segment before touching LibTorch or the GPU", () => {
    const b = new GraphBuilder();
    b.addInput("x", f32(2));
    b.addNode(
      "aten.frobnicate.default",
      { self: { kind: "tensor", name: "x" } },
      [{ name: "w", type: f32(2) }],
      {},
      "frob",
    );
    b.setOutputs(["w"]);
    const poisoned = new Proxy(
      {},
      {
        get: () => {
          throw new Error("native code was reached");
        },
      },
    );
    expect(() =>
      createTorchFallbackRunner(segmentOf(b.build()), { lib: poisoned as never, stream: poisoned as never }),
    ).toThrow(UnsupportedOpError);
  });

  it("eval-mode batch norm: CUDA's [C] save_mean/save_invstd are sliced to the graph's [0] (training keeps [C])", () => {
    // PyTorch: the CPU kernel (what export records) gives [0] stats in eval mode; batch_norm_cuda gives [C]
    // (running_mean, 1/sqrt(running_var + eps)). The GPU run of 18bf27e got float32[3] for a [0] output.
    const C = 3;
    const x = tensorFromNumbers("float32", [2, C, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const m = tensorFromNumbers("float32", [C], [0.5, -1, 2]);
    const v = tensorFromNumbers("float32", [C], [1, 4, 0.25]);
    const inputs = new Map([
      ["x", x],
      ["m", m],
      ["v", v],
    ]);
    const T = (name: string) => ({ kind: "tensor" as const, name });
    const common = { input: T("x"), weight: { kind: "none" as const }, bias: { kind: "none" as const } };
    const stats = { running_mean: T("m"), running_var: T("v") };
    const num = {
      momentum: { kind: "float" as const, value: 0.1 },
      eps: { kind: "float" as const, value: 1e-3 },
    };
    const cases = [
      {
        op: "aten._native_batch_norm_legit_no_training.default",
        args: { ...common, ...stats, ...num },
        c: 0,
      },
      {
        op: "aten._native_batch_norm_legit.default",
        args: { ...common, ...stats, training: { kind: "bool" as const, value: false }, ...num },
        c: 0,
      },
      {
        op: "aten.native_batch_norm.default",
        args: { ...common, ...stats, training: { kind: "bool" as const, value: true }, ...num },
        c: C,
      },
    ];
    for (const k of cases) {
      const { graph } = caseGraph({
        label: k.op,
        op: k.op,
        inputs: { x: f32(2, C, 2), m: f32(C), v: f32(C) },
        args: k.args,
      });
      expect(graph.outputs.map((o) => graph.values[o].shape)).toEqual([[2, C, 2], [k.c], [k.c]]);
      const plan = planFallback(graph);
      if (!("steps" in plan)) throw new Error("not planned");
      // what the GPU does: the batch norm kernel's stats come out [C] whatever the reference infers
      const cudaLike = new Map<string, Tensor>(inputs);
      for (const step of plan.steps) {
        const outs = evaluateNode(step.node, (n) => cudaLike.get(n) as Tensor);
        step.node.outputs.forEach((o, i) => {
          const cuda =
            step.node.op === k.op && i > 0 ? tensorFromNumbers("float32", [C], [0, 0, 0]) : outs[i];
          cudaLike.set(o, cuda);
        });
      }
      plan.outputs.forEach((o, i) => {
        const got = cudaLike.get(o.value) as Tensor;
        expect(got.shape, `${k.op} output ${i}`).toEqual(o.type.shape);
      });
      const sliced = plan.steps.filter((s) => s.node.op === "aten.slice.Tensor").length;
      expect(sliced).toBe(k.c === 0 ? 2 : 0);
      // and on the reference the plan computes what the node computes
      const got = evaluatePlan(plan, graph, inputs);
      const want = interpret(graph, [x, m, v]);
      graph.outputs.forEach((o, i) => {
        expect((got.get(o) as Tensor).shape).toEqual(want[i].shape);
        expect(relMaxError(got.get(o) as Tensor, want[i])).toBeLessThanOrEqual(1e-6);
      });
    }
  });
});

// Whole-segment planning: in-place rebinding, constants, refusals listed before any native call.
import { describe, expect, it } from "vitest";
import { planFallback, planFallbackOrThrow } from "../../../src/backends/torch/plan-segment.js";
import { createTorchFallbackRunner } from "../../../src/backends/torch/runner.js";
import { UnsupportedOpError } from "../../../src/errors.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import type { Graph } from "../../../src/ir/graph.js";
import { tensorFromNumbers } from "../../../src/ir/tensor.js";
import { interpret } from "../../../src/ops/index.js";
import type { Segment } from "../../../src/partition/segment.js";
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
});

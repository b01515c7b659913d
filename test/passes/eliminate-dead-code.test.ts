import { describe, expect, it } from "vitest";
import { eliminateDeadCodePass } from "../../src/passes/eliminate-dead-code.js";
import { dtype, expectSameResults, lower, opsOf, TestGraph } from "./graphs.js";

describe("eliminate-dead-code", () => {
  it("removes unused chains and unused weights, keeps outputs and their producers", () => {
    const g = new TestGraph();
    const x = g.input("x", [2, 3]);
    const w = g.weight("w", [3]);
    const unusedWeight = g.weight("unused", [3]);
    const live = g.node("aten.add.Tensor", { self: x, other: w });
    const dead1 = g.node("aten.neg.default", { self: live });
    g.node("aten.exp.default", { self: dead1 });
    g.node("aten.mul.Tensor", { self: x, other: unusedWeight });
    const graph = g.build(live);
    const { graph: out, trace } = lower(graph, eliminateDeadCodePass);
    expect(opsOf(out)).toEqual(["aten.add.Tensor"]);
    expect(Object.keys(out.weights)).toEqual(["w"]);
    expect(Object.keys(out.values).sort()).toEqual(["add", "w", "x"]);
    expect(trace.entries.map((e) => e.rule)).toEqual([
      "unused-result",
      "unused-result",
      "unused-result",
      "unused-weight",
    ]);
    expectSameResults(graph, out);
  });

  // The result is built without an immer draft: it must still be frozen throughout, share what it kept, and keep
  // the input's key order.
  it("returns a frozen graph sharing the kept nodes and records, in the input's order", () => {
    const g = new TestGraph();
    const x = g.input("x", [2, 3]);
    const a = g.node("aten.add.Tensor", { self: x, other: g.weight("w", [3]) });
    g.node("aten.neg.default", { self: a });
    const b = g.node("aten.mul.Tensor", { self: a, other: g.weight("v", [3]) });
    const graph = g.build(b);
    const { graph: out } = lower(graph, eliminateDeadCodePass);
    expect(out.nodes).toEqual([graph.nodes[0], graph.nodes[2]]);
    expect(out.nodes[0]).toBe(graph.nodes[0]);
    expect(Object.keys(out.values)).toEqual(Object.keys(graph.values).filter((v) => v !== "neg"));
    expect(Object.keys(out.weights)).toEqual(Object.keys(graph.weights));
    expect(out.values.x).toBe(graph.values.x);
    for (const part of [out, out.nodes, out.values, out.weights, out.inputs, out.outputs])
      expect(Object.isFrozen(part)).toBe(true);
    expect(() => (out.nodes as unknown[]).push(graph.nodes[1])).toThrow(TypeError);
  });

  it("keeps nodes without outputs (they exist for an effect)", () => {
    const g = new TestGraph();
    const x = g.input("x", [2]);
    g.nodeOutputs("aten._assert_tensor_metadata.default", { a: x, dtype: dtype("float32") });
    const graph = g.build(x);
    expect(lower(graph, eliminateDeadCodePass).graph).toBe(graph);
  });
});

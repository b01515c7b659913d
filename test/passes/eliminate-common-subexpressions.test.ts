import { describe, expect, it } from "vitest";
import { eliminateCommonSubexpressionsPass } from "../../src/passes/eliminate-common-subexpressions.js";
import { eliminateDeadCodePass } from "../../src/passes/eliminate-dead-code.js";
import { bool, expectSameResults, float, lower, opsOf, TestGraph } from "./graphs.js";

describe("eliminate-common-subexpressions", () => {
  it("merges repeated computations transitively, in one walk", () => {
    const g = new TestGraph();
    const x = g.input("x", [4]);
    const a1 = g.node("aten.sigmoid.default", { self: x });
    const a2 = g.node("aten.sigmoid.default", { self: x });
    const b1 = g.node("aten.mul.Tensor", { self: x, other: a1 });
    const b2 = g.node("aten.mul.Tensor", { self: x, other: a2 });
    const sum = g.node("aten.add.Tensor", { self: b1, other: b2 });
    const graph = g.build(sum, b2);
    const { graph: out, trace } = lower(graph, eliminateCommonSubexpressionsPass);
    expect(opsOf(out)).toEqual(["aten.sigmoid.default", "aten.mul.Tensor", "aten.add.Tensor"]);
    expect(out.outputs[1]).toBe(b1);
    expect(trace.entries.map((e) => e.detail)).toEqual([
      expect.stringMatching(/same as/),
      expect.stringMatching(/same as/),
    ]);
    expectSameResults(graph, out);
  });

  it("does not merge different arguments or random ops", () => {
    const g = new TestGraph();
    const x = g.input("x", [4]);
    const a = g.node("aten.mul.Tensor", { self: x, other: float(2) });
    const b = g.node("aten.mul.Tensor", { self: x, other: float(3) });
    const d1 = g.node("aten.dropout.default", { input: x, p: float(0.5), train: bool(true) });
    const d2 = g.node("aten.dropout.default", { input: x, p: float(0.5), train: bool(true) });
    const graph = g.build(a, b, d1, d2);
    expect(lower(graph, eliminateCommonSubexpressionsPass).graph).toBe(graph);
  });

  it("merges identical small constants but not parameters", () => {
    const g = new TestGraph();
    const x = g.input("x", [2]);
    const c1 = g.weight("c1", [2], { values: [1, 2], kind: "constant" });
    const c2 = g.weight("c2", [2], { values: [1, 2], kind: "constant" });
    const p1 = g.weight("p1", [2], { values: [1, 2] });
    const p2 = g.weight("p2", [2], { values: [1, 2] });
    const outs = [c1, c2, p1, p2].map((w) => g.node("aten.add.Tensor", { self: x, other: w }));
    const graph = g.build(...outs);
    const { graph: out } = lower(graph, eliminateCommonSubexpressionsPass, eliminateDeadCodePass);
    expect(Object.keys(out.weights).sort()).toEqual(["c1", "p1", "p2"]);
    expect(out.nodes).toHaveLength(3);
    expectSameResults(graph, out);
  });
});

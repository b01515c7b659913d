import { describe, expect, it } from "vitest";
import { eliminateDeadCodePass } from "../../src/passes/eliminate-dead-code.js";
import { foldConstantsPass } from "../../src/passes/fold-constants.js";
import { expectSameResults, float, ints, lower, opsOf, TestGraph } from "./graphs.js";

describe("fold-constants", () => {
  it("evaluates chains of nodes on weights and drops the originals", () => {
    const g = new TestGraph();
    const x = g.input("x", [2, 3]);
    const w = g.weight("w", [3, 2]);
    const wt = g.node("aten.permute.default", { self: w, dims: ints([1, 0]) });
    const scaled = g.node("aten.mul.Tensor", { self: wt, other: float(0.5) });
    const y = g.node("aten.add.Tensor", { self: x, other: scaled });
    const graph = g.build(y);
    const { graph: out, trace } = lower(graph, foldConstantsPass(), eliminateDeadCodePass);
    expect(opsOf(out)).toEqual(["aten.add.Tensor"]);
    expect(Object.values(out.weights).map((w) => w.kind)).toEqual(["constant"]);
    expect(Object.values(out.weights)[0].target).toMatch(/^folded:/);
    expect(trace.entries.filter((e) => e.rule === "fold-constant")).toHaveLength(2);
    expectSameResults(graph, out);
  });

  it("does not materialize broadcasts or results above the size limit", () => {
    const g = new TestGraph();
    const x = g.input("x", [4, 8]);
    const w = g.weight("w", [8]);
    const big = g.weight("big", [64]);
    const expanded = g.node("aten.expand.default", { self: w, size: ints([4, 8]) });
    const doubled = g.node("aten.mul.Tensor", { self: big, other: float(2) });
    const y = g.node("aten.add.Tensor", { self: x, other: expanded });
    const graph = g.build(y, doubled);
    const { graph: out } = lower(graph, foldConstantsPass({ maxElements: 32 }));
    expect(opsOf(out)).toEqual(["aten.expand.default", "aten.mul.Tensor", "aten.add.Tensor"]);
  });

  it("folds nodes without inputs up to maxCreated", () => {
    const g = new TestGraph();
    const x = g.input("x", [3]);
    const z = g.node("aten.full.default", { size: ints([3]), fill_value: float(2) });
    const graph = g.build(g.node("aten.mul.Tensor", { self: x, other: z }));
    const { graph: out } = lower(graph, foldConstantsPass());
    expect(opsOf(out)).toEqual(["aten.mul.Tensor"]);
    expectSameResults(graph, out);
    expect(opsOf(lower(graph, foldConstantsPass({ maxCreated: 2 })).graph)).toHaveLength(2);
  });
});

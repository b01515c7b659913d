import { describe, expect, it } from "vitest";
import { removeEvalNoOps } from "../../src/passes/remove-eval-no-ops.js";
import { bool, dtype, expectSameResults, float, ints, lower, opsOf, TestGraph } from "./graphs.js";

describe("remove-eval-no-ops", () => {
  it("drops eval dropout, copies, same-dtype casts and static asserts", () => {
    const g = new TestGraph();
    let v = g.input("x", [2, 4]);
    v = g.node("aten.dropout.default", { input: v, p: float(0.5), train: bool(false) });
    v = g.node("aten.clone.default", { self: v });
    v = g.node("aten.relu.default", { self: v });
    v = g.node("aten._to_copy.default", { self: v, dtype: dtype("float32") });
    v = g.node("aten.detach.default", { self: v });
    g.nodeOutputs("aten._assert_tensor_metadata.default", { a: v, dtype: dtype("float32") });
    v = g.node("aten.alias.default", { self: v });
    const graph = g.build(v);
    const { graph: out, trace } = lower(graph, removeEvalNoOps);
    expect(opsOf(out)).toEqual(["aten.relu.default"]);
    expectSameResults(graph, out);
    expect(trace.entries.map((e) => e.rule)).toEqual([
      "remove-eval-dropout",
      "remove-copy",
      "remove-same-type-cast",
      "remove-copy",
      "remove-static-assert",
      "remove-copy",
    ]);
  });

  it("drops pads by nothing (Swin's window padding at 224×224) and keeps real or shifting pads", () => {
    const g = new TestGraph();
    const x = g.input("x", [2, 3, 4]);
    const a = g.node("aten.pad.default", { self: x, pad: ints([0, 0, 0, 0]) });
    const b = g.node("aten.constant_pad_nd.default", { self: a, pad: ints([0, 0]), value: float(0) });
    // same shape, moved contents: crop one side, pad the other
    const c = g.node("aten.constant_pad_nd.default", { self: b, pad: ints([-1, 1]), value: float(0) });
    const d = g.node("aten.constant_pad_nd.default", { self: c, pad: ints([1, 1]), value: float(2) });
    const graph = g.build(d);
    const { graph: out, trace } = lower(graph, removeEvalNoOps);
    expect(opsOf(out)).toEqual(["aten.constant_pad_nd.default", "aten.constant_pad_nd.default"]);
    expect(trace.entries.map((e) => e.rule)).toEqual(["remove-zero-pad", "remove-zero-pad"]);
    expectSameResults(graph, out);
  });

  it("keeps training dropout and real casts", () => {
    const g = new TestGraph();
    const x = g.input("x", [3]);
    const d = g.node("aten.dropout.default", { input: x, p: float(0.5), train: bool(true) });
    const h = g.node("aten._to_copy.default", { self: d, dtype: dtype("float16") });
    const graph = g.build(h);
    expect(opsOf(lower(graph, removeEvalNoOps).graph)).toEqual([
      "aten.dropout.default",
      "aten._to_copy.default",
    ]);
  });

  it("keeps a no-op whose input is a graph output twice over (outputs still resolve)", () => {
    const g = new TestGraph();
    const x = g.input("x", [3]);
    const c = g.node("aten.clone.default", { self: x });
    const graph = g.build(c, x);
    const { graph: out } = lower(graph, removeEvalNoOps);
    expect(out.nodes).toHaveLength(0);
    expect(out.outputs).toEqual(["x", "x"]);
    expectSameResults(graph, out);
  });
});

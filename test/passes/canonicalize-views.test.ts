import { describe, expect, it } from "vitest";
import { printGraph } from "../../src/ir/printer.js";
import { canonicalizeViews } from "../../src/passes/canonicalize-views.js";
import { expectSameResults, int, ints, lower, opsOf, TestGraph } from "./graphs.js";

describe("canonicalize-views", () => {
  it("turns every reshape-like op into one view with the explicit shape, merging chains", () => {
    const g = new TestGraph();
    const x = g.input("x", [2, 3, 4]);
    let v = g.node("aten.reshape.default", { self: x, shape: ints([6, -1]) });
    v = g.node("aten.unsqueeze.default", { self: v, dim: int(0) });
    v = g.node("aten.flatten.using_ints", { self: v, start_dim: int(1) });
    const r = g.node("aten.relu.default", { self: v });
    const s = g.node("aten.squeeze.dim", {
      self: g.node("aten.unsqueeze.default", { self: r, dim: int(1) }),
      dim: int(1),
    });
    const graph = g.build(s);
    const { graph: out } = lower(graph, canonicalizeViews);
    expect(opsOf(out)).toEqual(["aten.view.default", "aten.relu.default"]);
    expect(out.nodes[0].args.size).toEqual({ kind: "ints", value: [1, 24] });
    expectSameResults(graph, out);
  });

  it("drops identity views, expands and permutes and merges permutes", () => {
    const g = new TestGraph();
    const x = g.input("x", [2, 3, 4]);
    let v = g.node("aten.view.default", { self: x, size: ints([2, 3, 4]) });
    v = g.node("aten.expand.default", { self: v, size: ints([-1, 3, 4]) });
    v = g.node("aten.permute.default", { self: v, dims: ints([2, 0, 1]) });
    v = g.node("aten.permute.default", { self: v, dims: ints([1, 2, 0]) });
    const a = g.node("aten.permute.default", { self: x, dims: ints([1, 0, 2]) });
    const b = g.node("aten.permute.default", { self: a, dims: ints([0, 2, 1]) });
    const graph = g.build(g.node("aten.add.Tensor", { self: v, other: x }), b);
    const { graph: out } = lower(graph, canonicalizeViews);
    expect(opsOf(out)).toEqual(["aten.permute.default", "aten.add.Tensor"]);
    expect(out.nodes[0].args.dims).toEqual({ kind: "ints", value: [1, 2, 0] });
    expectSameResults(graph, out);
  });

  it("turns a permute of size-1 dims into a view", () => {
    const g = new TestGraph();
    const x = g.input("x", [2, 1, 5]);
    const graph = g.build(g.node("aten.permute.default", { self: x, dims: ints([1, 0, 2]) }));
    const { graph: out } = lower(graph, canonicalizeViews);
    expect(opsOf(out)).toEqual(["aten.view.default"]);
    expectSameResults(graph, out);
  });

  it("moves a permute that keeps the last dim below a linear, and only such a permute", () => {
    const g = new TestGraph();
    const x = g.input("x", [2, 5, 4]);
    const w = g.weight("w", [6, 4]);
    const bias = g.weight("b", [6]);
    // nn.MultiheadAttention's sequence-first transpose in front of its projection
    const seqFirst = g.node("aten.permute.default", { self: x, dims: ints([1, 0, 2]) });
    const y = g.node("aten.linear.default", { input: seqFirst, weight: w, bias });
    // a permute moving the feature dim, and one read twice, stay where they are
    const moved = g.node("aten.permute.default", { self: x, dims: ints([0, 2, 1]) });
    const z = g.node("aten.linear.default", { input: moved, weight: g.weight("w2", [3, 5]) });
    const shared = g.node("aten.permute.default", { self: x, dims: ints([1, 0, 2]) });
    const u = g.node("aten.linear.default", { input: shared, weight: w });
    // a 1-D weight drops the feature dim: stays
    const vec = g.node("aten.linear.default", {
      input: g.node("aten.permute.default", { self: x, dims: ints([1, 0, 2]) }),
      weight: g.weight("w1", [4]),
    });
    const graph = g.build(y, z, u, shared, vec);
    const { graph: out, trace } = lower(graph, canonicalizeViews);
    expect(trace.entries.filter((e) => e.rule === "linear-before-permute")).toHaveLength(1);
    const first = out.nodes.find((n) => n.op === "aten.linear.default" && n.args.bias !== undefined);
    expect(first?.args.input).toEqual({ kind: "tensor", name: x });
    expectSameResults(graph, out);
  });

  it("is idempotent", () => {
    const g = new TestGraph();
    const x = g.input("x", [4, 6]);
    const v = g.node("aten.reshape.default", {
      self: g.node("aten.t.default", { self: x }),
      shape: ints([3, 8]),
    });
    const graph = g.build(g.node("aten.view.default", { self: v, size: ints([-1]) }));
    const once = lower(graph, canonicalizeViews).graph;
    const twice = lower(once, canonicalizeViews);
    expect(printGraph(twice.graph)).toBe(printGraph(once));
    expect(twice.trace.entries).toHaveLength(0);
  });
});

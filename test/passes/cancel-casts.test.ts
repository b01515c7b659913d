import { describe, expect, it } from "vitest";
import { cancelCasts, widensExactly } from "../../src/passes/cancel-casts.js";
import { eliminateDeadCodePass } from "../../src/passes/eliminate-dead-code.js";
import { dtype, expectSameResults, lower, opsOf, TestGraph } from "./graphs.js";

const CAST = "aten._to_copy.default";

describe("cancel-casts", () => {
  it("removes float16 → float32 → float16 and keeps the wide value for its other reader", () => {
    const g = new TestGraph();
    const x = g.input("x", [2, 5], "float16");
    const wide = g.node(CAST, { self: x, dtype: dtype("float32") });
    const back = g.node(CAST, { self: wide, dtype: dtype("float16") });
    const y = g.node("aten.relu.default", { self: back });
    const other = g.node("aten.exp.default", { self: wide });
    const graph = g.build(y, other);
    const { graph: out, trace } = lower(graph, cancelCasts, eliminateDeadCodePass);
    // relu reads x itself; the float32 value stays for exp
    const relu = out.nodes.find((n) => n.op === "aten.relu.default")!;
    expect(relu.args.self).toEqual({ kind: "tensor", name: x });
    expect(opsOf(out).filter((o) => o === CAST)).toHaveLength(1);
    expect(trace.entries.map((e) => e.rule)).toContain("cancel-widening-cast");
    expectSameResults(graph, out, 0);
  });

  it("drops both casts when nothing else reads the wide value", () => {
    const g = new TestGraph();
    const x = g.input("x", [3], "float16");
    const wide = g.node(CAST, { self: x, dtype: dtype("float32") });
    const graph = g.build(
      g.node("aten.neg.default", { self: g.node(CAST, { self: wide, dtype: dtype("float16") }) }),
    );
    const { graph: out } = lower(graph, cancelCasts, eliminateDeadCodePass);
    expect(opsOf(out)).toEqual(["aten.neg.default"]);
    expectSameResults(graph, out, 0);
  });

  it("turns a widening then a cast to a third type into one cast", () => {
    const g = new TestGraph();
    const x = g.input("x", [4], "float16");
    const wide = g.node(CAST, { self: x, dtype: dtype("float64") });
    const graph = g.build(g.node(CAST, { self: wide, dtype: dtype("int32") }));
    const { graph: out } = lower(graph, cancelCasts, eliminateDeadCodePass);
    expect(out.nodes).toHaveLength(1);
    expect(out.nodes[0].args.self).toEqual({ kind: "tensor", name: x });
    expect(out.nodes[0].args.dtype).toEqual(dtype("int32"));
    expectSameResults(graph, out, 0);
  });

  it("keeps float32 → float16 → float32: it rounds", () => {
    const g = new TestGraph();
    const x = g.input("x", [4]);
    const narrow = g.node(CAST, { self: x, dtype: dtype("float16") });
    const graph = g.build(g.node(CAST, { self: narrow, dtype: dtype("float32") }));
    const { graph: out } = lower(graph, cancelCasts);
    expect(opsOf(out)).toEqual([CAST, CAST]);
    expect(widensExactly("float32", "float16")).toBe(false);
    expect(widensExactly("float16", "float32")).toBe(true);
    expect(widensExactly("int32", "float32")).toBe(false);
  });
});

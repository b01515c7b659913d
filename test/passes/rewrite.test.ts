import { describe, expect, it } from "vitest";
import { printGraph } from "../../src/ir/printer.js";
import { verifyGraph } from "../../src/ir/verify.js";
import { arg } from "../../src/passes/rewrite/args.js";
import { RewriteLimitError, rewriteToFixedPoint } from "../../src/passes/rewrite/driver.js";
import { commutative, constantScalar, op, value } from "../../src/passes/rewrite/pattern.js";
import { rule, ruleSet } from "../../src/passes/rewrite/rule.js";
import { formatTrace, TraceRecorder } from "../../src/passes/rewrite/trace.js";
import { RewriteError } from "../../src/passes/rewrite/working-graph.js";
import { expectSameResults, opsOf, TestGraph } from "./graphs.js";

const x = value();
const reluOfRelu = rule({
  name: "relu-relu",
  doc: "relu(relu(x)) ⇒ relu(x)",
  pattern: op("aten.relu.default", { self: op("aten.relu.default", { self: x }) }),
  captures: { x },
  rewrite: ({ x, root }, ctx) =>
    ctx.replaceWithNode("aten.relu.default", { self: arg.tensor(x) }, root.out.type),
});

const s = value();
const silu = rule({
  name: "silu",
  doc: "x * sigmoid(x) ⇒ silu(x)",
  pattern: commutative("aten.mul.Tensor", s, op("aten.sigmoid.default", { self: s })),
  captures: { s },
  rewrite: ({ s, root }, ctx) =>
    ctx.replaceWithNode("aten.silu.default", { self: arg.tensor(s) }, root.out.type),
});

function reluChain(n: number) {
  const g = new TestGraph();
  let v = g.input("x", [2, 3]);
  for (let i = 0; i < n; i++) v = g.node("aten.relu.default", { self: v });
  return g.build(v);
}

describe("rewrite driver", () => {
  it("collapses a chain in one sweep, prunes consumed nodes, and traces every firing", () => {
    const graph = reluChain(4);
    const trace = new TraceRecorder();
    const out = verifyGraph(rewriteToFixedPoint(graph, [reluOfRelu], { pass: "test", trace }));
    expect(opsOf(out)).toEqual(["aten.relu.default"]);
    expectSameResults(graph, out);
    const entries = trace.snapshot().entries;
    expect(entries.map((e) => e.rule)).toEqual(["relu-relu", "relu-relu", "relu-relu"]);
    expect(entries[0]).toMatchObject({ pass: "test", op: "aten.relu.default" });
    expect(entries[0].source).toMatch(/model\.py:\d+ in forward/);
    expect(entries[0].ruleLocation).toMatch(/^test\/passes\/rewrite\.test\.ts:\d+$/);
    const text = formatTrace(trace.snapshot());
    expect(text).toContain("pass test: 3 changes");
    expect(text).toMatch(/relu-relu\s+relu\w* \(aten\.relu\.default\) at model\.py/);
  });

  it("never mutates the input graph", () => {
    const graph = reluChain(3);
    const before = printGraph(graph);
    rewriteToFixedPoint(graph, [reluOfRelu]);
    expect(printGraph(graph)).toBe(before);
    expect(Object.isFrozen(graph.nodes)).toBe(true);
  });

  it("returns the same graph object when nothing matches", () => {
    const graph = reluChain(1);
    expect(rewriteToFixedPoint(graph, [reluOfRelu])).toBe(graph);
  });

  it("requires a capture used twice to bind the same value, in either operand order", () => {
    const g = new TestGraph();
    const a = g.input("a", [4]);
    const b = g.input("b", [4]);
    const same = g.node("aten.mul.Tensor", { self: g.node("aten.sigmoid.default", { self: a }), other: a });
    const different = g.node("aten.mul.Tensor", {
      self: b,
      other: g.node("aten.sigmoid.default", { self: a }),
    });
    const graph = g.build(same, different);
    const out = verifyGraph(rewriteToFixedPoint(graph, [silu]));
    expect(opsOf(out)).toEqual(["aten.silu.default", "aten.sigmoid.default", "aten.mul.Tensor"]);
    expectSameResults(graph, out);
  });

  it("matches value types and use counts", () => {
    const y = value({ dtype: "float16" });
    const onlyHalf = rule({
      name: "half-only",
      doc: "relu(x: float16) ⇒ x (for the test)",
      pattern: op("aten.relu.default", { self: y }),
      captures: { y },
      rewrite: ({ y }, ctx) => ctx.replaceWith(y),
    });
    expect(rewriteToFixedPoint(reluChain(1), [onlyHalf]).nodes).toHaveLength(1);
    const single = rule({
      name: "single-use",
      doc: "neg(relu(x)) with relu used once ⇒ x (for the test)",
      pattern: op("aten.neg.default", {
        self: op("aten.relu.default", { self: value() }, { singleUse: true }),
      }),
      rewrite: ({ root }, ctx) =>
        ctx.replaceWithNode("aten.relu.default", { self: root.args.self }, root.out.type),
    });
    const g = new TestGraph();
    const r = g.node("aten.relu.default", { self: g.input("x", [3]) });
    const graph = g.build(g.node("aten.neg.default", { self: r }), r);
    expect(rewriteToFixedPoint(graph, [single])).toBe(graph);
  });

  it("matches literal and constant-weight scalars", () => {
    const v = value();
    const timesOne = rule({
      name: "mul-one",
      doc: "x * 1 ⇒ x",
      pattern: commutative("aten.mul.Tensor", v, constantScalar(1)),
      captures: { v },
      rewrite: ({ v, root }, ctx) =>
        v.type.shape.join() === root.out.type.shape.join() ? ctx.replaceWith(v) : undefined,
    });
    const g = new TestGraph();
    const a = g.input("a", [2, 2]);
    const ones = g.weight("ones", [2, 2], { values: [1, 1, 1, 1] });
    const m1 = g.node("aten.mul.Tensor", { self: a, other: { kind: "int", value: 1 } });
    const m2 = g.node("aten.mul.Tensor", { self: ones, other: m1 });
    const m3 = g.node("aten.mul.Tensor", { self: m2, other: { kind: "float", value: 2 } });
    const graph = g.build(m3);
    const out = verifyGraph(rewriteToFixedPoint(graph, [timesOne]));
    expect(opsOf(out)).toEqual(["aten.mul.Tensor"]);
    expectSameResults(graph, out);
  });

  it("tries rules in list order: the first replacement wins", () => {
    const first = rule({
      name: "first",
      doc: "relu(x) ⇒ neg(neg(x))",
      pattern: op("aten.relu.default", { self: value() }),
      rewrite: ({ root }, ctx) => {
        const b = ctx.build();
        const n = b.node("aten.abs.default", { self: root.args.self }, root.out.type);
        return b.replace(n);
      },
    });
    const second = rule({
      name: "second",
      doc: "relu(x) ⇒ x",
      pattern: op("aten.relu.default", { self: value() }),
      rewrite: ({ root }, ctx) => ctx.replaceWith((root.args.self as { name: string }).name),
    });
    const trace = new TraceRecorder();
    rewriteToFixedPoint(reluChain(1), ruleSet(first, second), { trace });
    expect(trace.snapshot().entries.map((e) => e.rule)).toEqual(["first"]);
  });

  it("stops a rule set that never settles", () => {
    const forever = rule({
      name: "forever",
      doc: "relu(x) ⇒ relu(x), a new node each time",
      pattern: op("aten.relu.default"),
      rewrite: ({ root }, ctx) => ctx.replaceWithNode(root.op, { ...root.node.args }, root.out.type),
    });
    expect(() => rewriteToFixedPoint(reluChain(1), [forever], { maxSteps: 50 })).toThrow(RewriteLimitError);
    expect(() => rewriteToFixedPoint(reluChain(1), [forever], { maxSteps: 50 })).toThrow(/forever/);
  });

  it("rejects a replacement of another type", () => {
    const bad = rule({
      name: "bad",
      doc: "relu(x) ⇒ x as float16 (wrong)",
      pattern: op("aten.relu.default"),
      rewrite: ({ root }, ctx) =>
        ctx.replaceWithNode(
          "aten._to_copy.default",
          { self: root.args.self, dtype: arg.dtype("float16") },
          { ...root.out.type, dtype: "float16" },
        ),
    });
    expect(() => rewriteToFixedPoint(reluChain(1), [bad])).toThrow(RewriteError);
  });

  it("reports a capture missing from the pattern when the rule is defined", () => {
    const stray = value();
    expect(() =>
      rule({
        name: "stray",
        doc: "",
        pattern: op("aten.relu.default"),
        captures: { stray },
        rewrite: () => undefined,
      }),
    ).toThrow(/capture 'stray'/);
  });

  it("rejects two rules with one name in a set", () => {
    expect(() => ruleSet(reluOfRelu, [silu, reluOfRelu])).toThrow(/relu-relu/);
  });
});

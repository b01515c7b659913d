import { describe, expect, it } from "vitest";
import { toFloat64Array } from "./../../src/ir/tensor.js";
import { interpret } from "../../src/ops/index.js";
import { DROPOUT_OPS, INPLACE_DROPOUT_OPS } from "../../src/passes/eval-dropout.js";
import { defaultPipeline } from "../../src/passes/pipeline.js";
import { removeEvalNoOps } from "../../src/passes/remove-eval-no-ops.js";
import { bool, expectSameResults, float, inputsFor, lower, none, opsOf, TestGraph } from "./graphs.js";

// What PyTorch does (aten/src/ATen/native/Dropout.cpp, `_dropout_impl`): `if (p == 0 || !train ||
// input.numel() == 0) return input;` for all four functional variants and their in-place twins.
// native_dropout(train=False) returns (input, ones_like(input, bool)); train=None means training.

describe("eval-mode dropout removal", () => {
  for (const op of DROPOUT_OPS) {
    it(`${op}(x, 0.3, train=False) ⇒ x`, () => {
      const g = new TestGraph();
      const x = g.input("x", [2, 3, 4]);
      const d = g.node(op, { input: x, p: float(0.3), train: bool(false) });
      const y = g.node("aten.relu.default", { self: d });
      const graph = g.build(y);
      const { graph: out, trace } = lower(graph, removeEvalNoOps);
      expect(opsOf(out)).toEqual(["aten.relu.default"]);
      expect(out.nodes[0].args.self).toEqual({ kind: "tensor", name: "x" });
      expect(trace.entries.map((e) => e.rule)).toEqual(["remove-eval-dropout"]);
      expectSameResults(graph, out);
    });

    it(`${op}(x, 0, train=True) ⇒ x; ${op}(x, 0.3, train=True) stays`, () => {
      const g = new TestGraph();
      const x = g.input("x", [5]);
      const zero = g.node(op, { input: x, p: float(0), train: bool(true) });
      const real = g.node(op, { input: zero, p: float(0.3), train: bool(true) });
      const { graph: out } = lower(g.build(real), removeEvalNoOps);
      expect(opsOf(out)).toEqual([op]);
      expect(out.nodes[0].args.input).toEqual({ kind: "tensor", name: "x" });
    });
  }

  for (const op of INPLACE_DROPOUT_OPS) {
    it(`${op}(x, 0.2, train=False) ⇒ x, also when x is read after the call`, () => {
      const g = new TestGraph();
      const x = g.input("x", [2, 6]);
      const r = g.node("aten.relu.default", { self: x });
      const d = g.node(op, { self: r, p: float(0.2), train: bool(false) });
      // reads the mutated tensor after the in-place call, and the call's result
      const s = g.node("aten.add.Tensor", { self: r, other: d });
      const graph = g.build(s);
      const { graph: out, trace } = lower(graph, removeEvalNoOps);
      expect(opsOf(out)).toEqual(["aten.relu.default", "aten.add.Tensor"]);
      expect(trace.entries.map((e) => e.rule)).toEqual(["remove-eval-inplace-dropout"]);
      expectSameResults(graph, out);
    });
  }

  it("in-place eval dropout is gone after the whole default pipeline (it used to survive as dropout)", () => {
    // mobilenet_v3 / mnasnet / efficientnet_v2 classifiers: Dropout(inplace=True) between two Linears.
    const g = new TestGraph();
    const x = g.input("x", [2, 8]);
    const w = g.weight("w", [4, 8]);
    const h = g.node("aten.hardswish.default", { self: x });
    const d = g.node("aten.dropout_.default", { self: h, p: float(0.2), train: bool(false) });
    const y = g.node("aten.linear.default", { input: d, weight: w });
    const graph = g.build(y);
    const { graph: out } = lower(graph, ...defaultPipeline());
    expect(opsOf(out).some((o) => o.includes("dropout"))).toBe(false);
    expectSameResults(graph, out);
  });

  it("native_dropout(train=False) ⇒ x, with an unused mask", () => {
    const g = new TestGraph();
    const x = g.input("x", [3, 4]);
    const [o] = g.nodeOutputs("aten.native_dropout.default", { input: x, p: float(0.5), train: bool(false) });
    const y = g.node("aten.neg.default", { self: o });
    const graph = g.build(y);
    const { graph: out } = lower(graph, removeEvalNoOps);
    expect(opsOf(out)).toEqual(["aten.neg.default"]);
    expectSameResults(graph, out);
  });

  it("native_dropout(train=False) with a used mask ⇒ x and an all-true bool mask", () => {
    const g = new TestGraph();
    const x = g.input("x", [3, 4]);
    const [o, m] = g.nodeOutputs("aten.native_dropout.default", {
      input: x,
      p: float(0.5),
      train: bool(false),
    });
    const graph = g.build(o, m);
    const { graph: out } = lower(graph, removeEvalNoOps);
    expect(opsOf(out)).toEqual(["aten.full.default"]);
    expect(out.outputs[0]).toBe("x");
    const inputs = inputsFor(graph);
    const [y, mask] = interpret(out, inputs);
    expect(mask.dtype).toBe("bool");
    expect(mask.shape).toEqual([3, 4]);
    expect(Array.from(toFloat64Array(mask))).toEqual(new Array(12).fill(1));
    expect(Array.from(toFloat64Array(y))).toEqual(Array.from(toFloat64Array(inputs[0])));
  });

  it("native_dropout with train=None (training) and p>0 stays; with p=0 it goes", () => {
    const g = new TestGraph();
    const x = g.input("x", [4]);
    const [a] = g.nodeOutputs("aten.native_dropout.default", { input: x, p: float(0.5), train: none });
    const [b] = g.nodeOutputs("aten.native_dropout.default", { input: a, p: float(0), train: none });
    const { graph: out } = lower(g.build(b), removeEvalNoOps);
    expect(opsOf(out)).toEqual(["aten.native_dropout.default"]);
    expect(out.outputs[0]).toBe(out.nodes[0].outputs[0]);
    expect(out.nodes[0].args.p).toEqual(float(0.5));
  });
});

// Every rewrite the LibTorch fallback applies computes, on the aten reference ops, what the original node
// computes; and no Scalar-taking op of the op table is left without a rule.
import { describe, expect, it } from "vitest";
import { libtorchLowering } from "../../../src/backends/torch/lowering-rules.js";
import { SHIM_OPS } from "../../../src/backends/torch/plan-dispatch.js";
import { planFallback } from "../../../src/backends/torch/plan-segment.js";
import { wrappedDtype } from "../../../src/backends/torch/rewrite-context.js";
import type { Tensor } from "../../../src/ir/tensor.js";
import { evaluateNode, functionalVariant, OPS } from "../../../src/ops/index.js";
import { caseGraph, REWRITE_CASES, randomTensor, rng } from "./cases.js";
import { evaluatePlan, relMaxError } from "./helpers.js";

describe("rewrites agree with the aten reference", () => {
  it.each(REWRITE_CASES.map((k, i) => [k.label, k, i] as const))("%s", (_l, k, i) => {
    const { graph, node } = caseGraph(k);
    const r = rng(100 + i);
    const inputs = new Map<string, Tensor>(graph.inputs.map((n) => [n, randomTensor(r, graph.values[n])]));
    const want = evaluateNode(node, (n) => inputs.get(n) as Tensor);
    const plan = planFallback(graph);
    if (!("steps" in plan)) throw new Error(plan.unsupported.map((u) => u.reason).join("\n"));
    // Nothing Scalar reaches the dispatcher; only the add shim takes a double.
    for (const s of plan.steps) {
      if (s.call.via === "dispatcher") expect(s.call.args.some((a) => a.kind === "double")).toBe(false);
      else expect(s.node.op).toBe("aten.add.Tensor");
      expect(s.node.op).not.toMatch(/_\./);
    }
    const got = evaluatePlan(plan, graph, inputs);
    graph.outputs.forEach((o, j) => {
      const g = got.get(o) as Tensor;
      expect(g.dtype).toBe(want[j].dtype);
      expect(g.shape).toEqual(want[j].shape);
      if (k.typeOnly) return;
      const exact = !(g.dtype.startsWith("float") || g.dtype === "bfloat16");
      expect(relMaxError(g, want[j])).toBeLessThanOrEqual(exact ? 0 : g.dtype === "float16" ? 1e-3 : 1e-6);
    });
  });

  it("convolutions keep TF32 off through _convolution(allow_tf32=False), and are left alone when it is allowed", () => {
    const conv = REWRITE_CASES.find((k) => k.op === "aten.conv2d.default");
    const { graph } = caseGraph(conv as never);
    const off = planFallback(graph);
    const on = planFallback(graph, { allowTf32: true });
    if (!("steps" in off) || !("steps" in on)) throw new Error("unsupported");
    expect(off.steps.map((s) => s.call.op)).toEqual(["aten::_convolution"]);
    expect(off.steps[0].call.args.at(-1)).toEqual({ kind: "bool", value: false });
    expect(on.steps.map((s) => s.call.op)).toEqual(["aten::conv2d"]);
  });
});

describe("the rule tables", () => {
  const scalarOps = Object.values(OPS)
    .filter((d) => d.schema.some((s) => s.type === "Scalar" || s.type === "Scalar?"))
    .map((d) => d.name);

  it.each(scalarOps)("%s has a Scalar rule (or a shim)", (op) => {
    const target = functionalVariant(op) ?? op;
    const rule = libtorchLowering(false).some((r) => r.pattern.ops?.includes(target));
    expect(Boolean(rule || SHIM_OPS[target]), `no rule for ${target}`).toBe(true);
  });

  it("every rule has a reason and a test case", () => {
    const tested = new Set(REWRITE_CASES.map((k) => k.op));
    for (const rule of libtorchLowering(false)) {
      expect(rule.doc.length, rule.name).toBeGreaterThan(10);
      for (const op of rule.pattern.ops ?? []) {
        if (op === "aten._assert_tensor_metadata.default" || op.includes("flash_attention_for_cpu")) continue;
        expect(tested.has(op), `no case for ${op}`).toBe(true);
      }
    }
  });

  it("wrapped numbers never raise a tensor's dtype within its category", () => {
    expect(wrappedDtype("float", "float16")).toBe("float16");
    expect(wrappedDtype("float", "int32")).toBe("float32");
    expect(wrappedDtype("int", "int8")).toBe("int8");
    expect(wrappedDtype("int", "bool")).toBe("int64");
    expect(wrappedDtype("bool", "float32")).toBe("float32");
  });
});

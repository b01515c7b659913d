// RMSNorm through the CUDA plan, emulated on the CPU: both spellings (aten.rms_norm as torch.export's default IR
// keeps it, and the pow/mean/add/rsqrt/mul arithmetic core ATen decomposes it into) become one rows kernel that
// also computes the residual add before it, and the emulated kernel computes what the aten reference does
// (whose rms_norm is checked against PyTorch in test/ops/extra-golden.json).
import { describe, expect, it } from "vitest";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { convertGraph } from "../../../src/converters/index.js";
import type { Graph } from "../../../src/ir/graph.js";
import { interpret } from "../../../src/ops/index.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { compareTensors } from "../../../src/util/compare.js";
import { inputsFor } from "../../passes/graphs.js";
import { AtenGraph, F, I, Is } from "./aten-graph.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const [T, C] = [6, 48];
const EPS = 1e-6;

/** y = rms(x + r) · w, then a linear: `decomposed` spells rms out as core ATen does. */
function residualRms(decomposed: boolean): Graph {
  const g = new AtenGraph();
  const x = g.input("x", [2, T, C]);
  const r = g.input("r", [2, T, C]);
  const w = g.weight("w", [C], { lo: 0.5, hi: 1.5 });
  const s = g.node("aten.add.Tensor", { self: x, other: r });
  let y: string;
  if (decomposed) {
    const sq = g.node("aten.pow.Tensor_Scalar", { self: s, exponent: I(2) });
    const ms = g.node("aten.mean.dim", { self: sq, dim: Is([-1]), keepdim: { kind: "bool", value: true } });
    const inv = g.node("aten.rsqrt.default", {
      self: g.node("aten.add.Scalar", { self: ms, other: F(EPS) }),
    });
    y = g.node("aten.mul.Tensor", { self: g.node("aten.mul.Tensor", { self: s, other: inv }), other: w });
  } else {
    y = g.node("aten.rms_norm.default", { input: s, normalized_shape: Is([C]), weight: w, eps: F(EPS) });
  }
  const lw = g.weight("lw", [C, C], { lo: -0.15, hi: 0.15 });
  return g.build(g.node("aten.linear.default", { input: y, weight: lw }));
}

function lower(graph: Graph, precision: "fp32" | "fp16") {
  const p = precision === "fp16" ? "float16" : "float32";
  return runPipeline(graph, defaultPipeline({ enabledPrecisions: [p] })).graph;
}

describe("RMSNorm in the CUDA plan", () => {
  for (const decomposed of [false, true]) {
    const form = decomposed ? "core ATen arithmetic" : "aten.rms_norm";
    it(`${form}: one norm kernel that takes in the residual add; no reduce, rsqrt or pow kernels`, () => {
      const lowered = lower(residualRms(decomposed), "fp16");
      expect(lowered.nodes.filter((n) => n.op === "aten.rms_norm.default")).toHaveLength(1);
      const plan = planCudaEngine(convertGraph(lowered), { precision: "fp16" });
      const summary = plan.summary.join("\n");
      const norms = plan.steps.filter((s) => s.kind === "normalization");
      expect(norms, summary).toHaveLength(1);
      expect(norms[0].kind === "normalization" && norms[0].layer.kind).toBe("rms");
      expect(norms[0].prologue?.length, summary).toBeGreaterThan(0);
      expect(
        plan.steps.filter((s) => s.kind === "reduce"),
        summary,
      ).toHaveLength(0);
      // x_f16 cast, the norm, the linear, the output cast
      expect(plan.steps.length, summary).toBeLessThanOrEqual(4);
    });

    it.skipIf(!hasGxx())(
      `${form}: the emulated kernels compute the aten reference's numbers`,
      () => {
        const graph = residualRms(decomposed);
        for (const precision of ["fp32", "fp16"] as const) {
          const lowered = lower(graph, precision);
          const inputs = inputsFor(graph, 3);
          const named = Object.fromEntries(lowered.inputs.map((n, i) => [n, inputs[i]]));
          const { outputs } = emulateEngine(convertGraph(lowered), named, { precision });
          const [want] = interpret(graph, inputs);
          const rel = compareTensors(outputs[0], want).relative;
          expect(rel).toBeLessThan(precision === "fp32" ? 1e-5 : 1e-2);
        }
      },
      120_000,
    );
  }

  it("leaves a mean over leading dims, or without keepdim, as arithmetic", () => {
    const g = new AtenGraph();
    const x = g.input("x", [4, 8]);
    const sq = g.node("aten.pow.Tensor_Scalar", { self: x, exponent: I(2) });
    const ms = g.node("aten.mean.dim", { self: sq, dim: Is([0]), keepdim: { kind: "bool", value: true } });
    const inv = g.node("aten.rsqrt.default", {
      self: g.node("aten.add.Scalar", { self: ms, other: F(EPS) }),
    });
    const lowered = lower(g.build(g.node("aten.mul.Tensor", { self: x, other: inv })), "fp32");
    expect(lowered.nodes.some((n) => n.op === "aten.rms_norm.default")).toBe(false);
  });
});

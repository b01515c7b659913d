import { describe, expect, it } from "vitest";
import { decomposeToCore } from "../../src/passes/decompose-to-core.js";
import { eliminateDeadCodePass } from "../../src/passes/eliminate-dead-code.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";
import { swinBlockGraph } from "../backends/cuda/swin-graphs.js";
import { expectSameResults, float, int, lower, opsOf, TestGraph } from "./graphs.js";

/** q·a @ kᵀ [· c] [+ terms] → softmax → @ v, as timm's non-fused Attention writes it (default IR). */
function handWritten(opts: {
  qScale?: number;
  scoreScale?: number;
  bias?: boolean;
  scaleAfterBias?: boolean;
}) {
  const g = new TestGraph();
  const [B, H, L, E] = [2, 3, 7, 8];
  const q = g.input("q", [B, H, L, E]);
  const k = g.input("k", [B, H, L, E]);
  const v = g.input("v", [B, H, L, E]);
  const qs =
    opts.qScale === undefined ? q : g.node("aten.mul.Tensor", { self: q, other: float(opts.qScale) });
  const kt = g.node("aten.transpose.int", { self: k, dim0: int(-2), dim1: int(-1) });
  let s = g.node("aten.matmul.default", { self: qs, other: kt });
  const scale = () => (s = g.node("aten.mul.Tensor", { self: s, other: float(opts.scoreScale ?? 1) }));
  if (opts.scoreScale !== undefined && !opts.scaleAfterBias) scale();
  if (opts.bias) s = g.node("aten.add.Tensor", { self: s, other: g.weight("bias", [1, H, L, L]) });
  if (opts.scoreScale !== undefined && opts.scaleAfterBias) scale();
  const p = g.node("aten.softmax.int", { self: s, dim: int(-1) });
  return g.build(g.node("aten.matmul.default", { self: p, other: v }));
}

const SDPA = "aten.scaled_dot_product_attention.default";

describe("attention-bias-math-to-sdpa", () => {
  it("timm's non-fused attention (q·scale @ kᵀ, softmax, @ v) ⇒ one scaled_dot_product_attention", () => {
    const g = handWritten({ qScale: 0.35 });
    const out = lower(g, decomposeToCore, eliminateDeadCodePass).graph;
    expect(opsOf(out)).toEqual([SDPA]);
    expect(out.nodes[0].args.scale).toEqual(float(0.35));
    expectSameResults(g, out);
  });

  it("a factor on the scores and an additive bias ⇒ scale and attn_mask", () => {
    const g = handWritten({ scoreScale: 0.5, bias: true });
    const out = lower(g, decomposeToCore, eliminateDeadCodePass).graph;
    expect(opsOf(out)).toEqual([SDPA]);
    expect(out.nodes[0].args.attn_mask).toEqual({ kind: "tensor", name: "bias" });
    expectSameResults(g, out);
  });

  it("a factor after the bias scales the bias too: left alone", () => {
    const g = handWritten({ scoreScale: 0.5, bias: true, scaleAfterBias: true });
    const out = lower(g, decomposeToCore, eliminateDeadCodePass).graph;
    expect(opsOf(out)).not.toContain(SDPA);
    expect(opsOf(out)).toContain("aten.bmm.default");
  });

  it("torchvision's Swin-T window attention (bias, then the shift mask through a 5-d view) ⇒ sdpa", () => {
    const g = swinBlockGraph({ B: 1, H: 14, W: 14, C: 16, heads: 2, window: 7, shift: 3 });
    const out = runPipeline(g, defaultPipeline()).graph;
    const ops = opsOf(out);
    expect(ops.filter((o) => o === SDPA)).toHaveLength(1);
    expect(ops).not.toContain("aten.bmm.default");
    expect(ops).not.toContain("aten._softmax.default");
    expectSameResults(g, out, 1e-4);
  });
});

// Which matmul steps of a planned transformer are offered to the generated small-M GEMM (small-gemm-select.ts),
// with the problem it gets or the reason it stays on cuBLASLt; the shortlist of configurations each problem is
// compiled and timed with; the setting; the error measure the GPU check uses. The choice itself times kernels on
// a GPU (test/gpu/transformer-fusion.gpu.test.ts).
import { describe, expect, it } from "vitest";
import {
  estimateSmallGemmMicros,
  smallGemmCandidates,
  smallGemmShortlist,
} from "../../../src/backends/cuda/codegen/gemm-small.js";
import type { MatmulStep } from "../../../src/backends/cuda/fuse/steps.js";
import { matmulGeometry } from "../../../src/backends/cuda/kernels/matmul-cublaslt.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import {
  relativeHalfError,
  smallGemmProblemKey,
  smallGemmSetting,
  smallGemmSite,
} from "../../../src/backends/cuda/small-gemm-select.js";
import { convertGraph } from "../../../src/converters/index.js";
import { numberToFloat16Bits } from "../../../src/ir/half.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { preNormBlocksGraph } from "./transformer-graphs.js";

function planOf(B: number, N: number, precision: "fp16" | "fp32") {
  const graph = preNormBlocksGraph({ B, N, C: 32, heads: 2, depth: 1 });
  const dtype = precision === "fp16" ? "float16" : "float32";
  const lowered = runPipeline(graph, defaultPipeline({ enabledPrecisions: [dtype] })).graph;
  return planCudaEngine(convertGraph(lowered), { precision });
}

function sites(B: number, N: number, precision: "fp16" | "fp32") {
  const plan = planOf(B, N, precision);
  const info = (t: string) => plan.infos.get(t)!;
  return plan.steps
    .filter((s): s is MatmulStep => s.kind === "matmul")
    .map((s) => ({ step: s, site: smallGemmSite(s, matmulGeometry(s, info), info) }));
}

describe("small GEMM sites", () => {
  it("offers every Linear of an fp16 block at 17…1024 rows, with its epilogue", () => {
    const found = sites(1, 17, "fp16");
    expect(found.length).toBeGreaterThanOrEqual(4);
    for (const { site } of found) {
      expect(typeof site).toBe("object");
      if (typeof site === "string") continue;
      expect(site.M).toBe(17);
      expect(site.bias).toBe(true);
      expect(site.residual).toBe(false);
    }
    const acts = found.map(({ site }) => (typeof site === "string" ? site : site.activation));
    // the MLP's fc1 carries the block's exact GELU, which the generated kernel computes as erf
    expect(acts).toContain("gelu_erf");
    expect(acts).toContain("none");
    // Ns: qkv 96, proj 32, fc1 128, fc2 32; Ks 32 or 128
    const shapes = found.map(({ site }) => (typeof site === "string" ? site : `${site.N}x${site.K}`));
    expect(new Set(shapes)).toEqual(new Set(["96x32", "32x32", "128x32", "32x128"]));
  });

  it("says why fp32, too few rows and too many rows stay on cuBLASLt", () => {
    for (const { site } of sites(1, 17, "fp32")) expect(site).toMatch(/float32/);
    for (const { site } of sites(1, 8, "fp16")) expect(site).toMatch(/M = 8 is outside 16…1024/);
    for (const { site } of sites(2, 520, "fp16")) expect(site).toMatch(/M = 1040 is outside/);
  });

  it("reads the setting: off unless TORCHC_SMALL_GEMM is 1, timed or force", () => {
    expect(smallGemmSetting({})).toBe("off");
    expect(smallGemmSetting({ TORCHC_SMALL_GEMM: "0" })).toBe("off");
    expect(smallGemmSetting({ TORCHC_SMALL_GEMM: "1" })).toBe("timed");
    expect(smallGemmSetting({ TORCHC_SMALL_GEMM: "timed" })).toBe("timed");
    expect(smallGemmSetting({ TORCHC_SMALL_GEMM: "force" })).toBe("force");
  });
});

describe("small GEMM problem keys", () => {
  it("tell apart problems that differ in any field the kernel is made from", () => {
    const base = { M: 197, N: 192, K: 192, bias: true, activation: "none", residual: false } as const;
    const variants = [
      base,
      { ...base, residual: true },
      { ...base, bias: false },
      { ...base, activation: "gelu_erf" as const },
      { ...base, activation: "gelu_tanh" as const },
      { ...base, xRowStride: 576 },
      { ...base, M: 196 },
      { ...base, N: 200 },
      { ...base, K: 200 },
    ];
    expect(new Set(variants.map(smallGemmProblemKey)).size).toBe(variants.length);
    expect(smallGemmProblemKey({ ...base })).toBe(smallGemmProblemKey(base));
  });

  it("a planned block with its residual fused: fc2 carries it in its problem", () => {
    process.env.TORCHC_GEMM_RESIDUAL = "1";
    try {
      const found = sites(1, 17, "fp16").map(({ site }) => site);
      const withResidual = found.filter((s) => typeof s !== "string" && s.residual);
      // fc2 only: proj's residual in this fp16 toy block is the fp32 input's cast, made after proj (gemm-residual.test.ts)
      expect(withResidual).toHaveLength(1);
      expect(withResidual[0]).toMatchObject({ N: 32, K: 128, residual: true });
    } finally {
      delete process.env.TORCHC_GEMM_RESIDUAL;
    }
  });
});

describe("small GEMM shortlist", () => {
  const deitFc2 = { M: 197, N: 192, K: 768, bias: true, activation: "none", residual: false } as const;
  it("keeps the modeled best of each tile shape, best first, at most `count`", () => {
    const list = smallGemmShortlist(deitFc2, "float16", 3);
    expect(list.length).toBe(3);
    const us = list.map((c) => estimateSmallGemmMicros(deitFc2, c));
    expect([...us].sort((a, b) => a - b)).toEqual(us);
    expect(new Set(list.map((c) => `${c.bm}x${c.bn}`)).size).toBe(3);
    // nothing outside the list's tiles beats the list's last on the model
    const best = Math.min(
      ...smallGemmCandidates(deitFc2, "float16").map((c) => estimateSmallGemmMicros(deitFc2, c)),
    );
    expect(us[0]).toBe(best);
  });
  it("returns every tile when asked for more than there are", () => {
    const tiles = new Set(smallGemmCandidates(deitFc2, "float16").map((c) => `${c.bm}x${c.bn}`));
    expect(smallGemmShortlist(deitFc2, "float16", 99).length).toBe(tiles.size);
  });
});

describe("the GPU check's error measure", () => {
  const h = (xs: number[]) => Uint16Array.from(xs.map(numberToFloat16Bits));
  it("is max |got − ref| over max |ref|, infinite for non-finite values", () => {
    expect(relativeHalfError(h([1, -2, 4]), h([1, -2, 4]))).toBe(0);
    expect(relativeHalfError(h([1, -2, 4]), h([1, -2.5, 4]))).toBeCloseTo(0.125, 6);
    expect(relativeHalfError(h([1, 2]), h([1, Number.NaN]))).toBe(Number.POSITIVE_INFINITY);
    expect(relativeHalfError(h([0, 0]), h([0, 1]))).toBe(Number.POSITIVE_INFINITY);
  });
});

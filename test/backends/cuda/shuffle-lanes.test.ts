// Shuffles in vector mode (codegen/element.ts shuffleLaneAxis / shuffleValue): which shuffles keep a thread's V lanes
// consecutive in their input, so the input is read with one wide load (the patch copy of a ViT stem: 8 fp32 pixels
// per 32-byte load), and which fall back to one load per lane. The numbers of such kernels are checked on the
// emulated engine by patchify.test.ts and swin-ops.test.ts.
import { describe, expect, it } from "vitest";
import { shuffleLaneAxis } from "../../../src/backends/cuda/codegen/element.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { convertGraph } from "../../../src/converters/index.js";
import type { LayerOf } from "../../../src/network/layers/index.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { AtenGraph, Is } from "./aten-graph.js";

const shuffle = (s: Partial<LayerOf<"shuffle">>): LayerOf<"shuffle"> =>
  ({
    type: "shuffle",
    name: "s",
    output: "s",
    inputs: ["x"],
    firstTranspose: null,
    reshape: null,
    secondTranspose: null,
    ...s,
  }) as LayerOf<"shuffle">;

/** A ViT patch copy: x [n, c, H, W] → [n, H/p, W/q, c, p, q]. */
const patches = (n: number, c: number, hw: number, p: number) =>
  shuffle({ reshape: [n, c, hw / p, p, hw / p, p], secondTranspose: [0, 2, 4, 1, 3, 5] });

describe("shuffles whose lanes stay consecutive in the input", () => {
  it("maps a patch copy's last axis onto the image's rows when the patch width is a multiple of V", () => {
    expect(shuffleLaneAxis(patches(2, 3, 224, 16), [2, 3, 224, 224], 5, 8)).toBe(3);
    expect(shuffleLaneAxis(patches(2, 3, 32, 8), [2, 3, 32, 32], 5, 8)).toBe(3);
    // 4-pixel patches (Swin): a chunk of 8 lanes would span two patches
    expect(shuffleLaneAxis(patches(2, 3, 32, 4), [2, 3, 32, 32], 5, 8)).toBeUndefined();
    // any axis but the last goes through the reshape with a stride
    expect(shuffleLaneAxis(patches(2, 3, 224, 16), [2, 3, 224, 224], 4, 8)).toBeUndefined();
  });

  it("follows transposes without a reshape, and refuses a reshape whose rows are not multiples of V", () => {
    expect(shuffleLaneAxis(shuffle({ firstTranspose: [0, 2, 3, 1] }), [2, 16, 5, 5], 3, 8)).toBe(1);
    expect(shuffleLaneAxis(shuffle({ secondTranspose: [0, 2, 1] }), [4, 8, 16], 1, 8)).toBe(2);
    expect(shuffleLaneAxis(shuffle({ reshape: [2, 12, 10] }), [2, 10, 12], 2, 8)).toBeUndefined();
    expect(shuffleLaneAxis(shuffle({ reshape: [2, 15, 8] }), [2, 10, 12], 2, 8)).toBeUndefined();
    expect(shuffleLaneAxis(shuffle({ reshape: [2, 5, 16] }), [2, 10, 8], 2, 8)).toBe(2);
  });

  it("reads a ViT stem's image 8 pixels per load and writes 8 halves per store", () => {
    const g = new AtenGraph();
    const x = g.input("x", [2, 3, 32, 32]);
    const conv = g.node("aten.convolution.default", {
      input: x,
      weight: g.weight("w", [16, 3, 8, 8], { lo: -0.1, hi: 0.1 }),
      bias: { kind: "none" },
      stride: Is([8, 8]),
      padding: Is([0, 0]),
      dilation: Is([1, 1]),
      transposed: { kind: "bool", value: false },
      output_padding: Is([0, 0]),
      groups: { kind: "int", value: 1 },
    });
    const lowered = runPipeline(g.build(conv), defaultPipeline({ enabledPrecisions: ["float16"] })).graph;
    const plan = planCudaEngine(convertGraph(lowered), { precision: "fp16" });
    const copy = plan.kernels[0]?.source ?? "";
    expect(copy).toMatch(/float vl\d+\[8\]/);
    expect(copy).toContain("for (int q = 0; q < 2; ++q) dst[q] = src[q]");
    expect(plan.kernels[0]?.grid[0]).toBe(Math.ceil((2 * 3 * 32 * 32) / 8 / 256));
  });
});

// Squeeze-excite's pooling folded into the depthwise kernel (fuse/spatial-mean-fold.ts, codegen/channel-sums.ts):
// which plans take it, and the emulated engine against the CPU reference and against the unfolded plan, across
// the kernel's shapes: tiles that hold part of a pass, a pixel row count that is not a power of two, channels
// that are not a multiple of the lane width (one channel per thread), several samples (the separate gemv
// kernel) and one (the merged excite kernel).
import { afterEach, describe, expect, it } from "vitest";
import { channelSumTiles, sumsBlock } from "../../../src/backends/cuda/codegen/channel-sums.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { mbconvNet, NetMaker, randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { type Tensor, toFloat64Array } from "../../../src/ir/tensor.js";
import type { Network } from "../../../src/network/network.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { compareTensors } from "../../../src/util/compare.js";
import { emulateEngine, hasGxx } from "./emulate.js";

/** max |got − want| / max |want| (src/util/compare.ts, what `torchc run --expect` reports). */
const maxRel = (got: Tensor, want: Tensor): number => compareTensors(got, want).relative;

/** depthwise + SiLU → squeeze-excite (pool, 1×1 conv, SiLU, 1×1 conv, sigmoid, scale) at the given shape. */
function seBlock(batch: number, c: number, h: number, w: number, seed = 3): Network {
  const m = new NetMaker(seed);
  const x = m.input("x", [batch, c, h, w]);
  const y = m.silu(m.conv(x, c, 3, { groups: c, bias: true }));
  return m.build([m.se(y, Math.max(1, Math.floor(c / 4)))]);
}

// Off by default since session 9 (slower on an H100, bench/NOTES.md): every test here turns it on first.
process.env.TORCHC_FOLD_SPATIAL_MEAN = "1";
const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

describe("which plans fold the squeeze-excite pooling", () => {
  it("removes the reduce step and marks the depthwise group and its gemv reader", () => {
    const net = mbconvNet(2, 16, 12);
    const folded = planCudaEngine(net, { precision: "fp16" });
    process.env.TORCHC_FOLD_SPATIAL_MEAN = "0";
    const apart = planCudaEngine(net, { precision: "fp16" });
    expect(folded.steps.length).toBe(apart.steps.length - 1);
    const sums = folded.steps.filter((s) => s.kind === "element" && s.group.channelSums);
    const readers = folded.steps.filter((s) => s.kind === "conv" && s.xMean);
    expect(sums).toHaveLength(1);
    expect(readers).toHaveLength(1);
    // The head's pooling (read by a flatten, not a gemv) stays a reduce step.
    expect(folded.steps.filter((s) => s.kind === "reduce")).toHaveLength(1);
  });

  it("keeps the reduce step where the pooled tensor is not channels-last (fp32 NCHW plans)", () => {
    const plan = planCudaEngine(seBlock(1, 32, 9, 9), { precision: "fp32" });
    expect(plan.steps.some((s) => s.kind === "element" && s.group.channelSums)).toBe(false);
    expect(plan.steps.some((s) => s.kind === "reduce")).toBe(true);
  });

  it("keeps the reduce step over 1024 channels when a member computes one channel per thread (a direct stem)", () => {
    const m = new NetMaker(4);
    const y = m.silu(m.conv(m.input("x", [1, 3, 16, 16]), 1152, 3, { bias: true }));
    const plan = planCudaEngine(m.build([m.se(y, 48)]), { precision: "fp16" });
    expect(
      plan.steps.some((s) => s.kind === "element" && s.group.layers.some((l) => l.type === "convolution")),
    ).toBe(true);
    expect(plan.steps.some((s) => s.kind === "reduce")).toBe(true);
  });

  it("chooses whole pixels per block and bounded tiles", () => {
    expect(sumsBlock(12, 8)).toEqual({ k: 42, threads: 504 });
    expect(sumsBlock(144, 8)).toEqual({ k: 3, threads: 432 });
    expect(sumsBlock(700, 1)).toEqual({ k: 1, threads: 700 });
    // One channel per thread over 1024 channels: 8 rows fill 32 KiB of shared sums.
    expect(sumsBlock(1024, 1)).toEqual({ k: 1, threads: 1024 });
    expect(sumsBlock(64, 4)).toEqual({ k: 8, threads: 512 });
    expect(() => sumsBlock(2048, 1)).toThrow(/exceed one block/);
    // 112² pixels at batch 1: capped; at batch 128: a few tiles per sample; a 7×7 map: never more tiles than passes.
    expect(channelSumTiles(1, 96, 112 * 112, 2)).toBe(128);
    expect(channelSumTiles(128, 96, 112 * 112, 2)).toBe(8);
    expect(channelSumTiles(1, 1152, 49, 2)).toBe(17);
  });
});

describe.skipIf(!hasGxx())("folded pooling on the emulated engine", () => {
  const cases = [
    { name: "one sample, excite kernel, 42 pixel rows", batch: 1, c: 96, h: 15, w: 13 },
    { name: "ten samples, separate gemv kernels", batch: 10, c: 48, h: 7, w: 9 },
    { name: "channels not a multiple of 8 (one per thread)", batch: 2, c: 36, h: 6, w: 5 },
    { name: "1152 channels (one pixel per pass in fp32)", batch: 1, c: 1152, h: 5, w: 5 },
  ];
  for (const k of cases) {
    for (const precision of ["fp16", "fp32"] as const) {
      it(`${k.name}, ${precision}`, () => {
        const net = seBlock(k.batch, k.c, k.h, k.w);
        const x = randomTensor(rng(11), "float32", [k.batch, k.c, k.h, k.w], 1.5);
        const want = runNetworkReference(net, { x })[0];
        const opts = { precision, channelsLast: true } as const;
        const folded = emulateEngine(net, { x }, opts);
        expect(folded.plan.steps.some((s) => s.kind === "conv" && s.xMean)).toBe(true);
        const bar = precision === "fp16" ? 1e-2 : 1e-5;
        expect(maxRel(folded.outputs[0], want)).toBeLessThan(bar);
        process.env.TORCHC_FOLD_SPATIAL_MEAN = "0";
        const apart = emulateEngine(net, { x }, opts);
        expect(apart.plan.steps.some((s) => s.kind === "reduce")).toBe(true);
        // Same stored values summed in another order: equal to rounding.
        expect(maxRel(folded.outputs[0], apart.outputs[0])).toBeLessThan(precision === "fp16" ? 2e-3 : 1e-6);
      }, 120_000);
    }
  }

  it("walks several passes per tile (tiles capped at 2)", () => {
    process.env.TORCHC_SUMS_MAX_TILES = "2";
    const net = seBlock(2, 40, 17, 19);
    const x = randomTensor(rng(8), "float32", [2, 40, 17, 19], 1);
    const run = emulateEngine(net, { x }, { precision: "fp16" });
    const sums = run.plan.steps.find((s) => s.kind === "element" && s.group.channelSums);
    expect(sums?.kind === "element" && sums.group.channelSums?.tiles).toBe(2);
    expect(maxRel(run.outputs[0], runNetworkReference(net, { x })[0])).toBeLessThan(1e-2);
  }, 120_000);

  it("gives the same bytes on every run (a fixed order of additions)", () => {
    const net = seBlock(3, 64, 11, 11);
    const x = randomTensor(rng(5), "float32", [3, 64, 11, 11], 1);
    const first = emulateEngine(net, { x }, { precision: "fp16" });
    const b = emulateEngine(net, { x }, { precision: "fp16" }).outputs[0];
    expect(toFloat64Array(first.outputs[0])).toEqual(toFloat64Array(b));
    // What makes it so on the GPU too, where the emulator's thread order proves nothing: no atomic adds anywhere in
    // the kernels that write or read the tile sums.
    const sums = first.plan.steps.flatMap((s, i) =>
      (s.kind === "element" && s.group.channelSums) || (s.kind === "conv" && s.xMean)
        ? [first.plan.kernels[i]]
        : [],
    );
    expect(sums.length).toBe(2);
    for (const k of sums) expect(k?.source).not.toMatch(/atomic/i);
  }, 120_000);
});

// Depthwise convolutions computed R output rows per thread (codegen/depthwise-rows.ts): which groups take it, and
// the emulated engine against the CPU reference and against the one-row kernel, across kernel sizes, dilation,
// padding, R = 2, 3, 4, strides it leaves alone, maps whose height is not a multiple of R (the repeated last row must not be stored), and
// channels that are a multiple of the lane width or not (then no blocking).
import { afterEach, describe, expect, it } from "vitest";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { NetMaker, randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import type { Tensor } from "../../../src/ir/tensor.js";
import type { Network } from "../../../src/network/network.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { compareTensors } from "../../../src/util/compare.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const maxRel = (got: Tensor, want: Tensor): number => compareTensors(got, want).relative;

interface Case {
  name: string;
  batch: number;
  c: number;
  h: number;
  w: number;
  k: number;
  stride?: number;
  dilation?: number;
  pad?: number;
}

/** 1×1 conv (materializes the depthwise input) → depthwise k×k + BN + SiLU → 1×1 conv (keeps it channels-last). */
function block(k: Case): Network {
  const m = new NetMaker(7);
  const x = m.input("x", [k.batch, k.c, k.h, k.w]);
  const y = m.conv(x, k.c, 1, { bias: true });
  const dw = m.conv(y, k.c, k.k, { groups: k.c, stride: k.stride, dilation: k.dilation, pad: k.pad });
  return m.build([m.conv(m.silu(m.bn(dw)), 8, 1, { bias: true })]);
}

const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

/** The depthwise group's generated kernel source in an fp16 plan of `net`. */
function depthwiseKernel(net: Network): string | undefined {
  const plan = planCudaEngine(net, { precision: "fp16" });
  const i = plan.steps.findIndex(
    (s) => s.kind === "element" && s.group.layers.some((l) => l.type === "convolution"),
  );
  return i < 0 ? undefined : plan.kernels[i]?.source;
}

describe("which depthwise groups are blocked by rows", () => {
  const big: Case = { name: "", batch: 8, c: 96, h: 56, w: 56, k: 3 };
  it("blocks large fp16 maps and leaves small ones (batch 1) as they were", () => {
    expect(depthwiseKernel(block(big))).toMatch(/hr\d+/);
    expect(depthwiseKernel(block({ ...big, batch: 1, h: 28, w: 28 }))).not.toMatch(/hr\d+/);
    // stride 2: slower blocked on an H100 (codegen/depthwise-rows.ts)
    expect(depthwiseKernel(block({ ...big, stride: 2 }))).not.toMatch(/hr\d+/);
    process.env.TORCHC_DW_ROWS = "1";
    expect(depthwiseKernel(block(big))).not.toMatch(/hr\d+/);
  });

  it("launches half the threads with two rows per thread (the default), a quarter with four", () => {
    const grid = () => {
      const plan = planCudaEngine(block(big), { precision: "fp16" });
      const i = plan.steps.findIndex(
        (s) => s.kind === "element" && s.group.layers.some((l) => l.type === "convolution"),
      );
      return plan.kernels[i]?.grid[0];
    };
    expect(grid()).toBe(Math.ceil((8 * 96 * 28 * 56) / 8 / 256));
    process.env.TORCHC_DW_ROWS = "4";
    expect(grid()).toBe(Math.ceil((8 * 96 * 14 * 56) / 8 / 256));
    process.env.TORCHC_DW_ROWS = "1";
    expect(grid()).toBe(Math.ceil((8 * 96 * 56 * 56) / 8 / 256));
  });
});

describe.skipIf(!hasGxx())("row-blocked depthwise on the emulated engine", () => {
  const cases: Case[] = [
    { name: "3×3 stride 1, 13 rows (R does not divide)", batch: 2, c: 16, h: 13, w: 11, k: 3 },
    { name: "5×5 stride 2 (left one-row), odd map", batch: 2, c: 24, h: 15, w: 9, k: 5, stride: 2 },
    { name: "3×3 stride 2 (left one-row), even map", batch: 3, c: 16, h: 8, w: 8, k: 3, stride: 2 },
    { name: "3×3 dilation 2", batch: 2, c: 16, h: 10, w: 7, k: 3, dilation: 2 },
    { name: "5×5 no padding", batch: 2, c: 8, h: 9, w: 9, k: 5, pad: 0 },
    { name: "channels not a multiple of 8", batch: 2, c: 12, h: 9, w: 6, k: 3 },
  ];
  for (const k of cases) {
    for (const [precision, perThread] of [
      ["fp16", "2"],
      ["fp16", "4"],
      ["fp32", "3"],
    ] as const) {
      it(`${k.name}, ${precision}, TORCHC_DW_ROWS=${perThread}`, () => {
        process.env.TORCHC_DW_ROWS_MIN_THREADS = "1";
        process.env.TORCHC_DW_ROWS = perThread;
        const net = block(k);
        const x = randomTensor(rng(3), "float32", [k.batch, k.c, k.h, k.w], 1.5);
        const want = runNetworkReference(net, { x })[0];
        const opts = { precision, channelsLast: true } as const;
        const rows = emulateEngine(net, { x }, opts);
        const blocked = rows.plan.kernels.some((kk) => /hr\d+/.test(kk?.source ?? ""));
        // channels-last in both precisions: 8 fp16 or 4 fp32 lanes per thread, when the channels divide
        expect(blocked).toBe(k.c % (precision === "fp16" ? 8 : 4) === 0 && (k.stride ?? 1) === 1);
        expect(maxRel(rows.outputs[0], want)).toBeLessThan(precision === "fp16" ? 1e-2 : 1e-5);
        process.env.TORCHC_DW_ROWS = "1";
        const one = emulateEngine(net, { x }, opts);
        // The same products summed in another order (kernel columns outer): equal to fp16 rounding.
        expect(maxRel(rows.outputs[0], one.outputs[0])).toBeLessThan(precision === "fp16" ? 2e-3 : 1e-6);
      }, 120_000);
    }
  }
});

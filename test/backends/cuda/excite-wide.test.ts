// Squeeze-excite's merged kernel (codegen/excite.ts) with 16-byte loads: which sizes take the wide loops, and the
// emulated engine against the CPU reference and against the scalar loops (TORCHC_EXCITE_VECTOR=0), fp16 and fp32,
// with the pooled input read from memory and from the depthwise kernel's tile sums.
import { afterEach, describe, expect, it } from "vitest";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { randomTensor, rng, seBlockNet } from "../../../src/backends/cuda/testing/nets.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { compareTensors } from "../../../src/util/compare.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

const exciteSource = (net: ReturnType<typeof seBlockNet>, precision: "fp16" | "fp32" = "fp16") =>
  planCudaEngine(net, { precision, channelsLast: true }).kernels.find((k) =>
    k?.source.includes("__shared__ float hid["),
  )?.source ?? "";

describe("which excite kernels take the 16-byte loops", () => {
  it("takes them when channels and hidden units are multiples of 8, per stage", () => {
    // 64 channels, 16 hidden: both stages wide, two lanes per output
    const both = exciteSource(seBlockNet(1, 16, 64, 16, 6));
    expect(both).toContain("vb += 256");
    expect(both).toContain("tc_seg_sum(acc, 2)");
    // 1152 channels, 288 hidden: a whole warp per output
    expect(exciteSource(seBlockNet(1, 16, 1152, 16, 3))).toContain("tc_seg_sum(acc, 32)");
    // 40 channels, 10 hidden: the squeeze is wide, the excite scalar
    const half = exciteSource(seBlockNet(1, 16, 40, 16, 6));
    expect(half).toContain("vb += 256");
    expect(half).not.toContain("tc_seg_sum(acc");
    // 36 channels: neither
    expect(exciteSource(seBlockNet(1, 16, 36, 16, 6))).not.toContain("vb +=");
    process.env.TORCHC_EXCITE_VECTOR = "0";
    expect(exciteSource(seBlockNet(1, 16, 64, 16, 6))).not.toContain("vb +=");
  });
});

describe.skipIf(!hasGxx())("the wide excite kernel on the emulated engine", () => {
  const cases = [
    { name: "64 channels, 16 hidden, batch 1", batch: 1, mid: 64, hw: 6 },
    { name: "1152 channels, 288 hidden, batch 2", batch: 2, mid: 1152, hw: 3 },
    { name: "40 channels (wide squeeze only), batch 3", batch: 3, mid: 40, hw: 5 },
    { name: "96 channels, 24 hidden, pooled from tile sums", batch: 2, mid: 96, hw: 7, fold: true },
    {
      name: "32 channels on 40×40, the tile sums split over the block",
      batch: 1,
      mid: 32,
      hw: 40,
      fold: true,
    },
  ];
  for (const k of cases) {
    for (const precision of ["fp16", "fp32"] as const) {
      it(`${k.name}, ${precision}`, () => {
        if (k.fold) process.env.TORCHC_FOLD_SPATIAL_MEAN = "1";
        const net = seBlockNet(k.batch, 16, k.mid, 16, k.hw);
        const x = randomTensor(rng(4), "float32", [k.batch, 16, k.hw, k.hw], 1.5);
        const want = runNetworkReference(net, { x })[0];
        const opts = { precision, channelsLast: true } as const;
        const wide = emulateEngine(net, { x }, opts);
        expect(wide.plan.kernels.some((kk) => kk?.source.includes("vb += 256"))).toBe(true);
        if (k.fold) expect(wide.plan.kernels.some((kk) => kk?.source.includes("xin[vb+0]"))).toBe(true);
        if (k.hw === 40) {
          expect(wide.plan.kernels.some((kk) => kk?.source.includes("xpart["))).toBe(true);
          // the old reader (one thread per channel over every tile), kept for A/B timing, gives the same numbers
          process.env.TORCHC_SE_POOL_SPLIT = "0";
          const serial = emulateEngine(net, { x }, opts);
          expect(serial.plan.kernels.some((kk) => kk?.source.includes("xpart["))).toBe(false);
          expect(compareTensors(serial.outputs[0], wide.outputs[0]).relative).toBeLessThan(
            precision === "fp16" ? 2e-3 : 1e-6,
          );
          delete process.env.TORCHC_SE_POOL_SPLIT;
        }
        const tol = precision === "fp16" ? 1e-2 : 1e-5;
        expect(compareTensors(wide.outputs[0], want).relative).toBeLessThan(tol);
        process.env.TORCHC_EXCITE_VECTOR = "0";
        const scalar = emulateEngine(net, { x }, opts);
        expect(scalar.plan.kernels.some((kk) => kk?.source.includes("vb +="))).toBe(false);
        expect(compareTensors(wide.outputs[0], scalar.outputs[0]).relative).toBeLessThan(
          precision === "fp16" ? 2e-3 : 1e-6,
        );
      }, 120_000);
    }
  }
});

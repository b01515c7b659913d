// Spatial sums and means of channels-last tensors at large batch (codegen/spatial-mean.ts): which reductions take
// the kernel, and the emulated engine against the CPU reference and against the generic rows kernel: squeeze-excite
// pooling (adaptive average to 1×1), reduce mean and sum over H, W without kept dims, pixel counts that are not a
// power of two, 1152 channels, fp16 and fp32.
import { afterEach, describe, expect, it } from "vitest";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { NetMaker, randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import type { Tensor } from "../../../src/ir/tensor.js";
import type { Network } from "../../../src/network/network.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { compareTensors } from "../../../src/util/compare.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const maxRel = (got: Tensor, want: Tensor): number => compareTensors(got, want).relative;

const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

/** depthwise + SiLU → squeeze-excite → 1×1 conv (the SE pooling reads a channels-last activation). */
function seNet(batch: number, c: number, h: number, w: number): Network {
  const m = new NetMaker(5);
  const x = m.input("x", [batch, c, h, w]);
  const y = m.silu(m.conv(m.conv(x, c, 1, { bias: true }), c, 3, { groups: c, bias: true }));
  return m.build([m.conv(m.se(y, Math.max(1, c / 4)), 8, 1, { bias: true })]);
}

/** 1×1 conv → reduce `op` over H, W (no kept dims) → the pooled [N, C]. */
function reduceNet(batch: number, c: number, h: number, w: number, op: "mean" | "sum"): Network {
  const m = new NetMaker(6);
  const y = m.conv(m.input("x", [batch, c, h, w]), c, 1, { bias: true });
  return m.build([m.b.add({ type: "reduce", inputs: [y], op, axes: [2, 3], keepDims: false })]);
}

const spatialKernels = (net: Network, precision: "fp16" | "fp32" = "fp16") =>
  planCudaEngine(net, { precision, channelsLast: true }).kernels.filter((k) =>
    /red\[\(py \*/.test(k?.source ?? ""),
  ).length;

describe("which spatial reductions take the block-per-sample kernel", () => {
  it("takes squeeze-excite pooling at batch ≥ 96 and leaves batch 1 to the rows kernel", () => {
    expect(spatialKernels(seNet(128, 32, 7, 7))).toBe(1);
    expect(spatialKernels(seNet(1, 32, 7, 7))).toBe(0);
    process.env.TORCHC_SPATIAL_MEAN_MIN_N = "1";
    expect(spatialKernels(seNet(1, 32, 7, 7))).toBe(1);
  });

  it("leaves channels that are not a multiple of the lane width, and NCHW tensors", () => {
    process.env.TORCHC_SPATIAL_MEAN_MIN_N = "1";
    expect(spatialKernels(seNet(2, 36, 5, 5))).toBe(0);
    expect(
      planCudaEngine(seNet(2, 32, 5, 5), { precision: "fp32" }).kernels.some((k) =>
        /red\[\(py \*/.test(k?.source ?? ""),
      ),
    ).toBe(false);
  });
});

describe.skipIf(!hasGxx())("spatial means on the emulated engine", () => {
  const cases = [
    { name: "SE pooling, 7×7 (49 pixels)", net: () => seNet(3, 32, 7, 7), shape: [3, 32, 7, 7] },
    {
      name: "SE pooling, 1152 channels (4 pixel lanes of 144 channel groups)",
      net: () => seNet(2, 1152, 5, 5),
      shape: [2, 1152, 5, 5],
    },
    { name: "reduce mean, 5×9", net: () => reduceNet(2, 16, 5, 9, "mean"), shape: [2, 16, 5, 9] },
    { name: "reduce sum, 11×6", net: () => reduceNet(2, 24, 11, 6, "sum"), shape: [2, 24, 11, 6] },
  ];
  for (const k of cases) {
    for (const precision of ["fp16", "fp32"] as const) {
      it(`${k.name}, ${precision}`, () => {
        process.env.TORCHC_SPATIAL_MEAN_MIN_N = "1";
        const net = k.net();
        const x = randomTensor(rng(9), "float32", k.shape, 1.5);
        const want = runNetworkReference(net, { x })[0];
        const opts = { precision, channelsLast: true } as const;
        const run = emulateEngine(net, { x }, opts);
        expect(run.plan.kernels.some((kk) => /red\[\(py \*/.test(kk?.source ?? ""))).toBe(true);
        expect(maxRel(run.outputs[0], want)).toBeLessThan(precision === "fp16" ? 1e-2 : 1e-5);
        process.env.TORCHC_SPATIAL_MEAN_MIN_N = "1000000";
        const generic = emulateEngine(net, { x }, opts);
        expect(generic.plan.kernels.some((kk) => /red\[\(py \*/.test(kk?.source ?? ""))).toBe(false);
        expect(maxRel(run.outputs[0], generic.outputs[0])).toBeLessThan(precision === "fp16" ? 2e-3 : 1e-6);
      }, 120_000);
    }
  }
});

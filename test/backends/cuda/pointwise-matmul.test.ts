// 1×1 convolutions over many pixels with few input channels as cuBLASLt matmuls (plan/pointwise-matmul.ts, opt-in
// TORCHC_CONV1X1_GEMM=1): which convolutions it takes and why the rest stay, that the reshapes around the matmul
// are views (no copy step), and the emulated engine against the reference and against the cuDNN plan: an
// EfficientNet-like expansion (BN folded into the bias, SiLU after it) feeding a depthwise convolution, and a
// projection with a residual add.
import { afterEach, describe, expect, it } from "vitest";
import { pointwiseMatmulRefusal } from "../../../src/backends/cuda/plan/pointwise-matmul.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { NetMaker, randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import type { ConvolutionLayer } from "../../../src/network/layers/index.js";
import type { Network } from "../../../src/network/network.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { compareTensors } from "../../../src/util/compare.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

/** 3×3 conv → 1×1 expansion (BN, SiLU) → depthwise 3×3 (BN, SiLU) → 1×1 projection + residual. */
function mbconv(batch: number, c: number, hw: number, dtype: "float16" | "float32" = "float16"): Network {
  const m = new NetMaker(4, dtype);
  const x = m.conv(m.input("x", [batch, c, hw, hw]), c, 3, { bias: true });
  const e = m.silu(m.bn(m.conv(x, c * 6, 1)));
  const d = m.silu(m.bn(m.conv(e, c * 6, 3, { groups: c * 6 })));
  return m.build([m.add(m.bn(m.conv(d, c, 1)), x)]);
}

const convs = (net: Network) => net.layers.filter((l): l is ConvolutionLayer => l.type === "convolution");

describe("which 1×1 convolutions become matmuls", () => {
  it("takes the expansion and leaves the rest with a reason", () => {
    process.env.TORCHC_CONV1X1_GEMM_MIN_ROWS = "1";
    const net = mbconv(2, 16, 8);
    const reasons = convs(net).map((l) => pointwiseMatmulRefusal(net, l, true));
    expect(reasons).toEqual([
      "not a 1×1 convolution of one group",
      null,
      "not a 1×1 convolution of one group",
      "96 input channels",
    ]);
    expect(pointwiseMatmulRefusal(mbconv(2, 16, 8, "float32"), convs(net)[1], true)).toBe(
      "not a float16 convolution",
    );
    delete process.env.TORCHC_CONV1X1_GEMM_MIN_ROWS;
    expect(pointwiseMatmulRefusal(net, convs(net)[1], true)).toBe("few pixels");
  });

  it("is off by default; on, the convolution is one matmul step and its reshapes are views", () => {
    process.env.TORCHC_CONV1X1_GEMM_MIN_ROWS = "1";
    const net = mbconv(2, 16, 8);
    const off = planCudaEngine(net, { precision: "fp16" });
    process.env.TORCHC_CONV1X1_GEMM = "1";
    const on = planCudaEngine(net, { precision: "fp16" });
    expect(off.steps.filter((s) => s.kind === "matmul")).toHaveLength(0);
    expect(on.steps.filter((s) => s.kind === "matmul")).toHaveLength(1);
    expect(on.steps.filter((s) => s.kind === "conv")).toHaveLength(
      off.steps.filter((s) => s.kind === "conv").length - 1,
    );
    // one more step at most: the SiLU the convolution's epilogue carried
    expect(on.steps.length).toBeLessThanOrEqual(off.steps.length + 1);
  });
});

describe.skipIf(!hasGxx())("1×1 convolutions as matmuls on the emulated engine", () => {
  for (const [name, batch, c, hw] of [
    ["16 → 96 channels, 8×8", 2, 16, 8],
    ["24 → 144 channels, 7×7", 3, 24, 7],
  ] as const) {
    it(name, () => {
      process.env.TORCHC_CONV1X1_GEMM_MIN_ROWS = "1";
      const net = mbconv(batch, c, hw);
      const x = randomTensor(rng(2), "float16", [batch, c, hw, hw], 1);
      const want = runNetworkReference(net, { x })[0];
      const cudnn = emulateEngine(net, { x }, { precision: "fp16" }).outputs[0];
      process.env.TORCHC_CONV1X1_GEMM = "1";
      const run = emulateEngine(net, { x }, { precision: "fp16" });
      expect(run.plan.steps.some((s) => s.kind === "matmul")).toBe(true);
      expect(compareTensors(run.outputs[0], want).relative).toBeLessThan(1e-2);
      expect(compareTensors(run.outputs[0], cudnn).relative).toBeLessThan(1e-2);
    }, 120_000);
  }
});

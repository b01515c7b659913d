// Squeeze-excite's scale consumed by the projection that reads it (plan/se-scaled-weights.ts, default from batch
// 32, TORCHC_SE_SCALED_WEIGHTS=1 at any batch): which convolutions take it and why the rest keep the multiply, the
// plan it makes (the activation-sized multiply gone, a scaled-weight step and a batched matmul instead), and the
// emulated engine against the reference and against the plan without it: an MBConv block with a residual, and one
// whose scaled weights would be larger than the activation (left alone).
import { afterEach, describe, expect, it } from "vitest";
import {
  SE_SCALED_MIN_BATCH,
  seScaledInput,
  seScaledMinBatch,
} from "../../../src/backends/cuda/plan/se-scaled-weights.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { NetMaker, randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import type { ConvolutionLayer, Layer } from "../../../src/network/layers/index.js";
import type { Network } from "../../../src/network/network.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { compareTensors } from "../../../src/util/compare.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

/** conv → 1×1 expansion → depthwise → SE → 1×1 projection (+ residual) → 1×1 head (keeps it an activation). */
function mbconv(batch: number, c: number, hw: number, expand = 6): Network {
  const m = new NetMaker(8, "float16");
  const x = m.conv(m.input("x", [batch, c, hw, hw]), c, 3, { bias: true });
  const e = m.silu(m.bn(m.conv(x, c * expand, 1)));
  const d = m.silu(m.bn(m.conv(e, c * expand, 3, { groups: c * expand })));
  const y = m.add(m.bn(m.conv(m.se(d, Math.max(1, c / 4)), c, 1)), x);
  return m.build([m.conv(y, 8, 1, { bias: true })]);
}

function reasons(net: Network): string[] {
  const producer = new Map(net.layers.map((l) => [l.output, l] as const));
  const readers = new Map<string, number>();
  for (const l of net.layers) for (const t of new Set(l.inputs)) readers.set(t, (readers.get(t) ?? 0) + 1);
  return net.layers
    .filter((l): l is ConvolutionLayer => l.type === "convolution")
    .map((l) => {
      const r = seScaledInput(net, l, producer as Map<string, Layer>, readers, true);
      return typeof r === "string" ? r : "taken";
    });
}

describe("which projections consume the squeeze-excite scale", () => {
  it("takes the projection after an SE multiply and says why the others stay", () => {
    expect(reasons(mbconv(2, 16, 8))).toEqual([
      "not a 1×1 convolution of one group", // the 3×3 in front
      "its input is not a multiply",
      "not a 1×1 convolution of one group",
      "its input is not a multiply", // the SE's own 1×1 convolutions read the pooled tensor
      "its input is not a multiply",
      "taken",
      "its input is not a multiply",
    ]);
    // 7×7 with 48 output channels per 96 inputs: 48 · 2 > 49 pixels
    expect(reasons(mbconv(2, 48, 7, 2))[5]).toMatch(/larger than half the activation/);
  });

  it("is on by default from batch 32 (1 forces it at any batch, 0 turns it off)", () => {
    const matmuls = (net: Network) =>
      planCudaEngine(net, { precision: "fp16" }).steps.filter((s) => s.kind === "matmul").length;
    delete process.env.TORCHC_SE_SCALED_WEIGHTS;
    expect(seScaledMinBatch({})).toBe(SE_SCALED_MIN_BATCH);
    expect(matmuls(mbconv(SE_SCALED_MIN_BATCH - 1, 16, 8))).toBe(0);
    expect(matmuls(mbconv(SE_SCALED_MIN_BATCH, 16, 8))).toBe(1);
    process.env.TORCHC_SE_SCALED_WEIGHTS = "0";
    expect(matmuls(mbconv(SE_SCALED_MIN_BATCH, 16, 8))).toBe(0);
    process.env.TORCHC_SE_SCALED_WEIGHTS = "1";
    expect(matmuls(mbconv(2, 16, 8))).toBe(1);
  });

  it("off, the activation-sized multiply stays; on, it becomes a weight-sized one and a batched matmul", () => {
    const net = mbconv(2, 16, 8);
    const off = planCudaEngine(net, { precision: "fp16" });
    process.env.TORCHC_SE_SCALED_WEIGHTS = "1";
    const on = planCudaEngine(net, { precision: "fp16" });
    const matmuls = (p: typeof on) => p.steps.filter((s) => s.kind === "matmul");
    expect(matmuls(off)).toHaveLength(0);
    expect(matmuls(on)).toHaveLength(1);
    expect(on.steps.filter((s) => s.kind === "conv").length).toBe(
      off.steps.filter((s) => s.kind === "conv").length - 1,
    );
    const sizes = (p: typeof on) =>
      p.steps.flatMap((s) =>
        s.kind === "element" && s.group.layers.some((l) => l.type === "elementwise" && l.op === "mul")
          ? [p.infos.get(s.group.root)!.shape.reduce((a, b) => a * b, 1)]
          : [],
      );
    expect(sizes(off)).toContain(2 * 96 * 8 * 8);
    expect(sizes(on)).not.toContain(2 * 96 * 8 * 8);
    expect(sizes(on)).toContain(2 * 16 * 96);
  });
});

describe.skipIf(!hasGxx())("scaled weights on the emulated engine", () => {
  for (const [name, batch, c, hw] of [
    ["16 channels, 8×8, batch 2", 2, 16, 8],
    ["24 channels, 9×9, batch 3", 3, 24, 9],
  ] as const) {
    it(name, () => {
      const net = mbconv(batch, c, hw);
      const x = randomTensor(rng(4), "float16", [batch, c, hw, hw], 1);
      const want = runNetworkReference(net, { x })[0];
      const plain = emulateEngine(net, { x }, { precision: "fp16" }).outputs[0];
      process.env.TORCHC_SE_SCALED_WEIGHTS = "1";
      const run = emulateEngine(net, { x }, { precision: "fp16" });
      expect(run.plan.steps.some((s) => s.kind === "matmul")).toBe(true);
      expect(compareTensors(run.outputs[0], want).relative).toBeLessThan(1e-2);
      expect(compareTensors(run.outputs[0], plain).relative).toBeLessThan(1e-2);
    }, 120_000);
  }
});

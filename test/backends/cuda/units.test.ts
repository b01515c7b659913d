import { describe, expect, it } from "vitest";
import { foldNetwork } from "../../../src/backends/cuda/plan/fold.js";
import { channelsLast, isRowMajor, layoutStrides } from "../../../src/backends/cuda/plan/layout.js";
import { planMemory } from "../../../src/backends/cuda/plan/memory.js";
import { shuffleViewLayout } from "../../../src/backends/cuda/plan/tensors.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { mbconvNet, NetMaker, randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { toFloat64Array } from "../../../src/ir/tensor.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";

describe("layouts", () => {
  it("gives NHWC strides for channels-last and sees size-1 axes as free", () => {
    expect(layoutStrides([2, 3, 4, 5], channelsLast(4))).toEqual([60, 1, 15, 3]);
    expect(isRowMajor([2, 3, 1, 1], channelsLast(4))).toBe(true);
    expect(isRowMajor([2, 3, 4, 5], channelsLast(4))).toBe(false);
  });

  it("turns transposes into views and reshapes of row-major memory too", () => {
    const t = {
      type: "shuffle",
      name: "s",
      inputs: ["x"],
      output: "y",
      firstTranspose: [0, 2, 3, 1],
      reshape: null,
      secondTranspose: null,
    } as const;
    expect(shuffleViewLayout(t, [2, 3, 4, 5], channelsLast(4))).toEqual([0, 1, 2, 3]);
    const r = { ...t, firstTranspose: null, reshape: [2, 60] };
    expect(shuffleViewLayout(r, [2, 3, 4, 5], [0, 1, 2, 3])).toEqual([0, 1]);
    expect(shuffleViewLayout(r, [2, 3, 4, 5], channelsLast(4))).toBeUndefined();
  });
});

describe("memory planning", () => {
  it("never lets tensors that are alive together share bytes, and reuses the rest", () => {
    const r = rng(5);
    const lives = Array.from({ length: 60 }, (_, i) => {
      const first = Math.floor(r() * 50);
      return {
        tensor: `t${i}`,
        bytes: 256 * (1 + Math.floor(r() * 20)),
        first,
        last: first + Math.floor(r() * 10),
      };
    });
    const plan = planMemory(lives);
    for (const a of lives) {
      for (const b of lives) {
        if (a === b || a.last < b.first || b.last < a.first) continue;
        const [oa, ob] = [plan.offsets.get(a.tensor)!, plan.offsets.get(b.tensor)!];
        expect(oa + a.bytes <= ob || ob + b.bytes <= oa).toBe(true);
      }
    }
    expect(plan.arenaBytes).toBeLessThan(plan.naiveBytes);
  });
});

describe("folding", () => {
  it("folds batch-norm scale layers into convolutions without changing the function", () => {
    const net = mbconvNet(1, 8, 6, 3);
    const { network, stats } = foldNetwork(net);
    expect(stats.affinesFolded).toBe(3);
    const x = randomTensor(rng(9), "float32", [1, 8, 6, 6]);
    const a = runNetworkReference(net, [x]).map(toFloat64Array);
    const b = runNetworkReference(network, [x]).map(toFloat64Array);
    for (const [i, v] of a.entries()) for (const [j, e] of v.entries()) expect(b[i][j]).toBeCloseTo(e, 4);
  });

  it("evaluates layers of constants on the host", () => {
    const m = new NetMaker(1);
    const x = m.input("x", [4]);
    const c = m.b.add({ type: "activation", inputs: [m.const([4])], fn: { kind: "relu" } });
    const { network, stats } = foldNetwork(m.build([m.add(x, c)]));
    expect(stats.constantsFolded).toBe(1);
    expect(network.layers.filter((l) => l.type === "activation")).toHaveLength(0);
  });
});

describe("code generation", () => {
  it("moves fp16 NHWC tensors 8 channels at a time and fuses the depthwise epilogue", () => {
    const plan = planCudaEngine(mbconvNet(2), { precision: "fp16" });
    const dw = plan.kernels.find(
      (k) => k?.source.includes("ci") && k.name.includes("element") && k.source.includes("acc"),
    );
    expect(dw?.source).toContain("uint4");
    expect(dw?.source).toContain("tc_sigmoid");
  });

  it("runs squeeze-excite's two 1×1 convolutions in one warp-per-output kernel", () => {
    const plan = planCudaEngine(mbconvNet(2), { precision: "fp16" });
    const gemv = plan.summary.filter((s) => s.startsWith("conv(gemv)"));
    expect(gemv).toHaveLength(1);
    expect(gemv[0]).toMatch(/⇒ conv\(gemv\)/);
    const k = plan.kernels.find((k) => k?.source.includes("__shared__ float hid["));
    expect(k?.source).toContain("__syncthreads();");
    process.env.TORCHC_MERGE_GEMV = "0";
    try {
      const apart = planCudaEngine(mbconvNet(2), { precision: "fp16" });
      expect(apart.summary.filter((s) => s.startsWith("conv(gemv)"))).toHaveLength(2);
      expect(apart.steps.length).toBe(plan.steps.length + 1);
    } finally {
      delete process.env.TORCHC_MERGE_GEMV;
    }
  });

  it("keeps squeeze-excite's convolutions apart above batch 8, where the merged kernel measured slower", () => {
    const gemvs = (batch: number) =>
      planCudaEngine(mbconvNet(batch), { precision: "fp16" }).summary.filter((s) =>
        s.startsWith("conv(gemv)"),
      );
    expect(gemvs(8)).toHaveLength(1);
    expect(gemvs(9)).toHaveLength(2);
  });
});

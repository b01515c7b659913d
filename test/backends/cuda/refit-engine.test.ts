// A CUDA engine's refit on the host (no GPU: the weight copy is recorded, not made): only constants and conv channel
// operands whose values differ from what the weight buffer holds are converted and copied, at their build offsets,
// with the bytes a fresh build would upload; after a refit the buffer's contents are the new plan's, so a refit back
// to the first weights copies them again.
import { beforeEach, describe, expect, it, vi } from "vitest";
import {
  type BuiltEngine,
  prepareEngineRefit,
  sameTensor,
} from "../../../src/backends/cuda/artifacts-refit.js";
import { constantBytes } from "../../../src/backends/cuda/builder.js";
import type { ConvStep } from "../../../src/backends/cuda/fuse/steps.js";
import type { CudnnConvPlan } from "../../../src/backends/cuda/kernels/conv-cudnn.js";
import { type EnginePlan, planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { mbconvNet, randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { tensorFromNumbers } from "../../../src/ir/tensor.js";
import { NetworkBuilder } from "../../../src/network/builder.js";
import type { Network } from "../../../src/network/network.js";

const copies: { offset: number; bytes: Uint8Array }[] = [];
vi.mock("../../../src/backends/cuda/device/memory.js", async (original) => ({
  ...(await original<typeof import("../../../src/backends/cuda/device/memory.js")>()),
  upload: (_dst: unknown, bytes: Uint8Array, offset: number) => copies.push({ offset, bytes }),
}));

const OPTIONS = { precision: "fp16", channelsLast: true } as const;
const answers = { conv: () => true, matmul: () => true, convKey: () => "k", matmulKey: () => "k" };

function plan(net: Network): EnginePlan {
  return planCudaEngine(net, { ...OPTIONS, convSupported: () => true, matmulSupported: () => true });
}

/** The build's weight layout for `p` (offsets as uploadWeights places them), without a device. */
function built(p: EnginePlan): BuiltEngine {
  const constOffsets = new Map<string, number>();
  const channelOffsets = new Map<ConvStep, number[]>();
  const convs = new Map<ConvStep, CudnnConvPlan>();
  let bytes = 0;
  for (const l of p.network.layers)
    if (l.type === "constant") {
      constOffsets.set(l.output, bytes);
      bytes += 1 << 20;
    }
  for (const s of p.steps) {
    if (s.kind !== "conv") continue;
    convs.set(s, { spec: { dtype: "float16" } } as unknown as CudnnConvPlan);
    channelOffsets.set(
      s,
      s.epilogue.filter((op) => op.kind === "channel").map(() => (bytes += 4096)),
    );
  }
  return {
    plan: p,
    weights: { buffer: { ptr: 0n }, bytes, constOffsets, channelOffsets },
    convs,
    options: OPTIONS,
  };
}

describe("refit of a built CUDA engine", () => {
  beforeEach(() => {
    copies.length = 0;
  });

  it("re-plans an engine with float32 islands (fp16Overflow: keep-fp32) with them kept", () => {
    const net = mbconvNet(1, 16, 12, 1);
    const islands = planCudaEngine(net, {
      ...OPTIONS,
      keepFloat32: true,
      convSupported: () => true,
      matmulSupported: () => true,
    });
    // The islands change storage, so an engine re-planned without them would not be this one.
    expect(islands.memory.arenaBytes).not.toBe(plan(net).memory.arenaBytes);
    const b = { ...built(islands), options: { ...OPTIONS, keepFloat32: true } };
    const { plan: next } = prepareEngineRefit(b, mbconvNet(1, 16, 12, 2), answers, 0);
    expect(next.memory.arenaBytes).toBe(islands.memory.arenaBytes);
  });

  it("copies nothing when the new weights are the ones the buffer holds", () => {
    const b = built(plan(mbconvNet(1, 16, 12, 1)));
    prepareEngineRefit(b, mbconvNet(1, 16, 12, 1), answers, 0).apply();
    expect(copies).toEqual([]);
  });

  it("copies every changed constant at its build offset, as a fresh build would upload it", () => {
    const b = built(plan(mbconvNet(1, 16, 12, 1)));
    const { apply, plan: next } = prepareEngineRefit(b, mbconvNet(1, 16, 12, 2), answers, 0);
    apply();
    expect(copies.length).toBeGreaterThan(0);
    const constants = next.network.layers.filter((l) => l.type === "constant");
    const was = b.plan.network.layers.filter((l) => l.type === "constant");
    let checked = 0;
    for (const [i, l] of constants.entries()) {
      if (l.type !== "constant" || was[i].type !== "constant") continue;
      const offset = b.weights.constOffsets.get(was[i].output)!;
      const copy = copies.find((c) => c.offset === offset);
      const fresh = constantBytes(next.network.constants[l.weight], next.infos.get(l.output)!);
      const held = b.plan.network.constants[(was[i] as { weight: string }).weight];
      if (sameTensor(held, next.network.constants[l.weight])) expect(copy).toBeUndefined();
      else {
        expect(copy?.bytes).toEqual(fresh);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(0);
  });

  it("compares against the last refit's weights, so refitting back copies them again", () => {
    const first = plan(mbconvNet(1, 16, 12, 1));
    const b = built(first);
    const toSecond = prepareEngineRefit(b, mbconvNet(1, 16, 12, 2), answers, 0);
    toSecond.apply();
    const n = copies.length;
    copies.length = 0;
    // Compared with the build's plan the first weights look unchanged; the buffer holds the second's.
    prepareEngineRefit(b, mbconvNet(1, 16, 12, 1), answers, 0, b.plan).apply();
    expect(copies).toEqual([]);
    prepareEngineRefit(b, mbconvNet(1, 16, 12, 1), answers, 0, toSecond.plan).apply();
    expect(copies.length).toBe(n);
  });

  it("refits a patch-embedding convolution planned as a GEMM (plan/patchify.ts) with the new weights", () => {
    const stem = (seed: number): Network => {
      const nb = new NetworkBuilder();
      const x = nb.addInput("x", { dtype: "float16", shape: [1, 3, 16, 16] });
      const r = rng(seed);
      const w = nb.constant(randomTensor(r, "float16", [8, 3, 4, 4], 0.3));
      const bias = nb.constant(randomTensor(r, "float16", [8], 0.3));
      const y = nb.add({
        type: "convolution",
        inputs: [x, w, bias],
        stride: [4, 4],
        padding: [0, 0],
        dilation: [1, 1],
        groups: 1,
      });
      return nb.build([{ tensor: y, as: "y" }]);
    };
    const b = built(plan(stem(1)));
    expect(b.plan.steps.some((st) => st.kind === "conv")).toBe(false);
    const { apply, plan: next } = prepareEngineRefit(b, stem(2), answers, 0);
    apply();
    // the bias and the [8, 48] GEMM weight (the 4-D weight is not kept), each with the bytes a fresh build of the
    // new model would upload
    const fresh = plan(stem(2));
    const want = fresh.network.layers
      .filter((l) => l.type === "constant")
      .map((l) =>
        l.type === "constant"
          ? constantBytes(fresh.network.constants[l.weight], fresh.infos.get(l.output)!)
          : undefined,
      );
    expect(copies).toHaveLength(2);
    expect(copies.map((c) => c.bytes)).toEqual(want);
    expect(
      next.network.layers
        .filter((l) => l.type === "constant")
        .map((l) => next.network.tensors[l.output].shape),
    ).toEqual([[8], [8, 48]]);
  });

  it("sameTensor compares dtype, shape and bytes", () => {
    const a = tensorFromNumbers("float16", [2, 2], [1, 2, 3, 4]);
    expect(sameTensor(a, tensorFromNumbers("float16", [2, 2], [1, 2, 3, 4]))).toBe(true);
    expect(sameTensor(a, tensorFromNumbers("float16", [4], [1, 2, 3, 4]))).toBe(false);
    expect(sameTensor(a, tensorFromNumbers("float32", [2, 2], [1, 2, 3, 4]))).toBe(false);
    expect(sameTensor(a, tensorFromNumbers("float16", [2, 2], [1, 2, 3, 5]))).toBe(false);
  });
});

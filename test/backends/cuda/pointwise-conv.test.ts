// Small 1×1 convolutions as generated kernels (fuse/pointwise-conv-rule.ts, codegen/pointwise-conv.ts): which
// plans take them, and the emulated kernels against the CPU reference and against the cuDNN-planned steps (run
// there as their layers' reference), for one thread per item (few input channels) and one warp per item (lanes
// over the input channels), output channels not a multiple of the lane width, the squeeze-excite scale read in
// place of its own step, and a residual add in the epilogue.
import { afterEach, describe, expect, it } from "vitest";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { NetMaker, randomTensor, rng, seBlockNet } from "../../../src/backends/cuda/testing/nets.js";
import type { Tensor } from "../../../src/ir/tensor.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { compareTensors } from "../../../src/util/compare.js";
import { emulateEngine, hasGxx } from "./emulate.js";

/** max |got − want| / max |want| (src/util/compare.ts, what `torchc run --expect` reports). */
const maxRel = (got: Tensor, want: Tensor): number => compareTensors(got, want).relative;

const block = seBlockNet;

// Off by default since session 9 (slower on an H100, bench/NOTES.md): every test here turns it on first.
process.env.TORCHC_POINTWISE_CONV = "1";
const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

describe("which 1×1 convolutions are generated", () => {
  it("takes small channels-last ones, reads the SE scale in place, and leaves large ones to cuDNN", () => {
    const net = block(1, 24, 144, 24, 14);
    const plan = planCudaEngine(net, { precision: "fp16" });
    const pw = plan.steps.filter((s) => s.kind === "conv" && s.engine === "pointwise");
    expect(pw).toHaveLength(2);
    expect(pw.some((s) => s.kind === "conv" && s.scale !== undefined)).toBe(true);
    // The SE multiply has no step: only the depthwise group (with its sums) is an element step.
    expect(plan.steps.filter((s) => s.kind === "element").map((s) => s.kind)).toHaveLength(2);
    process.env.TORCHC_POINTWISE_MAX_MACS = "1000";
    const big = planCudaEngine(net, { precision: "fp16" });
    expect(big.steps.some((s) => s.kind === "conv" && s.engine === "pointwise")).toBe(false);
    // cuDNN needs the multiply as a step of its own, and (for the NCHW network output) a staged copy.
    expect(big.steps.length).toBe(plan.steps.length + 2);
  });

  it("leaves a weight constant that two convolutions read to cuDNN (its layout is theirs)", () => {
    const m = new NetMaker(3, "float32");
    const x = m.silu(m.conv(m.input("x", [1, 3, 20, 20]), 32, 3, { bias: true }));
    const w = m.const([32, 32, 1, 1], 0.2);
    const conv = (t: string) =>
      m.b.add({
        type: "convolution",
        inputs: [t, w],
        stride: [1, 1],
        padding: [0, 0],
        dilation: [1, 1],
        groups: 1,
      });
    const plan = planCudaEngine(m.build([conv(conv(x))]), { precision: "fp16" });
    expect(plan.steps.some((s) => s.kind === "conv" && s.engine === "pointwise")).toBe(false);
    expect(plan.infos.get(w)?.layout).not.toEqual([1, 2, 3, 0]);
  });

  it("sets the weights' layout to [Cin][Cout] for the kernel's row loads", () => {
    const plan = planCudaEngine(block(1, 16, 32, 16, 8), { precision: "fp16" });
    const s = plan.steps.find((s) => s.kind === "conv" && s.engine === "pointwise");
    expect(s?.kind === "conv" && plan.infos.get(s.layer.inputs[1])?.layout).toEqual([1, 2, 3, 0]);
  });
});

describe.skipIf(!hasGxx())("generated 1×1 convolutions on the emulated engine", () => {
  const cases = [
    { name: "thread per item (Cin 24), residual", batch: 1, cin: 24, mid: 48, cout: 24, hw: 9 },
    { name: "warp per item (Cin 144 → 40)", batch: 2, cin: 40, mid: 144, cout: 40, hw: 7 },
    { name: "output channels not a multiple of 8", batch: 1, cin: 12, mid: 36, cout: 20, hw: 6 },
  ];
  for (const k of cases) {
    for (const precision of ["fp16", "fp32"] as const) {
      it(`${k.name}, ${precision}`, () => {
        const net = block(k.batch, k.cin, k.mid, k.cout, k.hw);
        const x = randomTensor(rng(4), "float32", [k.batch, k.cin, k.hw, k.hw], 1.5);
        const want = runNetworkReference(net, { x })[0];
        const opts = { precision, channelsLast: true } as const;
        const run = emulateEngine(net, { x }, opts);
        const generated = run.plan.steps.filter((s) => s.kind === "conv" && s.engine === "pointwise");
        expect(generated.length).toBe(2);
        expect(maxRel(run.outputs[0], want)).toBeLessThan(precision === "fp16" ? 1e-2 : 1e-5);
        process.env.TORCHC_POINTWISE_CONV = "0";
        const cudnn = emulateEngine(net, { x }, opts);
        expect(cudnn.plan.steps.some((s) => s.kind === "conv" && s.engine === "pointwise")).toBe(false);
        expect(maxRel(run.outputs[0], cudnn.outputs[0])).toBeLessThan(precision === "fp16" ? 4e-3 : 1e-5);
      }, 120_000);
    }
  }
});

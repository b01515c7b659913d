// 1×1 convolutions with few input channels on many pixels as the tensor-core small GEMM (ConvStep engine "gemm",
// codegen/pointwise-gemm.ts, opt-in TORCHC_POINTWISE_TC=1): which convolutions and which epilogues it takes, the
// kernel's operands bound to the plan's tensors, and the emulated engine (the step as its layers' reference; the
// kernel's own numbers with SiLU/ReLU and K = 16/24 are in gemm-small.test.ts) against the reference and the cuDNN
// plan. The same kernel source is compiled for sm_90 by the NVRTC tests of the small GEMM.
import { afterEach, describe, expect, it } from "vitest";
import {
  POINTWISE_GEMM_CONFIG,
  pointwiseGemmProblem,
} from "../../../src/backends/cuda/codegen/pointwise-gemm.js";
import type { ConvStep } from "../../../src/backends/cuda/fuse/steps.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { NetMaker, randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import type { Network } from "../../../src/network/network.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { compareTensors } from "../../../src/util/compare.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

/**
 * 3×3 → 1×1 expansion (BN, SiLU) → depthwise → 1×1 projection from 6c (BN) + residual → 1×1 c → c + residual →
 * 1×1 c → c + residual + ReLU → 1×1 head (a float32 NCHW network output).
 */
function block(batch: number, c: number, hw: number): Network {
  const m = new NetMaker(6);
  const x = m.conv(m.input("x", [batch, c, hw, hw]), c, 3, { bias: true });
  const e = m.silu(m.bn(m.conv(x, c * 6, 1)));
  const d = m.silu(m.bn(m.conv(e, c * 6, 3, { groups: c * 6 })));
  const y = m.add(m.bn(m.conv(d, c, 1)), x);
  const z = m.add(m.bn(m.conv(y, c, 1)), y);
  const r = m.act(m.add(m.bn(m.conv(z, c, 1)), z), { kind: "relu" });
  return m.build([m.conv(r, 8, 1, { bias: true })]);
}

const epilogueOf = (s: ConvStep) =>
  s.epilogue.map((o) => (o.kind === "act" ? o.fn : `${o.kind}-${o.op}`)).join("+");

const gemmSteps = (net: Network) =>
  planCudaEngine(net, { precision: "fp16" }).steps.filter(
    (s): s is ConvStep => s.kind === "conv" && s.engine === "gemm",
  );

describe("which 1×1 convolutions run as the tensor-core GEMM", () => {
  it("is off by default; on, takes the few-channel 1×1s whose whole epilogue it can run", () => {
    process.env.TORCHC_POINTWISE_TC_MIN_PIXELS = "1";
    expect(gemmSteps(block(2, 16, 8))).toHaveLength(0);
    process.env.TORCHC_POINTWISE_TC = "1";
    const plan = planCudaEngine(block(2, 16, 8), { precision: "fp16" });
    const convs = plan.steps.filter((s): s is ConvStep => s.kind === "conv");
    // the 3×3 stays cuDNN; expansion: GEMM + SiLU; projection from 96 channels: cuDNN; c → c + residual: GEMM;
    // c → c + residual + ReLU: cuDNN (the GEMM adds the residual last, so ReLU would be a pass of its own);
    // the head writes a float32 NCHW output: cuDNN
    expect(convs.map((s) => `${s.engine}:${epilogueOf(s)}`)).toEqual([
      "cudnn:",
      "gemm:silu",
      "cudnn:tensor-add",
      "gemm:tensor-add",
      "cudnn:tensor-add+relu",
      "cudnn:",
    ]);
    delete process.env.TORCHC_POINTWISE_TC_MIN_PIXELS;
    expect(gemmSteps(block(2, 16, 8))).toHaveLength(0);
  });

  it("binds the kernel's x, w, bias, residual and y to the step's tensors", () => {
    process.env.TORCHC_POINTWISE_TC_MIN_PIXELS = "1";
    process.env.TORCHC_POINTWISE_TC = "1";
    const plan = planCudaEngine(block(2, 16, 8), { precision: "fp16" });
    const i = plan.steps.findIndex(
      (s) => s.kind === "conv" && s.engine === "gemm" && s.epilogue.some((o) => o.kind === "tensor"),
    );
    const step = plan.steps[i] as ConvStep;
    const k = plan.kernels[i];
    const residual = step.epilogue.find((o) => o.kind === "tensor");
    expect(k?.params.map((p) => p.tensor)).toEqual([
      step.x,
      step.layer.inputs[1],
      step.layer.inputs[2],
      residual?.kind === "tensor" ? residual.tensor : "",
      step.output,
    ]);
    const ctx = { info: (t: string) => plan.infos.get(t)!, scalarConstant: () => undefined };
    expect(pointwiseGemmProblem(step, ctx)).toEqual({
      M: 2 * 8 * 8,
      N: 16,
      K: 16,
      bias: true,
      activation: "none",
      residual: true,
    });
    expect(k?.block[0]).toBe(32 * POINTWISE_GEMM_CONFIG.warpsM * POINTWISE_GEMM_CONFIG.warpsN);
  });
});

describe("where the tensor-core GEMM's own limits or the inputs' form decide", () => {
  it("leaves a 1×1 convolution past the kernel's int indexing to cuDNN instead of failing the build", () => {
    process.env.TORCHC_POINTWISE_TC = "1";
    const m = new NetMaker(2);
    const x = m.conv(m.input("x", [1, 64, 1472, 1472]), 64, 3, { bias: true });
    const net = m.build([m.conv(m.silu(m.conv(x, 1024, 1, { bias: true })), 8, 1, { bias: true })]);
    const steps = planCudaEngine(net, { precision: "fp16" }).steps;
    expect(steps.filter((st) => st.kind === "conv" && st.engine === "gemm")).toHaveLength(0);
    expect(
      steps.some(
        (st) => st.kind === "conv" && st.engine === "cudnn" && st.epilogue.some((o) => o.kind === "act"),
      ),
    ).toBe(true);
  });

  it("takes an expansion whose input is a reshape view (the SE-scaled projection's output before it)", () => {
    process.env.TORCHC_POINTWISE_TC_MIN_PIXELS = "1";
    process.env.TORCHC_POINTWISE_TC = "1";
    process.env.TORCHC_SE_SCALED_WEIGHTS = "1";
    const m = new NetMaker(3, "float16");
    const x = m.conv(m.input("x", [2, 16, 8, 8]), 16, 3, { bias: true });
    const d = m.silu(m.conv(m.silu(m.conv(x, 96, 1, { bias: true })), 96, 3, { groups: 96, bias: true }));
    const p = m.conv(m.se(d, 4), 16, 1, { bias: true });
    const e = m.silu(m.conv(p, 96, 1, { bias: true }));
    const plan = planCudaEngine(m.build([m.conv(e, 8, 3, { bias: true })]), { precision: "fp16" });
    const gemm = plan.steps.filter((st): st is ConvStep => st.kind === "conv" && st.engine === "gemm");
    expect(plan.steps.some((st) => st.kind === "matmul")).toBe(true);
    // both expansions: the first reads the 3×3's output, the second the projection's reshaped matmul output
    expect(gemm).toHaveLength(2);
    expect(plan.infos.get(gemm[1].x)?.viewOf).toBeDefined();
  });
});

describe.skipIf(!hasGxx())("the tensor-core 1×1 steps on the emulated engine", () => {
  it("computes what the reference and the cuDNN plan compute", () => {
    process.env.TORCHC_POINTWISE_TC_MIN_PIXELS = "1";
    const net = block(2, 16, 8);
    const x = randomTensor(rng(3), "float32", [2, 16, 8, 8], 1);
    const want = runNetworkReference(net, { x })[0];
    const cudnn = emulateEngine(net, { x }, { precision: "fp16" }).outputs[0];
    process.env.TORCHC_POINTWISE_TC = "1";
    const run = emulateEngine(net, { x }, { precision: "fp16" });
    expect(run.plan.steps.some((s) => s.kind === "conv" && s.engine === "gemm")).toBe(true);
    expect(compareTensors(run.outputs[0], want).relative).toBeLessThan(1e-2);
    expect(compareTensors(run.outputs[0], cudnn).relative).toBeLessThan(1e-2);
  }, 120_000);
});

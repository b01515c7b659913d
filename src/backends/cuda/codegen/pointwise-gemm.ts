/**
 * A 1×1 convolution over many pixels with few input channels as the tensor-core small GEMM (codegen/gemm-small.ts;
 * ConvStep engine "gemm", opt-in TORCHC_POINTWISE_TC=1, fuse/pointwise-conv-rule.ts): the channels-last input is
 * X [N·H·W, Cin], the weight [Cout, Cin] as stored, and the epilogue takes the bias, a SiLU or ReLU and a residual
 * add, so the convolution's output is written once. Why: at batch 128 cuDNN runs EfficientNet-B0's expansions
 * (Cin 16–40) at 2–3× their bandwidth floor (H100, session 14), and cuBLASLt, which has no SiLU epilogue, lost with
 * a SiLU pass of its own. One fixed tile: 128 rows × 64 columns, 8 warps, K in at most two 32-wide chunks.
 */
import type { ConvStep } from "../fuse/steps.js";
import type { CodegenContext, GeneratedKernel } from "./element.js";
import { generateSmallGemmKernel, type SmallGemmConfig, type SmallGemmProblem } from "./gemm-small.js";

export const POINTWISE_GEMM_CONFIG: SmallGemmConfig = {
  dtype: "float16",
  bm: 128,
  bn: 64,
  bk: 32,
  warpsM: 4,
  warpsN: 2,
  stages: 2,
  splitK: 1,
};

/** The GEMM a "gemm" conv step runs: M pixels, N output channels, K input channels, its epilogue. */
export function pointwiseGemmProblem(step: ConvStep, ctx: CodegenContext): SmallGemmProblem {
  const [n, cin, h, w] = ctx.info(step.x).shape;
  const act = step.epilogue.find((op) => op.kind === "act");
  const activation = act?.kind === "act" && (act.fn === "silu" || act.fn === "relu") ? act.fn : "none";
  if (act && activation === "none")
    throw new Error(`pointwise GEMM '${step.layer.name}': activation ${act.fn}`);
  return {
    M: n * h * w,
    N: ctx.info(step.layer.inputs[1]).shape[0],
    K: cin,
    bias: step.layer.inputs[2] !== undefined,
    activation,
    residual: step.epilogue.some((op) => op.kind === "tensor"),
  };
}

export function generatePointwiseGemmKernel(
  name: string,
  step: ConvStep,
  ctx: CodegenContext,
): GeneratedKernel {
  // generateSmallGemmKernel refuses a problem or tile it cannot run (the schedule asked smallGemmSupports first)
  const k = generateSmallGemmKernel(name, pointwiseGemmProblem(step, ctx), POINTWISE_GEMM_CONFIG);
  const residual = step.epilogue.find((op) => op.kind === "tensor");
  // The kernel's logical operands, bound to the plan's tensors.
  const tensorOf: Record<string, string | undefined> = {
    x: step.x,
    w: step.layer.inputs[1],
    bias: step.layer.inputs[2],
    residual: residual?.kind === "tensor" ? residual.tensor : undefined,
    y: step.output,
  };
  const params = k.params.map((q) => {
    const tensor = tensorOf[q.tensor];
    if (tensor === undefined)
      throw new Error(`pointwise GEMM '${step.layer.name}': no tensor for ${q.tensor}`);
    return { tensor, written: q.written };
  });
  return { ...k, params };
}

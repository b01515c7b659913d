import type { Layer } from "../../network/layers/index.js";
import type { ConvEpilogueOp, ConvStep } from "./fuse/steps.js";
import type { QuantizedConvSpec } from "./kernels/quantized-conv.js";
import type { PlannedNetwork } from "./plan.js";
import { int8LayerOperands, roundTripQuantize } from "./quant-sites.js";

/**
 * A quantized 2-d convolution in the engine: the device layer's spec (NHWC float I/O around int8 operands, the
 * weight [K, C, R, S] in PyTorch's order) with every field the plan knows filled in, and the step's epilogue.
 */
export interface Int8ConvSite extends QuantizedConvSpec {
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly inputZeroPoint: number;
  readonly qmin: number;
  readonly qmax: number;
  readonly bias: Float32Array | null;
  /** What the step fused after the bias (the quantized layer takes what its graph can express). */
  readonly epilogue: readonly ConvEpilogueOp[];
}

export type QuantizedConvSite =
  | { readonly kind: "float" }
  | { readonly kind: "refused"; readonly reason: string }
  | { readonly kind: "int8"; readonly site: Int8ConvSite };

/** What a convolution step is to the int8 path. */
export function quantizedConvSite(step: ConvStep, plan: PlannedNetwork): QuantizedConvSite {
  const producer = (t: string): Layer | undefined => plan.network.layers.find((l) => l.output === t);
  if (producer(step.layer.inputs[0])?.type !== "dequantize") return { kind: "float" };
  const site = int8Site(step, plan, producer);
  return typeof site === "string" ? { kind: "refused", reason: site } : { kind: "int8", site };
}

function int8Site(
  step: ConvStep,
  plan: PlannedNetwork,
  producer: (t: string) => Layer | undefined,
): Int8ConvSite | string {
  const l = step.layer;
  if (step.engine !== "cudnn") return `the step runs as a generated ${step.engine} kernel`;
  if (step.layout !== "NHWC") return "the convolution is NCHW (int8 cuDNN convolutions are NHWC)";
  if (step.scale || step.xMean) return "the input is read through a fused multiply or mean";
  if (l.groups !== 1) return `${l.groups} groups (int8 convolutions here have one group)`;
  const q = roundTripQuantize(producer, l.inputs[0]);
  if (typeof q === "string") return q;
  const info = (t: string) => plan.infos.get(t)!;
  const [x, y] = [info(step.x), info(step.output)];
  if (x.shape.length !== 4) return `a ${x.shape.length - 2}-d convolution (int8 runs 2-d ones)`;
  // an int8 step (ConvStep.int8) reads quantize's int8 output, and may write the next one's (quantizeOutput);
  // its float type is the convolution's own output's
  const dtype = step.int8 ? info(l.output).storage : y.storage;
  const xStorage = step.int8 ? "int8" : dtype;
  const yStorage = step.quantizeOutput ? "int8" : dtype;
  if ((dtype !== "float16" && dtype !== "float32") || x.storage !== xStorage || y.storage !== yStorage)
    return `input/output storage ${x.storage}/${y.storage}`;
  const ops = int8LayerOperands(plan, producer, l.inputs[1], l.inputs[2]);
  if (typeof ops === "string") return ops;
  const { grid, bias } = ops;
  const w = info(l.inputs[1]);
  const [n, c, h, wd] = x.shape;
  const pair = (v: readonly number[]): [number, number] => [v[0], v[1] ?? v[0]];
  return {
    n,
    c,
    h,
    w: wd,
    k: w.shape[0],
    r: w.shape[2],
    s: w.shape[3],
    stride: pair(l.stride),
    padding: pair(l.padding),
    dilation: pair(l.dilation),
    dtype,
    inputScale: q.scale[0],
    inputZeroPoint: q.zeroPoint[0],
    qmin: q.qmin,
    qmax: q.qmax,
    weight: grid.q,
    weightScales: grid.scales,
    bias,
    epilogue: step.epilogue,
  };
}

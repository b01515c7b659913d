/**
 * The device operands of an engine's int8 convolution step (ConvStep.int8), from its site (quant-conv-sites.ts):
 * the weight as KRSC int8, the per-channel scale alpha[k] = f32(sX · sW[k]) and the float32 bias, the
 * arithmetic of torchc.quantized_convolution with int32 accumulation. A step that writes the next layer's int8
 * input (ConvStep.quantizeOutput) has its scale and bias divided by that layer's scale sY (f32(v / sY)). The
 * builder uploads them with the other weights; the float weight constant is not read by the step.
 */
import type { ConvStep } from "./fuse/steps.js";
import {
  convScales,
  krscWeight,
  type QuantizedConvSpec,
  quantizedConvRefusal,
} from "./kernels/quantized-conv.js";
import type { PlannedNetwork } from "./plan.js";
import { quantizedConvSite } from "./quant-conv-sites.js";

export interface Int8ConvOperands {
  /** [K, R, S, C]. */
  readonly weight: Int8Array;
  /** [K] float32. */
  readonly scale: Float32Array;
  /** [K] float32, or null when the layer has none. */
  readonly bias: Float32Array | null;
}

/** The operands of an int8 step, or why it cannot run in int8 (the step then keeps a float input). */
export function int8ConvOperands(step: ConvStep, planned: PlannedNetwork): Int8ConvOperands | string {
  const site = quantizedConvSite(step, planned);
  if (site.kind === "float") return "the input is not dequantize(quantize(x))";
  if (site.kind === "refused") return site.reason;
  const q = site.site;
  // cuDNN neither clamps the input nor the output to a narrower range than int8's
  if (q.inputZeroPoint !== 0 || q.qmin !== -128 || q.qmax !== 127)
    return `activation range [${q.qmin}, ${q.qmax}] with zero point ${q.inputZeroPoint} (int8 convolutions take symmetric int8 inputs)`;
  const sY = outputScale(step);
  if (typeof sY === "string") return sY;
  // the device layer's spec of the same layer: its checks, and its scale and bias (÷ sY for an int8 output)
  const spec: QuantizedConvSpec = { ...q, ...(sY !== 1 ? { outputScale: sY } : {}) };
  const refusal = quantizedConvRefusal(spec);
  if (refusal) return refusal;
  const { scale, bias } = convScales(spec);
  return { weight: krscWeight(q.weight, q.k, q.c, q.r, q.s), scale, bias };
}

/** The scale the step's output is divided by: its quantize's (int8, zero point 0), or 1 for a float output. */
export function outputScale(step: ConvStep): number | string {
  const q = step.quantizeOutput;
  if (!q) return 1;
  if (q.axis !== null || q.dtype !== "int8" || q.zeroPoint[0] !== 0 || q.qmin !== -128 || q.qmax !== 127)
    return `the output quantize '${q.name}' is not per-tensor int8 [-128, 127] with zero point 0`;
  return q.scale[0];
}

// PT2E Q/DQ ops and QAT fake-quant ops → the network's quantize / dequantize layers. Scales and zero points
// must be build-time constants (they are: convert_pt2e stores them as numbers or constant tensors).
import type { DType } from "../../ir/dtype.js";
import type { Node } from "../../ir/graph.js";
import type { Tensor } from "../../ir/tensor.js";
import type { QuantParams } from "../../network/layers/quantize.js";
import { nums } from "../../ops/data.js";
import { identity } from "../impl/tensors.js";
import {
  type AnyCandidate,
  type ConversionNet,
  type ConvertContext,
  converter,
  refuse,
  SUPPORTED,
  type Support,
} from "../types.js";
import { outType } from "./common.js";

type Param = number | string;

/** The numbers a scale / zero-point argument holds, or undefined when it is not a build-time constant. */
function values(p: Param | null, ctx: ConvertContext): number[] | undefined {
  if (p === null) return undefined;
  if (typeof p === "number") return [p];
  const t: Tensor | undefined = ctx.constantOf(p);
  return t ? Array.from(nums(t)) : undefined;
}

function constantParams(ctx: ConvertContext, ...ps: (Param | null)[]): Support {
  for (const p of ps)
    if (p !== null && values(p, ctx) === undefined)
      return refuse(`scale / zero point '${p}' is computed at run time; the engine needs constants`);
  return SUPPORTED;
}

/** The storage type of a quantization range: int8 or uint8 where it fits (the network's quantize layer types). */
export function storageOf(qmin: number, qmax: number): "int8" | "uint8" | undefined {
  if (qmin >= -128 && qmax <= 127) return "int8";
  if (qmin >= 0 && qmax <= 255) return "uint8";
  return undefined;
}

function params(
  ctx: ConvertContext,
  scale: Param,
  zeroPoint: Param | null,
  axis: number | null,
  qmin: number,
  qmax: number,
  rank: number,
): QuantParams {
  const s = values(scale, ctx) ?? [];
  const z = values(zeroPoint, ctx) ?? s.map(() => 0);
  return { scale: s, zeroPoint: z, axis: axis === null ? null : axis < 0 ? axis + rank : axis, qmin, qmax };
}

function quantizeLayer(net: ConversionNet, x: string, p: QuantParams, dtype: "int8" | "uint8"): string {
  return net.net.add({ type: "quantize", inputs: [x], ...p, dtype });
}

function dequantizeLayer(net: ConversionNet, q: string, p: QuantParams, dtype: DType): string {
  if (dtype !== "float32" && dtype !== "float16" && dtype !== "bfloat16")
    throw new Error(`dequantize to ${dtype}: supports() should have refused`);
  return net.net.add({ type: "dequantize", inputs: [q], ...p, dtype });
}

const int8Storage = (dtype: DType): Support =>
  dtype === "int8" || dtype === "uint8"
    ? SUPPORTED
    : refuse(`${dtype} storage (the engine has int8 and uint8)`);

const floatOut = (dtype: DType): Support =>
  dtype === "float32" || dtype === "float16" || dtype === "bfloat16"
    ? SUPPORTED
    : refuse(`output dtype ${dtype}`);

function quantizeSupports(dtype: DType, ctx: ConvertContext, ...ps: (Param | null)[]): Support {
  const s = int8Storage(dtype);
  return s.ok ? constantParams(ctx, ...ps) : s;
}

function dequantizeSupports(node: Node, dtype: DType, ctx: ConvertContext, ...ps: (Param | null)[]): Support {
  const s = int8Storage(dtype);
  if (!s.ok) return s;
  const o = floatOut(outType(node, ctx).dtype);
  return o.ok ? constantParams(ctx, ...ps) : o;
}

/** The quantize layer of a Q node: network input `x`, parameters `p`, the node's output storage type. */
const quantizeNode = (node: Node, net: ConversionNet, x: string, p: QuantParams) => [
  quantizeLayer(net, net.input(x), p, outType(node, net).dtype as "int8" | "uint8"),
];

/** The dequantize layer of a DQ node: network input `q`, parameters `p`, the node's output float type. */
const dequantizeNode = (node: Node, net: ConversionNet, q: string, p: QuantParams) => [
  dequantizeLayer(net, net.input(q), p, outType(node, net).dtype),
];

interface PerTensorArgs {
  readonly input: string;
  readonly scale: Param;
  readonly zeroPoint: Param;
  readonly qmin: number;
  readonly qmax: number;
  readonly dtype: DType;
}

const quantizePerTensor = {
  name: "quantize",
  supports: (_n: Node, a: PerTensorArgs, ctx: ConvertContext) =>
    quantizeSupports(a.dtype, ctx, a.scale, a.zeroPoint),
  convert: (node: Node, a: PerTensorArgs, net: ConversionNet) =>
    quantizeNode(node, net, a.input, params(net, a.scale, a.zeroPoint, null, a.qmin, a.qmax, 0)),
};

const dequantizePerTensor = {
  name: "dequantize",
  supports: (node: Node, a: PerTensorArgs, ctx: ConvertContext) =>
    dequantizeSupports(node, a.dtype, ctx, a.scale, a.zeroPoint),
  convert: (node: Node, a: PerTensorArgs, net: ConversionNet) =>
    dequantizeNode(node, net, a.input, params(net, a.scale, a.zeroPoint, null, a.qmin, a.qmax, 0)),
};

/** Network value `x` rounded to its quantization grid: quantize, then dequantize with the same parameters to `dtype`. */
export function roundToGrid(net: ConversionNet, x: string, p: QuantParams, dtype: DType): string {
  const storage = storageOf(p.qmin, p.qmax) as "int8" | "uint8";
  return dequantizeLayer(net, quantizeLayer(net, x, p, storage), p, dtype);
}

/** Fake quantization = quantize then dequantize with the same parameters, back in the input's float type. */
function fakeQuant(net: ConversionNet, node: Node, x: string, p: QuantParams): readonly (string | null)[] {
  const y = roundToGrid(net, net.input(x), p, outType(node, net).dtype);
  return node.outputs.length > 1 ? [y, null] : [y];
}

function fakeSupports(
  node: Node,
  a: { qmin: number; qmax: number },
  ctx: ConvertContext,
  ...ps: (Param | null)[]
) {
  if (!storageOf(a.qmin, a.qmax)) return refuse(`range [${a.qmin}, ${a.qmax}] needs more than 8 bits`);
  if (node.outputs.length > 1 && ctx.isUsed(node.outputs[1]))
    return refuse("the fake-quant mask is read (training graphs only)");
  const o = floatOut(outType(node, ctx).dtype);
  return o.ok ? constantParams(ctx, ...ps) : o;
}

export const QUANTIZE_CONVERTERS: readonly AnyCandidate[] = [
  converter("quantized_decomposed.quantize_per_tensor.default", quantizePerTensor),
  converter("quantized_decomposed.quantize_per_tensor.tensor", quantizePerTensor),
  converter("quantized_decomposed.dequantize_per_tensor.default", dequantizePerTensor),
  converter("quantized_decomposed.dequantize_per_tensor.tensor", dequantizePerTensor),
  converter("quantized_decomposed.quantize_per_channel.default", {
    name: "quantize-per-channel",
    supports: (_n, a, ctx) => quantizeSupports(a.dtype, ctx, a.scales, a.zeroPoints),
    convert: (node, a, net) =>
      quantizeNode(
        node,
        net,
        a.input,
        params(net, a.scales, a.zeroPoints, a.axis, a.qmin, a.qmax, net.typeOf(a.input).shape.length),
      ),
  }),
  converter("quantized_decomposed.dequantize_per_channel.default", {
    name: "dequantize-per-channel",
    supports: (node, a, ctx) => dequantizeSupports(node, a.dtype, ctx, a.scales, a.zeroPoints),
    convert: (node, a, net) =>
      dequantizeNode(
        node,
        net,
        a.input,
        params(net, a.scales, a.zeroPoints, a.axis, a.qmin, a.qmax, net.typeOf(a.input).shape.length),
      ),
  }),
  ...(
    [
      "aten.fake_quantize_per_tensor_affine.default",
      "aten.fake_quantize_per_tensor_affine.tensor_qparams",
      "aten.fake_quantize_per_tensor_affine_cachemask.default",
    ] as const
  ).map((op) =>
    converter(op, {
      name: "fake-quantize",
      supports: (node, a, ctx) => fakeSupports(node, a, ctx, a.scale, a.zeroPoint),
      convert: (node, a, net) =>
        fakeQuant(net, node, a.self, params(net, a.scale, a.zeroPoint, null, a.qmin, a.qmax, 0)),
    }),
  ),
  converter("aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams.default", {
    name: "fake-quantize",
    supports: (node, a, ctx) => {
      const on = a.enabled === null ? undefined : ctx.constantOf(a.enabled);
      if (!on) return refuse("fake_quant_enabled is computed at run time");
      return fakeSupports(node, a, ctx, a.scale, a.zeroPoint);
    },
    convert: (node, a, net) => {
      const on = a.enabled !== null && nums(net.constantOf(a.enabled) as Tensor)[0] !== 0;
      const x = identity(net.net, net.input(a.self));
      if (!on) return node.outputs.length > 1 ? [x, null] : [x];
      return fakeQuant(net, node, a.self, params(net, a.scale, a.zeroPoint, null, a.qmin, a.qmax, 0));
    },
  }),
  ...(
    [
      "aten.fake_quantize_per_channel_affine.default",
      "aten.fake_quantize_per_channel_affine_cachemask.default",
    ] as const
  ).map((op) =>
    converter(op, {
      name: "fake-quantize-per-channel",
      supports: (node, a, ctx) => fakeSupports(node, a, ctx, a.scale, a.zeroPoint),
      convert: (node, a, net) =>
        fakeQuant(
          net,
          node,
          a.self,
          params(net, a.scale, a.zeroPoint, a.axis, a.qmin, a.qmax, net.typeOf(a.self).shape.length),
        ),
    }),
  ),
];

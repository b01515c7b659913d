// torchc.quantized_convolution / torchc.quantized_linear → network layers. Until the engine has int8
// convolution and GEMM kernels these convert to what the quantized layer means in floats: the input through
// quantize → dequantize layers (the activation really is rounded to its int8 grid), the int8 weight
// dequantized once at build time into a float constant, then the float convolution / matmul with the bias.
// Numerically this equals the layer's int32-accumulation reference up to float rounding of the sums.
import { castTensor, numel, tensorFromNumbers } from "../../ir/tensor.js";
import type { QuantParams } from "../../network/layers/quantize.js";
import { nums } from "../../ops/data.js";
import type { QuantizedInput } from "../../ops/quantized-layers.js";
import { convolution, perAxis } from "../impl/convolution.js";
import { linear } from "../impl/matmul.js";
import {
  type AnyCandidate,
  type ConversionNet,
  type ConvertContext,
  converter,
  refuse,
  SUPPORTED,
  type Support,
} from "../types.js";
import { roundToGrid, storageOf } from "./quantize.js";

type Args = QuantizedInput & {
  readonly input: string;
  readonly weight: string;
  readonly bias: string | null;
};

function supported(a: Args, ctx: ConvertContext): Support {
  for (const v of [a.weight, a.weightScales, a.weightZeroPoints])
    if (v !== null && !ctx.constantOf(v))
      return refuse(`'${v}' is computed at run time; the engine needs constants`);
  return storageOf(a.qmin, a.qmax)
    ? SUPPORTED
    : refuse(`input range [${a.qmin}, ${a.qmax}] needs more than 8 bits`);
}

/** Each conversion's rounded inputs, by input and parameters. */
const rounded = new WeakMap<ConversionNet, Map<string, string>>();

/**
 * The input rounded to its quantization grid, back in its float type: one quantize → dequantize per input and
 * parameters, shared by every quantized layer reading it (a ResNet block's first convolution and its
 * downsample read the same tensor), so the int8 values are made once.
 */
function fakeQuantizedInput(net: ConversionNet, a: Args): string {
  const x = net.input(a.input);
  const p: QuantParams = {
    scale: [a.inputScale],
    zeroPoint: [a.inputZeroPoint],
    axis: null,
    qmin: a.qmin,
    qmax: a.qmax,
  };
  const key = JSON.stringify([x, p]);
  const known = rounded.get(net) ?? new Map<string, string>();
  rounded.set(net, known);
  const hit = known.get(key);
  if (hit !== undefined) return hit;
  const out = roundToGrid(net, x, p, net.net.typeOf(x).dtype);
  known.set(key, out);
  return out;
}

/** (wq − zw[c]) · sw[c] in float32, then in the input's float type. */
function floatWeight(net: ConversionNet, a: Args): string {
  const w = net.constantOf(a.weight)!;
  const s = nums(net.constantOf(a.weightScales)!);
  const z = a.weightZeroPoints === null ? null : nums(net.constantOf(a.weightZeroPoints)!);
  const per = numel(w.shape) / w.shape[0];
  const v = nums(w);
  const out = new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) {
    const c = s.length === 1 ? 0 : Math.floor(i / per);
    out[i] = Math.fround((v[i] - (z ? z[c] : 0)) * s[c]);
  }
  const dtype = net.typeOf(a.input).dtype;
  return net.net.constant(castTensor(tensorFromNumbers("float32", w.shape, out), dtype));
}

export const QUANTIZED_LAYER_CONVERTERS: readonly AnyCandidate[] = [
  converter("torchc.quantized_convolution.default", {
    name: "quantized-convolution-simulated",
    notes: "int8 input grid and weights, float convolution (no int8 kernel yet)",
    supports: (_node, a, ctx) => {
      const rank = ctx.typeOf(a.weight).shape.length;
      if (rank < 3 || rank > 5) return refuse(`a ${rank}-d weight is not a 1-, 2- or 3-d convolution`);
      if (a.padding === "same" || a.padding === "valid")
        return refuse("string padding (the fold never makes it)");
      return supported(a, ctx);
    },
    convert: (_node, a, net) => {
      const sp = net.typeOf(a.weight).shape.length - 2;
      return [
        convolution(net.net, {
          input: fakeQuantizedInput(net, a),
          weight: floatWeight(net, a),
          bias: a.bias === null ? null : net.input(a.bias),
          stride: a.stride,
          padding: perAxis(a.padding as readonly number[], sp),
          dilation: perAxis(a.dilation, sp),
          groups: a.groups,
          transposed: false,
          outputPadding: [0],
        }),
      ];
    },
  }),
  converter("torchc.quantized_linear.default", {
    name: "quantized-linear-simulated",
    notes: "int8 input grid and weights, float matmul (no int8 GEMM yet)",
    supports: (_node, a, ctx) => supported(a, ctx),
    convert: (_node, a, net) => [
      linear(
        net.net,
        fakeQuantizedInput(net, a),
        floatWeight(net, a),
        a.bias === null ? null : net.input(a.bias),
      ),
    ],
  }),
];

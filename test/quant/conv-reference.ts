// Host references for the int8 convolution (QuantizedConv), shared by the CPU test (test/quant/quantized-conv.test.ts)
// and the GPU one (test/gpu/quant-conv-kernels.ts): no vitest here. Everything is NHWC in and out.
//  - convReferenceNhwc: torchc.quantized_convolution's reference (the int8 oracle, NCHW) on NHWC values, then
//    the activation (relu) rounded in float32;
//  - emulateQuantizedConv: what the device computes, step by step: the quantize kernel's stored int8, the int32
//    convolution of KRSC weights over zero-padded stored values, then f32(f32(acc) · scale[k]) + bias[k] and
//    the activation, with the layer's own scale and bias (convScales): it checks the scale/bias math and the
//    weight transpose on the CPU.
import {
  convScales,
  krscWeight,
  type QuantizedConvSpec,
} from "../../src/backends/cuda/kernels/quantized-conv.js";
import type { Arg } from "../../src/ir/graph.js";
import { tensorFromNumbers } from "../../src/ir/tensor.js";
import { quantizeValue } from "../../src/ops/quantize-math.js";
import { quantizedReference } from "./reference.js";

const f = Math.fround;

function pair(v: number | readonly [number, number] | undefined, dflt: number): readonly [number, number] {
  return v === undefined ? [dflt, dflt] : typeof v === "number" ? [v, v] : v;
}

/** Output height and width of `spec`. */
export function outSize(
  spec: Pick<QuantizedConvSpec, "h" | "w" | "r" | "s" | "stride" | "padding" | "dilation">,
): { oh: number; ow: number } {
  const [sh, sw] = pair(spec.stride, 1);
  const [ph, pw] = pair(spec.padding, 0);
  const [dh, dw] = pair(spec.dilation, 1);
  return {
    oh: Math.floor((spec.h + 2 * ph - dh * (spec.r - 1) - 1) / sh) + 1,
    ow: Math.floor((spec.w + 2 * pw - dw * (spec.s - 1) - 1) / sw) + 1,
  };
}

/** [N, P, Q, C] ↔ [N, C, P, Q] for a batch of `c`-channel planes of `hw` pixels. */
export function nhwcToNchw(v: ArrayLike<number>, n: number, c: number, hw: number): Float64Array {
  const out = new Float64Array(n * c * hw);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let i = 0; i < hw; i++) out[(b * c + ch) * hw + i] = v[(b * hw + i) * c + ch];
  return out;
}

export function nchwToNhwc(v: ArrayLike<number>, n: number, c: number, hw: number): Float64Array {
  const out = new Float64Array(n * c * hw);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let i = 0; i < hw; i++) out[(b * hw + i) * c + ch] = v[(b * c + ch) * hw + i];
  return out;
}

function activate(spec: QuantizedConvSpec, v: number): number {
  const act = spec.activation ?? "none";
  if (act === "none") return v;
  if (act === "relu") return Math.max(v, 0);
  throw new Error(`no host reference for activation ${act}`);
}

/** torchc.quantized_convolution's reference on NHWC x (float values), NHWC out [N, P, Q, K], then relu. */
export function convReferenceNhwc(spec: QuantizedConvSpec, x: ArrayLike<number>): Float64Array {
  const { n, c, h, w, k, r, s } = spec;
  const { oh, ow } = outSize(spec);
  const ints = (v: readonly [number, number]): Arg => ({ kind: "ints", value: [v[0], v[1]] });
  const ref = quantizedReference(
    "torchc.quantized_convolution.default",
    {
      x: tensorFromNumbers("float32", [n, c, h, w], nhwcToNchw(x, n, c, h * w)),
      w: tensorFromNumbers("int8", [k, c, r, s], spec.weight),
      s: tensorFromNumbers("float32", [spec.weightScales.length], spec.weightScales),
      b: tensorFromNumbers("float32", [k], spec.bias ?? new Float32Array(k)),
    },
    { scale: spec.inputScale, zeroPoint: spec.inputZeroPoint, qmin: spec.qmin, qmax: spec.qmax },
    {
      stride: ints(pair(spec.stride, 1)),
      padding: ints(pair(spec.padding, 0)),
      dilation: ints(pair(spec.dilation, 1)),
      groups: { kind: "int", value: 1 },
    },
  );
  return nchwToNhwc(ref, n, k, oh * ow).map((v) => activate(spec, v));
}

/** The quantize kernel's output: clamp(rint(x · f32(1/sX)) + zX, qmin, qmax) − offset, as int8 NHWC. */
export function quantizeNhwc(spec: QuantizedConvSpec, x: ArrayLike<number>): Int8Array {
  const qmin = spec.qmin ?? -128;
  const qmax = spec.qmax ?? 127;
  const offset = qmax > 127 ? 128 : 0;
  const inv = f(1 / spec.inputScale);
  return Int8Array.from(
    { length: x.length },
    (_, i) => quantizeValue(x[i], inv, spec.inputZeroPoint ?? 0, qmin, qmax) - offset,
  );
}

/** Σ over the window of stored x · KRSC w in exact integers (padding reads stored zeros), NHWC [N, P, Q, K]. */
export function int32ConvNhwc(spec: QuantizedConvSpec, xq: Int8Array, wKrsc: Int8Array): Int32Array {
  const { n, c, h, w, k, r, s } = spec;
  const { oh, ow } = outSize(spec);
  const [sh, sw] = pair(spec.stride, 1);
  const [ph, pw] = pair(spec.padding, 0);
  const [dh, dw] = pair(spec.dilation, 1);
  const acc = new Int32Array(n * oh * ow * k);
  for (let b = 0; b < n; b++)
    for (let p = 0; p < oh; p++)
      for (let q = 0; q < ow; q++)
        for (let o = 0; o < k; o++) {
          let sum = 0;
          for (let y = 0; y < r; y++) {
            const iy = p * sh - ph + y * dh;
            if (iy < 0 || iy >= h) continue;
            for (let xx = 0; xx < s; xx++) {
              const ix = q * sw - pw + xx * dw;
              if (ix < 0 || ix >= w) continue;
              const xBase = ((b * h + iy) * w + ix) * c;
              const wBase = ((o * r + y) * s + xx) * c;
              for (let i = 0; i < c; i++) sum += xq[xBase + i] * wKrsc[wBase + i];
            }
          }
          acc[((b * oh + p) * ow + q) * k + o] = sum;
        }
  return acc;
}

/**
 * The device's arithmetic on the host: y[…, k] = act(f32(f32(f32(acc) · scale[k]) + bias[k])) with the layer's
 * scale and bias (divided by sY for an int8 output: then these are the values before cuDNN's int8 conversion).
 */
export function emulateQuantizedConv(spec: QuantizedConvSpec, x: ArrayLike<number>): Float64Array {
  const acc = int32ConvNhwc(
    spec,
    quantizeNhwc(spec, x),
    krscWeight(spec.weight, spec.k, spec.c, spec.r, spec.s),
  );
  const { scale, bias } = convScales(spec);
  return Float64Array.from(acc, (a, i) => {
    const ch = i % spec.k;
    const y = f(f(a) * scale[ch]);
    return activate(spec, bias ? f(y + bias[ch]) : y);
  });
}

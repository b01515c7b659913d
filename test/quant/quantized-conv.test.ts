// The int8 convolution layer (QuantizedConv, issue 14) on the CPU: what it refuses and why, PyTorch's KCRS weight
// transposed to KRSC, and the scale / bias / zero-point arithmetic the cuDNN graph is given, checked by
// emulating the device step by step (test/quant/conv-reference.ts) against torchc.quantized_convolution's
// reference, the int8 oracle.
import { describe, expect, it } from "vitest";
import {
  convScales,
  krscWeight,
  type QuantizedConvSpec,
  quantizedConvRefusal,
} from "../../src/backends/cuda/kernels/quantized-conv.js";
import { int8Alpha } from "../../src/backends/cuda/kernels/quantized-linear.js";
import { rng } from "../../src/backends/cuda/testing/nets.js";
import { convReferenceNhwc, emulateQuantizedConv, outSize } from "./conv-reference.js";

const f = Math.fround;

function layer(over: Partial<QuantizedConvSpec> = {}, seed = 7): QuantizedConvSpec {
  const base = { n: 2, c: 8, h: 5, w: 6, k: 12, r: 3, s: 3, ...over };
  const u = rng(seed);
  const { k, c, r, s } = base;
  return {
    padding: 1,
    dtype: "float32",
    inputScale: 3 / 127,
    weight: Int8Array.from({ length: k * c * r * s }, () => Math.round((u() - 0.5) * 254)),
    weightScales: Float32Array.from({ length: k }, () => f(0.001 + u() * 0.01)),
    bias: Float32Array.from({ length: k }, () => f(u() - 0.5)),
    activation: "relu",
    ...base,
  };
}

function input(spec: QuantizedConvSpec, seed = 11, range = 6): Float32Array {
  const u = rng(seed);
  return Float32Array.from({ length: spec.n * spec.h * spec.w * spec.c }, () => (u() - 0.5) * range);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

describe("QuantizedConv refusals", () => {
  const ok = layer();
  it("accepts an NHWC 3×3 int8 layer", () => {
    expect(quantizedConvRefusal(ok)).toBeNull();
  });

  it("refuses a zero point whose padding zeros would not mean 0.0", () => {
    expect(quantizedConvRefusal({ ...ok, inputZeroPoint: 3 })).toBe(
      "input zero point 3 with padding 1×1: the int8 padding zeros must mean 0.0 (zero point 0 for this range)",
    );
    // no padding: the zero point is folded into the bias
    expect(quantizedConvRefusal({ ...ok, inputZeroPoint: 3, padding: 0 })).toBeNull();
    // uint8 stored minus 128: zero point 128 makes the stored zero 0.0
    expect(quantizedConvRefusal({ ...ok, qmin: 0, qmax: 255, inputZeroPoint: 128 })).toBeNull();
    expect(quantizedConvRefusal({ ...ok, qmin: 0, qmax: 255, inputZeroPoint: 0 })).toMatch(
      /zero point 0 with padding 1×1: .* \(zero point 128 for this range\)/,
    );
  });

  it("refuses channel counts that are not multiples of 4, naming the rule", () => {
    const c6 = layer({ c: 6 });
    expect(quantizedConvRefusal(c6)).toBe(
      "input channels 6 are not a multiple of 4 (int8 NHWC reads 4-channel vectors)",
    );
    expect(quantizedConvRefusal(layer({ k: 10 }))).toBe(
      "output channels 10 are not a multiple of 4 (int8 NHWC reads 4-channel vectors)",
    );
  });

  it("refuses wrong operand lengths, bad scales and ranges", () => {
    expect(quantizedConvRefusal({ ...ok, weight: new Int8Array(5) })).toBe(
      "weight holds 5 values, [12, 8, 3, 3] needs 864",
    );
    expect(quantizedConvRefusal({ ...ok, weightScales: new Float32Array(3).fill(1) })).toBe(
      "3 weight scales for 12 output channels",
    );
    expect(quantizedConvRefusal({ ...ok, weightScales: Float32Array.of(0) })).toBe(
      "a weight scale is not a positive finite number",
    );
    expect(quantizedConvRefusal({ ...ok, bias: new Float32Array(4) })).toBe(
      "bias holds 4 values for 12 outputs",
    );
    expect(quantizedConvRefusal({ ...ok, inputScale: Number.NaN })).toBe(
      "input scale NaN is not a positive finite number",
    );
    expect(quantizedConvRefusal({ ...ok, qmin: -200 })).toBe(
      "activation range [-200, 127] does not fit int8 or uint8",
    );
    expect(quantizedConvRefusal({ ...ok, n: 0 })).toBe("n = 0 is not a positive 32-bit size");
    // a scale that underflows float32 (sX · sW = 0) is caught where the graph's scale is checked
    expect(quantizedConvRefusal({ ...ok, inputScale: 1e-30, weightScales: Float32Array.of(1e-30) })).toBe(
      "scale[0] = 0 is not a positive finite number",
    );
  });

  it("refuses geometry cuDNN cannot take, through the device plan's checks", () => {
    expect(quantizedConvRefusal(layer({ h: 2, w: 2 }, 1))).toBeNull(); // padding 1 keeps a 3×3 kernel inside
    expect(quantizedConvRefusal({ ...layer({ h: 2, w: 2 }), padding: 0 })).toMatch(
      /does not fit the padded input/,
    );
  });

  it("requantizing to int8 takes only activations that commute with the output scale", () => {
    expect(quantizedConvRefusal({ ...ok, outputScale: 0.05 })).toBeNull();
    expect(quantizedConvRefusal({ ...ok, outputScale: 0.05, activation: "silu" })).toBe(
      "activation silu with an int8 output (requantizing needs act(v) / sY = act(v / sY): none or relu)",
    );
    expect(quantizedConvRefusal({ ...ok, outputScale: -1 })).toBe(
      "output scale -1 is not a positive finite number",
    );
    // a float output may take any activation cuDNN fuses
    expect(quantizedConvRefusal({ ...ok, activation: "silu" })).toBeNull();
  });
});

describe("KCRS → KRSC weight transpose", () => {
  it("moves the channel axis last", () => {
    // k=2, c=2, r=1, s=2: KCRS values name their own (k, c, s)
    const kcrs = Int8Array.of(0, 1, 10, 11, 100 - 128, 101 - 128, 110 - 128, 111 - 128);
    expect(Array.from(krscWeight(kcrs, 2, 2, 1, 2))).toEqual([0, 10, 1, 11, -28, -18, -27, -17]);
  });

  it("places every element at [k][r][s][c]", () => {
    const [k, c, r, s] = [4, 8, 3, 2];
    const w = Int8Array.from({ length: k * c * r * s }, (_, i) => (i % 251) - 125);
    const t = krscWeight(w, k, c, r, s);
    for (let o = 0; o < k; o++)
      for (let i = 0; i < c; i++)
        for (let y = 0; y < r; y++)
          for (let x = 0; x < s; x++)
            expect(t[((o * r + y) * s + x) * c + i]).toBe(w[((o * c + i) * r + y) * s + x]);
  });
});

describe("the graph's scale and bias (the device arithmetic emulated on the host) against the reference", () => {
  const cases: [string, QuantizedConvSpec][] = [
    ["3×3 pad 1, relu, per-channel scales", layer()],
    ["stride 2, dilation 2, no activation", layer({ h: 9, w: 9 }, 3)],
    ["1×1, per-tensor weight scale, no bias", layer({ r: 1, s: 1 }, 5)],
    ["uint8 range with zero point 128, pad 1", layer({}, 9)],
  ];
  cases[1][1] = { ...cases[1][1], stride: 2, dilation: 2, padding: 2, activation: "none" };
  cases[2][1] = { ...cases[2][1], padding: 0, weightScales: Float32Array.of(0.004), bias: null };
  cases[3][1] = { ...cases[3][1], qmin: 0, qmax: 255, inputZeroPoint: 128 };

  for (const [name, spec] of cases)
    it(`${name}: bit for bit`, () => {
      expect(quantizedConvRefusal(spec)).toBeNull();
      const x = input(spec);
      const want = convReferenceNhwc(spec, x);
      const got = emulateQuantizedConv(spec, x);
      const { oh, ow } = outSize(spec);
      expect(got.length).toBe(spec.n * oh * ow * spec.k);
      expect(Array.from(got)).toEqual(Array.from(want));
      // the case is not vacuous: the output depends on the input
      expect(want.some((v) => v !== 0)).toBe(true);
    });

  it("a zero point folded into the bias (no padding): within float32 rounding of the reference", () => {
    const spec: QuantizedConvSpec = { ...layer({}, 13), padding: 0, qmin: 0, qmax: 255, inputZeroPoint: 100 };
    const x = input(spec, 17, 4);
    const want = convReferenceNhwc(spec, x);
    const got = emulateQuantizedConv(spec, x);
    let amax = 0;
    for (const v of want) amax = Math.max(amax, Math.abs(v));
    // f32(acc') · alpha + (bias + alpha · shift · Σw) vs f32(acc) · alpha + bias: a few float32 roundings apart
    expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(amax * 1e-6);
  });

  it("requantizing: scale = f32(alpha / sY), bias = f32(bias / sY); the int8 output is the reference within a step", () => {
    const sY = 0.02;
    const spec: QuantizedConvSpec = { ...layer(), outputScale: sY };
    const alpha = int8Alpha(spec.inputScale, spec.weightScales, spec.k);
    const { scale, bias } = convScales(spec);
    expect(Array.from(scale)).toEqual(Array.from(alpha, (a) => f(a / sY)));
    expect(Array.from(bias ?? [])).toEqual(Array.from(spec.bias ?? [], (b) => f(b / sY)));
    const x = input(spec);
    const ref = convReferenceNhwc({ ...spec, outputScale: undefined }, x);
    // cuDNN's rounding of float → int8 is not documented: any of nearest / toward zero stays within one step
    const pre = emulateQuantizedConv(spec, x);
    for (const [i, v] of pre.entries()) {
      const q = Math.min(Math.max(Math.round(v), -128), 127);
      if (Math.abs(v) < 127) expect(Math.abs(q * sY - ref[i])).toBeLessThanOrEqual(sY * 0.5 + 1e-5);
    }
  });
});

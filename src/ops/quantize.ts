// PyTorch's quantization ops as PT2E (`convert_pt2e`) and QAT fake-quant modules export them: the
// `quantized_decomposed` library (torch/ao/quantization/fx/_decomposed.py) and aten's fake_quantize_*.
// The references reproduce PyTorch's CPU arithmetic (float32, round half to even) bit for bit.
import type { DType } from "../ir/dtype.js";
import { isFloating } from "../ir/dtype.js";
import type { TensorType } from "../ir/graph.js";
import { numel, type Tensor } from "../ir/tensor.js";
import { fromF64, nums, splitAt, tt } from "./data.js";
import { roundHalfEven } from "./math.js";
import { dequantizeValue, fakeQuantizeValue, quantizeValue } from "./quantize-math.js";
import { type ArgReader, defineOp, OpArgError, opTable } from "./schema.js";
import type { TypeOf, ValueOf } from "./types.js";

/** The integer types quantized_decomposed stores, with their full ranges (torch.iinfo). */
const QUANT_RANGE: Partial<Record<DType, readonly [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  int32: [-(2 ** 31), 2 ** 31 - 1],
};

/** A scale and zero point given as numbers (`.default`) or as one-element tensors (`.tensor`). */
type Param = number | string;

export interface PerTensor {
  readonly input: string;
  readonly scale: Param;
  readonly zeroPoint: Param;
  readonly qmin: number;
  readonly qmax: number;
}

export interface QuantizeArgs extends PerTensor {
  readonly dtype: DType;
}

export interface DequantizeArgs extends QuantizeArgs {
  readonly outDtype: DType;
}

export interface PerChannel {
  readonly input: string;
  readonly scales: string;
  readonly zeroPoints: string | null;
  readonly axis: number;
  readonly qmin: number;
  readonly qmax: number;
}

function readRange(op: string, r: ArgReader, dtype: DType): { qmin: number; qmax: number } {
  const qmin = r.int("quant_min");
  const qmax = r.int("quant_max");
  const bounds = QUANT_RANGE[dtype];
  if (!bounds) r.fail("dtype", `${dtype} is not a quantized integer type (int8, uint8, int16, int32)`);
  if (qmin < bounds[0] || qmax > bounds[1] || qmin > qmax)
    throw new OpArgError(op, "quant_min", `range [${qmin}, ${qmax}] does not fit ${dtype} [${bounds}]`);
  return { qmin, qmax };
}

function requireFloatInput(op: string, t: TensorType, arg = "input"): void {
  if (!isFloating(t.dtype)) throw new OpArgError(op, arg, `expected a floating tensor, got ${t.dtype}`);
}

/** The single value of a `.tensor` overload's scale or zero point tensor (PyTorch's `.item()`). */
function item(op: string, arg: string, p: Param, valueAt: ValueOf): number {
  if (typeof p === "number") return p;
  const t = valueAt(p);
  if (numel(t.shape) !== 1) throw new OpArgError(op, arg, `expected one element, got shape [${t.shape}]`);
  return nums(t)[0];
}

function checkOneElement(op: string, arg: string, p: Param, typeOf: TypeOf): void {
  if (typeof p === "string" && numel(typeOf(p).shape) !== 1)
    throw new OpArgError(op, arg, `expected one element, got shape [${typeOf(p).shape}]`);
}

/** A per-tensor op's input, scale and zero point (numbers, or one-element tensors for `.tensor`). */
function readInputParams(
  r: ArgReader,
  tensorParams: boolean,
): Pick<PerTensor, "input" | "scale" | "zeroPoint"> {
  return {
    input: r.tensor("input"),
    scale: tensorParams ? r.tensor("scale") : r.float("scale"),
    zeroPoint: tensorParams ? r.tensor("zero_point") : r.int("zero_point"),
  };
}

function checkOneElementParams(op: string, a: PerTensor, typeOf: TypeOf): void {
  checkOneElement(op, "scale", a.scale, typeOf);
  checkOneElement(op, "zero_point", a.zeroPoint, typeOf);
}

function quantizePerTensor<const N extends string>(name: N, schema: string, tensorParams: boolean) {
  return defineOp({
    name,
    schema,
    read: (r): QuantizeArgs => {
      const dtype = r.dtype("dtype");
      return { ...readInputParams(r, tensorParams), dtype, ...readRange(name, r, dtype) };
    },
    infer: (a, typeOf) => {
      const x = typeOf(a.input);
      requireFloatInput(name, x);
      checkOneElementParams(name, a, typeOf);
      return [tt(a.dtype, x.shape)];
    },
    evaluate: (a, valueAt) => {
      const x = valueAt(a.input);
      const inv = 1 / item(name, "scale", a.scale, valueAt);
      const zp = item(name, "zero_point", a.zeroPoint, valueAt);
      const v = nums(x);
      const out = new Float64Array(v.length);
      for (let i = 0; i < v.length; i++) out[i] = quantizeValue(v[i], inv, zp, a.qmin, a.qmax);
      return [fromF64(a.dtype, x.shape, out)];
    },
  });
}

function dequantizePerTensor<const N extends string>(name: N, schema: string, tensorParams: boolean) {
  return defineOp({
    name,
    schema,
    read: (r): DequantizeArgs => {
      const dtype = r.dtype("dtype");
      return {
        ...readInputParams(r, tensorParams),
        dtype,
        outDtype: r.optDtype("out_dtype") ?? "float32",
        ...readRange(name, r, dtype),
      };
    },
    infer: (a, typeOf) => {
      const q = typeOf(a.input);
      if (q.dtype !== a.dtype)
        throw new OpArgError(name, "input", `has dtype ${q.dtype}, expected ${a.dtype}`);
      checkOneElementParams(name, a, typeOf);
      return [tt(a.outDtype, q.shape)];
    },
    evaluate: (a, valueAt) => {
      const q = valueAt(a.input);
      const s = item(name, "scale", a.scale, valueAt);
      const zp = item(name, "zero_point", a.zeroPoint, valueAt);
      const v = nums(q);
      const out = new Float64Array(v.length);
      for (let i = 0; i < v.length; i++) out[i] = dequantizeValue(v[i], s, zp);
      return [fromF64(a.outDtype, q.shape, out)];
    },
  });
}

function readPerChannel(op: string, r: ArgReader, dtype: DType, zeroPointsOptional: boolean): PerChannel {
  return {
    input: r.tensor("input"),
    scales: r.tensor("scales"),
    zeroPoints: zeroPointsOptional ? r.optTensor("zero_points") : r.tensor("zero_points"),
    axis: r.int("axis"),
    ...readRange(op, r, dtype),
  };
}

/** Checks the axis and that scales (and zero points) hold one value per channel; returns the axis ≥ 0. */
function checkChannels(op: string, shape: readonly number[], a: PerChannel, typeOf: TypeOf): number {
  const axis = a.axis < 0 ? a.axis + shape.length : a.axis;
  if (axis < 0 || axis >= shape.length)
    throw new OpArgError(op, "axis", `${a.axis} out of range for rank ${shape.length}`);
  const c = shape[axis];
  if (numel(typeOf(a.scales).shape) !== c)
    throw new OpArgError(op, "scales", `has ${numel(typeOf(a.scales).shape)} values for ${c} channels`);
  if (a.zeroPoints !== null && numel(typeOf(a.zeroPoints).shape) !== c)
    throw new OpArgError(
      op,
      "zero_points",
      `has ${numel(typeOf(a.zeroPoints).shape)} values for ${c} channels`,
    );
  return axis;
}

/** Calls f(i, channel) for every element of a contiguous tensor, channel = its index along `axis`. */
function forEachChannel(shape: readonly number[], axis: number, f: (i: number, c: number) => void): void {
  const [outer, len, inner] = splitAt(shape, axis);
  let i = 0;
  for (let o = 0; o < outer; o++) for (let c = 0; c < len; c++) for (let k = 0; k < inner; k++) f(i++, c);
}

const TYPEOF_FROM =
  (valueAt: ValueOf): TypeOf =>
  (n) =>
    valueAt(n);

/**
 * A per-channel reference's loop: checks the channels of `x`, reads the scales (`wide` when they are float64)
 * and zero points, and maps each element x[i] of channel c to `perChannel(...)(x[i], c)`.
 */
function mapChannels(
  op: string,
  x: Tensor,
  a: PerChannel,
  valueAt: ValueOf,
  perChannel: (
    s: ArrayLike<number>,
    zp: ArrayLike<number> | null,
    wide: boolean,
  ) => (v: number, c: number) => number,
): Float64Array {
  const axis = checkChannels(op, x.shape, a, TYPEOF_FROM(valueAt));
  const st = valueAt(a.scales);
  const s = nums(st);
  const zp = a.zeroPoints === null ? null : nums(valueAt(a.zeroPoints));
  const f = perChannel(s, zp, st.dtype === "float64");
  const v = nums(x);
  const out = new Float64Array(v.length);
  forEachChannel(x.shape, axis, (i, c) => {
    out[i] = f(v[i], c);
  });
  return out;
}

const quantizePerChannel = defineOp({
  name: "quantized_decomposed.quantize_per_channel.default",
  schema:
    "Tensor input, Tensor scales, Tensor zero_points, int axis, int quant_min, int quant_max, ScalarType dtype",
  read: (r) => {
    const dtype = r.dtype("dtype");
    return { ...readPerChannel("quantized_decomposed.quantize_per_channel.default", r, dtype, false), dtype };
  },
  infer: (a, typeOf) => {
    const x = typeOf(a.input);
    requireFloatInput("quantized_decomposed.quantize_per_channel.default", x);
    checkChannels("quantized_decomposed.quantize_per_channel.default", x.shape, a, typeOf);
    return [tt(a.dtype, x.shape)];
  },
  evaluate: (a, valueAt) => {
    const x = valueAt(a.input);
    const out = mapChannels(
      "quantized_decomposed.quantize_per_channel.default",
      x,
      a,
      valueAt,
      (s, zp, wide) => {
        // `input * (1.0 / scales)`: the reciprocal is a tensor op in the scales' dtype.
        const inv = Array.from(s, (v) => (wide ? 1 / v : Math.fround(1 / v)));
        return (v, c) => quantizeValue(v, inv[c], zp ? zp[c] : 0, a.qmin, a.qmax, wide);
      },
    );
    return [fromF64(a.dtype, x.shape, out)];
  },
});

const dequantizePerChannel = defineOp({
  name: "quantized_decomposed.dequantize_per_channel.default",
  schema:
    "Tensor input, Tensor scales, Tensor? zero_points, int axis, int quant_min, int quant_max, ScalarType dtype, *, ScalarType? out_dtype=None",
  read: (r) => {
    const dtype = r.dtype("dtype");
    return {
      ...readPerChannel("quantized_decomposed.dequantize_per_channel.default", r, dtype, true),
      dtype,
      outDtype: r.optDtype("out_dtype") ?? "float32",
    };
  },
  infer: (a, typeOf) => {
    const q = typeOf(a.input);
    const op = "quantized_decomposed.dequantize_per_channel.default";
    if (q.dtype !== a.dtype) throw new OpArgError(op, "input", `has dtype ${q.dtype}, expected ${a.dtype}`);
    checkChannels(op, q.shape, a, typeOf);
    return [tt(a.outDtype, q.shape)];
  },
  evaluate: (a, valueAt) => {
    const q = valueAt(a.input);
    const out = mapChannels(
      "quantized_decomposed.dequantize_per_channel.default",
      q,
      a,
      valueAt,
      (s, zp, wide) => (v, c) => dequantizeValue(v, s[c], zp ? zp[c] : 0, wide),
    );
    return [fromF64(a.outDtype, q.shape, out)];
  },
});

export interface FakeArgs {
  readonly self: string;
  readonly scale: Param;
  readonly zeroPoint: Param;
  readonly enabled: string | null;
  readonly qmin: number;
  readonly qmax: number;
}

function readFakeRange(r: ArgReader): { qmin: number; qmax: number } {
  const qmin = r.int("quant_min");
  const qmax = r.int("quant_max");
  if (qmin > qmax) r.fail("quant_min", `${qmin} > quant_max ${qmax}`);
  return { qmin, qmax };
}

/** fake_quantize_per_tensor_affine and its variants; `mask` adds the cachemask output (1 where not clamped). */
function fakePerTensor<const N extends string>(
  name: N,
  schema: string,
  form: { tensorParams: boolean; mask: boolean; enabled?: boolean },
) {
  return defineOp({
    name,
    schema,
    returns: form.mask ? 2 : 1,
    read: (r): FakeArgs => ({
      self: r.tensor("self"),
      scale: form.tensorParams ? r.tensor("scale") : r.float("scale"),
      zeroPoint: form.tensorParams ? r.tensor("zero_point") : r.int("zero_point"),
      enabled: form.enabled ? r.tensor("fake_quant_enabled") : null,
      ...readFakeRange(r),
    }),
    infer: (a, typeOf) => {
      const x = typeOf(a.self);
      requireFloatInput(name, x, "self");
      checkOneElement(name, "scale", a.scale, typeOf);
      checkOneElement(name, "zero_point", a.zeroPoint, typeOf);
      return form.mask ? [tt(x.dtype, x.shape), tt("bool", x.shape)] : [tt(x.dtype, x.shape)];
    },
    evaluate: (a, valueAt) => {
      const x = valueAt(a.self);
      const s = item(name, "scale", a.scale, valueAt);
      const zp = item(name, "zero_point", a.zeroPoint, valueAt);
      const on = a.enabled === null || nums(valueAt(a.enabled))[0] !== 0;
      const v = nums(x);
      const out = new Float64Array(v.length);
      const mask = new Float64Array(v.length);
      const inv = Math.fround(1 / Math.fround(s));
      for (let i = 0; i < v.length; i++) {
        out[i] = on ? fakeQuantizeValue(v[i], s, zp, a.qmin, a.qmax) : v[i];
        const q = roundHalfEven(Math.fround(v[i] * inv)) + zp;
        mask[i] = !on || (q >= a.qmin && q <= a.qmax) ? 1 : 0;
      }
      const y = fromF64(x.dtype, x.shape, out);
      return form.mask ? [y, fromF64("bool", x.shape, mask)] : [y];
    },
  });
}

function fakePerChannel<const N extends string>(name: N, schema: string, mask: boolean) {
  type A = { self: string; scale: string; zeroPoint: string; axis: number; qmin: number; qmax: number };
  const channels = (a: A): PerChannel => ({
    input: a.self,
    scales: a.scale,
    zeroPoints: a.zeroPoint,
    axis: a.axis,
    qmin: a.qmin,
    qmax: a.qmax,
  });
  return defineOp({
    name,
    schema,
    returns: mask ? 2 : 1,
    read: (r): A => ({
      self: r.tensor("self"),
      scale: r.tensor("scale"),
      zeroPoint: r.tensor("zero_point"),
      axis: r.int("axis"),
      ...readFakeRange(r),
    }),
    infer: (a, typeOf) => {
      const x = typeOf(a.self);
      requireFloatInput(name, x, "self");
      checkChannels(name, x.shape, channels(a), typeOf);
      return mask ? [tt(x.dtype, x.shape), tt("bool", x.shape)] : [tt(x.dtype, x.shape)];
    },
    evaluate: (a, valueAt) => {
      const x = valueAt(a.self);
      const axis = checkChannels(name, x.shape, channels(a), TYPEOF_FROM(valueAt));
      const s = nums(valueAt(a.scale));
      const zp = nums(valueAt(a.zeroPoint));
      const v = nums(x);
      const out = new Float64Array(v.length);
      const m = new Float64Array(v.length);
      forEachChannel(x.shape, axis, (i, c) => {
        out[i] = fakeQuantizeValue(v[i], s[c], zp[c], a.qmin, a.qmax);
        const q = roundHalfEven(Math.fround(v[i] * Math.fround(1 / Math.fround(s[c])))) + zp[c];
        m[i] = q >= a.qmin && q <= a.qmax ? 1 : 0;
      });
      const y = fromF64(x.dtype, x.shape, out);
      return mask ? [y, fromF64("bool", x.shape, m)] : [y];
    },
  });
}

const Q_ARGS = "int quant_min, int quant_max, ScalarType dtype";

export const QUANTIZE_OPS = opTable(
  quantizePerTensor(
    "quantized_decomposed.quantize_per_tensor.default",
    `Tensor input, float scale, int zero_point, ${Q_ARGS}`,
    false,
  ),
  quantizePerTensor(
    "quantized_decomposed.quantize_per_tensor.tensor",
    `Tensor input, Tensor scale, Tensor zero_point, ${Q_ARGS}`,
    true,
  ),
  dequantizePerTensor(
    "quantized_decomposed.dequantize_per_tensor.default",
    `Tensor input, float scale, int zero_point, ${Q_ARGS}, *, ScalarType? out_dtype=None`,
    false,
  ),
  dequantizePerTensor(
    "quantized_decomposed.dequantize_per_tensor.tensor",
    `Tensor input, Tensor scale, Tensor zero_point, ${Q_ARGS}, *, ScalarType? out_dtype=None`,
    true,
  ),
  quantizePerChannel,
  dequantizePerChannel,
  fakePerTensor(
    "aten.fake_quantize_per_tensor_affine.default",
    "Tensor self, float scale, int zero_point, int quant_min, int quant_max",
    { tensorParams: false, mask: false },
  ),
  fakePerTensor(
    "aten.fake_quantize_per_tensor_affine.tensor_qparams",
    "Tensor self, Tensor scale, Tensor zero_point, int quant_min, int quant_max",
    { tensorParams: true, mask: false },
  ),
  fakePerTensor(
    "aten.fake_quantize_per_tensor_affine_cachemask.default",
    "Tensor self, float scale, int zero_point, int quant_min, int quant_max",
    { tensorParams: false, mask: true },
  ),
  fakePerTensor(
    "aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams.default",
    "Tensor self, Tensor scale, Tensor zero_point, Tensor fake_quant_enabled, int quant_min, int quant_max",
    { tensorParams: true, mask: true, enabled: true },
  ),
  fakePerChannel(
    "aten.fake_quantize_per_channel_affine.default",
    "Tensor self, Tensor scale, Tensor zero_point, int axis, int quant_min, int quant_max",
    false,
  ),
  fakePerChannel(
    "aten.fake_quantize_per_channel_affine_cachemask.default",
    "Tensor self, Tensor scale, Tensor zero_point, int axis, int quant_min, int quant_max",
    true,
  ),
);

/** Names of the ops above that produce or consume quantized integers (the Q/DQ pairs passes look for). */
export const QDQ_OPS = {
  quantize: [
    "quantized_decomposed.quantize_per_tensor.default",
    "quantized_decomposed.quantize_per_tensor.tensor",
    "quantized_decomposed.quantize_per_channel.default",
  ],
  dequantize: [
    "quantized_decomposed.dequantize_per_tensor.default",
    "quantized_decomposed.dequantize_per_tensor.tensor",
    "quantized_decomposed.dequantize_per_channel.default",
  ],
} as const;

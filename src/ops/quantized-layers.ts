// torchc's own quantized layers: a convolution or linear layer whose input is quantized per tensor and whose
// weight is int8 per output channel, as src/passes/quantize-fold.ts folds them out of PT2E's
// quantize → dequantize → conv(dequantize(int8 weight)) patterns. Their references compute what int8 hardware
// computes, so they are the oracle for int8 kernels:
//   xq  = clamp(round_half_even(x · (1/sx)) + zx, qmin, qmax)                 (quantize, float32 as PyTorch)
//   acc = Σ (xq − zx) · (wq − zw[c])                                           (exact integers: int32 accumulation)
//   y   = float32(acc) · float32(sx · sw[c]) + bias[c]                         (the fp32 epilogue, rounded per step)
// They are not PyTorch ops (no torch schema); the schema strings follow PyTorch's syntax so they parse alike.
import type { TensorType } from "../ir/graph.js";
import { numel, type Tensor } from "../ir/tensor.js";
import { CONV_OPS, type ConvArgs, convolve, readPadded } from "./conv.js";
import { fromF64, nums, tt } from "./data.js";
import { gemm } from "./matmul.js";
import { quantizeValue } from "./quantize-math.js";
import { type ArgReader, defineOp, OpArgError, opTable } from "./schema.js";
import type { TypeOf, ValueOf } from "./types.js";

/** The quantization of the input and weight shared by both layers. */
export interface QuantizedInput {
  readonly inputScale: number;
  readonly inputZeroPoint: number;
  readonly qmin: number;
  readonly qmax: number;
  readonly weightScales: string;
  readonly weightZeroPoints: string | null;
}

export interface QuantizedConvArgs extends ConvArgs, QuantizedInput {}

export interface QuantizedLinearArgs extends QuantizedInput {
  readonly input: string;
  readonly weight: string;
  readonly bias: string | null;
}

const Q_SCHEMA =
  "Tensor input, float input_scale, int input_zero_point, int input_quant_min, int input_quant_max, Tensor weight, Tensor weight_scales, Tensor? weight_zero_points, Tensor? bias";

function readQuant(r: ArgReader): QuantizedInput {
  const qmin = r.int("input_quant_min");
  const qmax = r.int("input_quant_max");
  if (qmin > qmax) r.fail("input_quant_min", `${qmin} > input_quant_max ${qmax}`);
  const s = r.float("input_scale");
  if (!(s > 0)) r.fail("input_scale", `${s} is not positive`);
  return {
    inputScale: s,
    inputZeroPoint: r.int("input_zero_point"),
    qmin,
    qmax,
    weightScales: r.tensor("weight_scales"),
    weightZeroPoints: r.optTensor("weight_zero_points"),
  };
}

function checkWeight(op: string, a: QuantizedInput & { weight: string }, typeOf: TypeOf): void {
  const w = typeOf(a.weight);
  if (w.dtype !== "int8" && w.dtype !== "uint8")
    throw new OpArgError(op, "weight", `expected int8 or uint8, got ${w.dtype}`);
  const n = numel(typeOf(a.weightScales).shape);
  if (n !== 1 && n !== w.shape[0])
    throw new OpArgError(op, "weight_scales", `${n} scales for ${w.shape[0]} output channels`);
  if (a.weightZeroPoints !== null && numel(typeOf(a.weightZeroPoints).shape) !== n)
    throw new OpArgError(
      op,
      "weight_zero_points",
      `${numel(typeOf(a.weightZeroPoints).shape)} values for ${n} scales`,
    );
}

/** The input's quantized integers minus its zero point, and the weight's minus theirs, as exact float64 tensors. */
function integerOperands(a: QuantizedInput & { input: string; weight: string }, valueAt: ValueOf) {
  const x = valueAt(a.input);
  const w = valueAt(a.weight);
  const inv = 1 / a.inputScale;
  const xv = nums(x);
  const xq = new Float64Array(xv.length);
  for (let i = 0; i < xv.length; i++)
    xq[i] = quantizeValue(xv[i], inv, a.inputZeroPoint, a.qmin, a.qmax) - a.inputZeroPoint;
  const s = nums(valueAt(a.weightScales));
  const zw = a.weightZeroPoints === null ? null : nums(valueAt(a.weightZeroPoints));
  const oc = w.shape[0];
  const per = numel(w.shape) / oc;
  const wv = nums(w);
  const wq = new Float64Array(wv.length);
  for (let i = 0; i < wv.length; i++) {
    const c = s.length === 1 ? 0 : Math.floor(i / per);
    wq[i] = wv[i] - (zw ? zw[c] : 0);
  }
  const scale = Array.from({ length: oc }, (_, c) =>
    Math.fround(Math.fround(a.inputScale) * Math.fround(s[s.length === 1 ? 0 : c])),
  );
  const f64 = (t: Tensor, data: Float64Array): Tensor => ({ dtype: "float64", shape: t.shape, data });
  return { x: f64(x, xq), w: f64(w, wq), scale, oc, outDtype: x.dtype };
}

/** acc (exact integers, channel `c` at (i / plane) % oc) → float32(acc) · scale[c] + bias[c]. */
function epilogue(
  acc: ArrayLike<number>,
  oc: number,
  plane: number,
  scale: readonly number[],
  bias: ArrayLike<number> | null,
) {
  const out = new Float64Array(acc.length);
  const f = Math.fround;
  for (let i = 0; i < acc.length; i++) {
    const c = Math.floor(i / plane) % oc;
    const y = f(f(acc[i]) * scale[c]);
    out[i] = bias ? f(y + bias[c]) : y;
  }
  return out;
}

function requireFloatInput(op: string, t: TensorType): void {
  if (t.dtype !== "float32" && t.dtype !== "float16" && t.dtype !== "bfloat16")
    throw new OpArgError(op, "input", `expected a float tensor, got ${t.dtype}`);
}

const CONV = "torchc.quantized_convolution.default";
const LINEAR = "torchc.quantized_linear.default";

export const QUANTIZED_LAYER_OPS = opTable(
  defineOp<typeof CONV, QuantizedConvArgs>({
    name: CONV,
    schema: `${Q_SCHEMA}, SymInt[] stride, SymInt[] padding, SymInt[] dilation, SymInt groups`,
    read: (r): QuantizedConvArgs => ({ ...readPadded(r), ...readQuant(r) }),
    infer: (a, typeOf) => {
      requireFloatInput(CONV, typeOf(a.input));
      checkWeight(CONV, a, typeOf);
      const x = typeOf(a.input);
      const w = typeOf(a.weight);
      // the shape of a float convolution with the same geometry (the bias is checked against it there)
      return CONV_OPS["aten.convolution.default"].infer({ ...a, transposed: false }, (v) =>
        v === a.weight ? { dtype: x.dtype, shape: w.shape } : typeOf(v),
      );
    },
    evaluate: (a, valueAt) => {
      const { x, w, scale, oc, outDtype } = integerOperands(a, valueAt);
      const acc = convolve(CONV, { ...a, bias: null }, x, w, null);
      // an unbatched convolution ([C, …] in, [oc, …] out) has no batch dim to divide by
      const batch = acc.shape.length === w.shape.length ? acc.shape[0] : 1;
      const plane = numel(acc.shape) / (batch * oc);
      const bias = a.bias === null ? null : nums(valueAt(a.bias));
      return [fromF64(outDtype, acc.shape, epilogue(acc.data as Float64Array, oc, plane, scale, bias))];
    },
  }),
  defineOp<typeof LINEAR, QuantizedLinearArgs>({
    name: LINEAR,
    schema: Q_SCHEMA,
    read: (r): QuantizedLinearArgs => ({
      input: r.tensor("input"),
      weight: r.tensor("weight"),
      bias: r.optTensor("bias"),
      ...readQuant(r),
    }),
    infer: (a, typeOf) => {
      const x = typeOf(a.input);
      requireFloatInput(LINEAR, x);
      checkWeight(LINEAR, a, typeOf);
      const w = typeOf(a.weight);
      if (w.shape.length !== 2 || w.shape[1] !== x.shape[x.shape.length - 1])
        throw new OpArgError(LINEAR, "weight", `weight [${w.shape}] does not fit input [${x.shape}]`);
      return [tt(x.dtype, [...x.shape.slice(0, -1), w.shape[0]])];
    },
    evaluate: (a, valueAt) => {
      const { x, w, scale, oc, outDtype } = integerOperands(a, valueAt);
      const K = w.shape[1];
      const M = numel(x.shape) / K;
      const acc = new Float64Array(M * oc);
      gemm(x.data as Float64Array, 0, w.data as Float64Array, 0, acc, 0, M, K, oc, true);
      const bias = a.bias === null ? null : nums(valueAt(a.bias));
      return [fromF64(outDtype, [...x.shape.slice(0, -1), oc], epilogue(acc, oc, 1, scale, bias))];
    },
  }),
);

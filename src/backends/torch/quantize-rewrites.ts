/**
 * The quantization ops that are not in LibTorch's dispatcher, as the aten arithmetic they stand for, so the
 * fallback can run any of them the CUDA engine cannot (a weight computed at run time, a range wider than 8 bits):
 *  - quantized_decomposed.* is a Python library (torch/ao/quantization/fx/_decomposed.py); its ops are
 *    written out as that file writes them: quantize = clamp(round(x · (1/s)) + zp, qmin, qmax).to(dtype),
 *    dequantize = (q − zp) · s (per tensor: float32 with the Python scalars rounded to float32; per channel:
 *    (q − zp[c]) · s[c] with PyTorch's promotion, so float64 scales compute in float64);
 *  - torchc.quantized_{linear,convolution} (src/ops/quantized-layers.ts) are the quantized input in exact
 *    integers (float64), the float64 linear/convolution (exact integer sums), then the fp32 epilogue
 *    float32(acc) · float32(sx · sw[c]) + bias[c], as the references compute them.
 * Every intermediate is typed, so the references (src/ops/quantize.ts) are matched bit for bit on the CPU plan.
 */
import type { DType } from "../../ir/dtype.js";
import type { Arg, Node } from "../../ir/graph.js";
import { numel } from "../../ir/tensor.js";
import { getOp } from "../../ops/index.js";
import type { DequantizeArgs, PerChannel, QuantizeArgs } from "../../ops/quantize.js";
import type { QuantizedConvArgs, QuantizedLinearArgs } from "../../ops/quantized-layers.js";
import type { Rule } from "../../passes/rewrite/rule.js";
import { type LoweringContext, loweringRule } from "./lowering-rule.js";
import { tensorArg as t } from "./rewrite-context.js";

const ints = (value: readonly number[]): Arg => ({ kind: "ints", value: [...value] });
const int = (value: number): Arg => ({ kind: "int", value });

/** The aten calls the rewrites make, each one emitted (and lowered further) node. */
function ops(cx: LoweringContext) {
  const one = (op: string, args: Record<string, Arg>) => cx.emit(op, args)[0];
  const dtypeOf = (v: string) => cx.typeOf(v).dtype;
  return {
    dtypeOf,
    cast: (v: string, dtype: DType) =>
      dtypeOf(v) === dtype
        ? v
        : one("aten._to_copy.default", { self: t(v), dtype: { kind: "dtype", value: dtype } }),
    reshape: (v: string, shape: readonly number[]) =>
      one("aten.reshape.default", { self: t(v), shape: ints(shape) }),
    binary: (op: "add" | "sub" | "mul", a: string, b: string) =>
      one(`aten.${op}.Tensor`, { self: t(a), other: t(b) }),
    unary: (op: "round" | "reciprocal", v: string) => one(`aten.${op}.default`, { self: t(v) }),
    clamp: (v: string, lo: number, hi: number) =>
      one("aten.clamp.default", { self: t(v), min: int(lo), max: int(hi) }),
    /** A 0-d float32 constant. */
    f32: (value: number) => cx.scalarConstant(value, "float32"),
    one,
  };
}

type Ops = ReturnType<typeof ops>;

/** [1, …, n, …, 1] of `rank` with n at `axis`: a per-channel vector broadcast along `axis`. */
function along(o: Ops, cx: LoweringContext, v: string, rank: number, axis: number): string {
  const shape = new Array<number>(rank).fill(1);
  shape[axis] = numel(cx.typeOf(v).shape);
  return o.reshape(v, shape);
}

/** A per-tensor parameter as a 0-d `dtype` value: a number as a constant, a one-element tensor reshaped and cast. */
function perTensor(o: Ops, cx: LoweringContext, p: number | string, dtype: DType): string {
  if (typeof p === "number") return cx.scalarConstant(p, dtype);
  return o.cast(o.reshape(p, []), dtype);
}

/** round(x · inv) + zp clamped to [qmin, qmax], in x·inv's float type (still float). */
function quantizeFloat(o: Ops, x: string, inv: string, zp: string, qmin: number, qmax: number): string {
  return o.clamp(o.binary("add", o.unary("round", o.binary("mul", x, inv)), zp), qmin, qmax);
}

/** quantize_per_tensor: f16/bf16 inputs go to float32 first; 1/scale is a Python float (float32 at the mul). */
function quantizePerTensor(cx: LoweringContext, a: QuantizeArgs): string {
  const o = ops(cx);
  const x = o.cast(a.input, "float32");
  const inv =
    typeof a.scale === "number"
      ? o.f32(Math.fround(1 / a.scale))
      : o.cast(o.unary("reciprocal", o.reshape(a.scale, [])), "float32");
  const zp = perTensor(o, cx, a.zeroPoint, "float32");
  return o.cast(quantizeFloat(o, x, inv, zp, a.qmin, a.qmax), a.dtype);
}

/** dequantize_per_tensor: (q − zp) · scale in float32 (scale.item() is a Python float), then out_dtype. */
function dequantizePerTensor(cx: LoweringContext, a: DequantizeArgs): string {
  const o = ops(cx);
  const q = o.cast(a.input, "float32");
  const zp = perTensor(o, cx, a.zeroPoint, "float32");
  const s = perTensor(o, cx, a.scale, "float32");
  return o.cast(o.binary("mul", o.binary("sub", q, zp), s), a.outDtype);
}

function channelAxis(cx: LoweringContext, a: PerChannel): { rank: number; axis: number } {
  const rank = cx.typeOf(a.input).shape.length;
  return { rank, axis: a.axis < 0 ? a.axis + rank : a.axis };
}

/** quantize_per_channel: x · (1/scales) with PyTorch's promotion (float64 scales compute in float64). */
function quantizePerChannel(cx: LoweringContext, a: PerChannel & { dtype: DType }): string {
  const o = ops(cx);
  const { rank, axis } = channelAxis(cx, a);
  const x = o.cast(a.input, "float32");
  const inv = along(o, cx, o.unary("reciprocal", a.scales), rank, axis);
  const zp = a.zeroPoints === null ? o.f32(0) : along(o, cx, a.zeroPoints, rank, axis);
  return o.cast(quantizeFloat(o, x, inv, zp, a.qmin, a.qmax), a.dtype);
}

/** dequantize_per_channel: (q − zp[c]) · s[c] with PyTorch's promotion, then out_dtype. */
function dequantizePerChannel(cx: LoweringContext, a: PerChannel & { outDtype: DType }): string {
  const o = ops(cx);
  const { rank, axis } = channelAxis(cx, a);
  const q =
    a.zeroPoints === null ? a.input : o.binary("sub", a.input, along(o, cx, a.zeroPoints, rank, axis));
  return o.cast(o.binary("mul", q, along(o, cx, a.scales, rank, axis)), a.outDtype);
}

/** A quantized layer's operands as exact float64 integers: (xq − zx) and (wq − zw[c]). */
function integerOperands(cx: LoweringContext, a: QuantizedLinearArgs): { x: string; w: string } {
  const o = ops(cx);
  const x = o.cast(a.input, "float32");
  const zx = o.f32(a.inputZeroPoint);
  const xq = quantizeFloat(o, x, o.f32(Math.fround(1 / a.inputScale)), zx, a.qmin, a.qmax);
  const xi = o.cast(o.binary("sub", xq, zx), "float64");
  const wRank = cx.typeOf(a.weight).shape.length;
  const w = o.cast(a.weight, "float64");
  const wi =
    a.weightZeroPoints === null
      ? w
      : o.binary("sub", w, along(o, cx, o.cast(a.weightZeroPoints, "float64"), wRank, 0));
  return { x: xi, w: wi };
}

/** float32(acc) · float32(sx · sw[c]) + bias[c] with c along `axis` of the rank-`rank` result, in x's dtype. */
function epilogue(
  cx: LoweringContext,
  a: QuantizedLinearArgs,
  acc: string,
  rank: number,
  axis: number,
): string {
  const o = ops(cx);
  const scale = o.binary("mul", o.cast(a.weightScales, "float32"), o.f32(a.inputScale));
  let y = o.binary("mul", o.cast(acc, "float32"), along(o, cx, scale, rank, axis));
  if (a.bias !== null) y = o.binary("add", y, along(o, cx, o.cast(a.bias, "float32"), rank, axis));
  return o.cast(y, o.dtypeOf(a.input));
}

function quantizedLinear(cx: LoweringContext, a: QuantizedLinearArgs): string {
  const o = ops(cx);
  const { x, w } = integerOperands(cx, a);
  const acc = o.one("aten.linear.default", { input: t(x), weight: t(w), bias: { kind: "none" } });
  const rank = cx.typeOf(acc).shape.length;
  return epilogue(cx, a, acc, rank, rank - 1);
}

function quantizedConvolution(cx: LoweringContext, a: QuantizedConvArgs): string {
  const o = ops(cx);
  const { x, w } = integerOperands(cx, { ...a, bias: null });
  const acc = o.one("aten.convolution.default", {
    input: t(x),
    weight: t(w),
    bias: { kind: "none" },
    stride: ints(a.stride),
    padding: ints(a.padding as readonly number[]),
    dilation: ints(a.dilation),
    transposed: { kind: "bool", value: false },
    output_padding: ints([0]),
    groups: int(a.groups),
  });
  const rank = cx.typeOf(acc).shape.length;
  // unbatched convolutions ([C, …]) have their channels first
  return epilogue(cx, a, acc, rank, rank === cx.typeOf(a.weight).shape.length ? 1 : 0);
}

/** A rule that writes one quantization op as aten ops and binds the result to the node's output. */
function rewrite<A>(
  names: string | readonly string[],
  name: string,
  doc: string,
  f: (cx: LoweringContext, a: A) => string,
): Rule {
  return loweringRule({
    name,
    doc,
    ops: names,
    lower: (node: Node, cx) => {
      const v = f(cx, getOp(node.op)!.parse(node.args) as A);
      cx.emit("aten.alias.default", { self: t(v) }, node.outputs);
    },
  });
}

export const QUANTIZATION_RULES: readonly Rule[] = [
  rewrite<QuantizeArgs>(
    ["quantized_decomposed.quantize_per_tensor.default", "quantized_decomposed.quantize_per_tensor.tensor"],
    "quantize_per_tensor → round/clamp",
    "not in LibTorch (a Python library): clamp(round(x·(1/s)) + zp, qmin, qmax).to(dtype), as _decomposed.py",
    quantizePerTensor,
  ),
  rewrite<DequantizeArgs>(
    [
      "quantized_decomposed.dequantize_per_tensor.default",
      "quantized_decomposed.dequantize_per_tensor.tensor",
    ],
    "dequantize_per_tensor → sub/mul",
    "not in LibTorch (a Python library): (q − zp)·s in float32, then out_dtype",
    dequantizePerTensor,
  ),
  rewrite<PerChannel & { dtype: DType }>(
    "quantized_decomposed.quantize_per_channel.default",
    "quantize_per_channel → round/clamp",
    "not in LibTorch (a Python library): clamp(round(x·(1/s[c])) + zp[c], qmin, qmax).to(dtype)",
    quantizePerChannel,
  ),
  rewrite<PerChannel & { outDtype: DType }>(
    "quantized_decomposed.dequantize_per_channel.default",
    "dequantize_per_channel → sub/mul",
    "not in LibTorch (a Python library): (q − zp[c])·s[c], then out_dtype",
    dequantizePerChannel,
  ),
  rewrite<QuantizedLinearArgs>(
    "torchc.quantized_linear.default",
    "quantized_linear → float64 linear",
    "torchc's own op: exact integer operands in float64, linear, then the fp32 epilogue of the reference",
    quantizedLinear,
  ),
  rewrite<QuantizedConvArgs>(
    "torchc.quantized_convolution.default",
    "quantized_convolution → float64 convolution",
    "torchc's own op: exact integer operands in float64, convolution, then the fp32 epilogue of the reference",
    quantizedConvolution,
  ),
];

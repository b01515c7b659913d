/**
 * Single-node graphs for every rewrite the LibTorch fallback applies (scalar-rewrites.ts, op-rewrites.ts,
 * conv-precision.ts, in-place and number-operand handling), with deterministic random inputs.
 */

import { GraphBuilder } from "../../../src/ir/builder.js";
import type { DType } from "../../../src/ir/dtype.js";
import { isFloating } from "../../../src/ir/dtype.js";
import type { Arg, Graph, Node, TensorType } from "../../../src/ir/graph.js";
import { numel, type Tensor, tensorFromNumbers } from "../../../src/ir/tensor.js";
import { inferNode } from "../../../src/ops/index.js";

export interface RewriteCase {
  readonly label: string;
  readonly op: string;
  readonly inputs: Readonly<Record<string, TensorType>>;
  readonly args: Readonly<Record<string, Arg>>;
  /** Compare only dtype and shape (uninitialised results). */
  readonly typeOnly?: boolean;
}

const f32 = (...shape: number[]): TensorType => ({ dtype: "float32", shape });
const f16 = (...shape: number[]): TensorType => ({ dtype: "float16", shape });
const i64 = (...shape: number[]): TensorType => ({ dtype: "int64", shape });
const i32 = (...shape: number[]): TensorType => ({ dtype: "int32", shape });
const b8 = (...shape: number[]): TensorType => ({ dtype: "bool", shape });
const i8 = (...shape: number[]): TensorType => ({ dtype: "int8", shape });

const T = (name: string): Arg => ({ kind: "tensor", name });
const F = (value: number): Arg => ({ kind: "float", value });
const I = (value: number): Arg => ({ kind: "int", value });
const B = (value: boolean): Arg => ({ kind: "bool", value });
const L = (...value: number[]): Arg => ({ kind: "ints", value });
const S = (value: string): Arg => ({ kind: "string", value });
const D = (value: DType): Arg => ({ kind: "dtype", value });
const NONE: Arg = { kind: "none" };

function c(
  label: string,
  op: string,
  inputs: Record<string, TensorType>,
  args: Record<string, Arg>,
  typeOnly = false,
): RewriteCase {
  return { label, op, inputs, args, typeOnly };
}

const X = { x: f32(2, 3, 4) };
const XI = { x: i64(2, 3, 4) };

export const REWRITE_CASES: readonly RewriteCase[] = [
  // add/sub/rsub and their alpha
  c(
    "float add, alpha 2.5 (shim)",
    "aten.add.Tensor",
    { x: f32(2, 3), y: f32(3) },
    { self: T("x"), other: T("y"), alpha: F(2.5) },
  ),
  c(
    "int add, alpha 3",
    "aten.add.Tensor",
    { x: i64(2, 3), y: i64(2, 3) },
    { self: T("x"), other: T("y"), alpha: I(3) },
  ),
  c(
    "mixed int add with broadcast",
    "aten.add.Tensor",
    { x: i32(2, 3), y: i64(3) },
    { self: T("x"), other: T("y") },
  ),
  c("bool add", "aten.add.Tensor", { x: b8(4), y: b8(4) }, { self: T("x"), other: T("y") }),
  c("add.Scalar float", "aten.add.Scalar", X, { self: T("x"), other: F(1.5), alpha: I(2) }),
  c("add.Scalar int", "aten.add.Scalar", XI, { self: T("x"), other: I(3) }),
  c("add.Tensor with a number", "aten.add.Tensor", X, { self: T("x"), other: I(3) }),
  c("sub.Tensor float", "aten.sub.Tensor", { x: f32(2, 3), y: f32(2, 3) }, { self: T("x"), other: T("y") }),
  c(
    "sub.Tensor int alpha 2",
    "aten.sub.Tensor",
    { x: i64(5), y: i64(5) },
    { self: T("x"), other: T("y"), alpha: I(2) },
  ),
  c("sub.Scalar", "aten.sub.Scalar", X, { self: T("x"), other: F(0.25) }),
  c(
    "rsub.Tensor",
    "aten.rsub.Tensor",
    { x: f32(3), y: f32(3) },
    { self: T("x"), other: T("y"), alpha: F(0.5) },
  ),
  c("rsub.Scalar float", "aten.rsub.Scalar", X, { self: T("x"), other: F(1) }),
  c("rsub.Scalar int", "aten.rsub.Scalar", XI, { self: T("x"), other: I(7) }),
  // Tensor overloads with a 0-d constant
  c("mul.Scalar", "aten.mul.Scalar", X, { self: T("x"), other: F(0.5946035575013605) }),
  c("mul.Scalar int × float", "aten.mul.Scalar", XI, { self: T("x"), other: F(2.5) }),
  c("mul.Scalar half", "aten.mul.Scalar", { x: f16(8) }, { self: T("x"), other: F(0.5) }),
  c("div.Scalar", "aten.div.Scalar", X, { self: T("x"), other: I(6) }),
  c("div.Scalar int (true division)", "aten.div.Scalar", XI, { self: T("x"), other: I(2) }),
  c("div.Scalar_mode floor", "aten.div.Scalar_mode", XI, {
    self: T("x"),
    other: I(3),
    rounding_mode: S("floor"),
  }),
  c("remainder.Scalar", "aten.remainder.Scalar", X, { self: T("x"), other: F(1.5) }),
  c("fmod.Scalar", "aten.fmod.Scalar", XI, { self: T("x"), other: I(3) }),
  c("eq.Scalar -inf", "aten.eq.Scalar", X, { self: T("x"), other: F(Number.NEGATIVE_INFINITY) }),
  c("eq.Scalar int vs 0.5", "aten.eq.Scalar", XI, { self: T("x"), other: F(0.5) }),
  c("ne.Scalar", "aten.ne.Scalar", XI, { self: T("x"), other: I(0) }),
  c("lt.Scalar", "aten.lt.Scalar", X, { self: T("x"), other: F(0.5) }),
  c("gt.Scalar", "aten.gt.Scalar", X, { self: T("x"), other: I(0) }),
  c("le.Scalar", "aten.le.Scalar", XI, { self: T("x"), other: I(1) }),
  c("ge.Scalar", "aten.ge.Scalar", X, { self: T("x"), other: F(-0.5) }),
  c("clamp_min", "aten.clamp_min.default", X, { self: T("x"), min: F(-0.5) }),
  c("clamp_max", "aten.clamp_max.default", X, { self: T("x"), max: I(1) }),
  c("pow x^2", "aten.pow.Tensor_Scalar", X, { self: T("x"), exponent: I(2) }),
  c("pow x^0.5", "aten.pow.Tensor_Scalar", X, { self: T("x"), exponent: F(0.5) }),
  c("pow int^3", "aten.pow.Tensor_Scalar", XI, { self: T("x"), exponent: I(3) }),
  c("pow 2^x", "aten.pow.Scalar", X, { self: F(2), exponent: T("x") }),
  c("clamp min", "aten.clamp.default", X, { self: T("x"), min: I(0) }),
  c("clamp max", "aten.clamp.default", X, { self: T("x"), min: NONE, max: I(6) }),
  c("clamp both", "aten.clamp.default", X, { self: T("x"), min: F(-0.5), max: F(0.5) }),
  c("hardtanh ±0.5", "aten.hardtanh.default", X, { self: T("x"), min_val: F(-0.5), max_val: F(0.5) }),
  c("hardtanh default", "aten.hardtanh.default", X, { self: T("x") }),
  c(
    "where.ScalarOther",
    "aten.where.ScalarOther",
    { c: b8(2, 3, 4), ...X },
    { condition: T("c"), self: T("x"), other: F(-1) },
  ),
  c(
    "where.ScalarSelf",
    "aten.where.ScalarSelf",
    { c: b8(2, 3, 4), ...XI },
    { condition: T("c"), self: I(9), other: T("x") },
  ),
  c("where.Scalar", "aten.where.Scalar", { c: b8(2, 3) }, { condition: T("c"), self: F(1.5), other: F(-2) }),
  c(
    "where.self with a number",
    "aten.where.self",
    { c: b8(2, 3, 4), ...X },
    { condition: T("c"), self: T("x"), other: F(0) },
  ),
  c(
    "masked_fill.Scalar",
    "aten.masked_fill.Scalar",
    { m: b8(3, 4), ...X },
    { self: T("x"), mask: T("m"), value: F(Number.NEGATIVE_INFINITY) },
  ),
  c("leaky_relu 0.1", "aten.leaky_relu.default", X, { self: T("x"), negative_slope: F(0.1) }),
  c("leaky_relu default", "aten.leaky_relu.default", X, { self: T("x") }),
  c("elu default", "aten.elu.default", X, { self: T("x") }),
  c("elu scaled", "aten.elu.default", X, {
    self: T("x"),
    alpha: F(1.5),
    scale: F(1.05),
    input_scale: F(0.9),
  }),
  c("softplus default", "aten.softplus.default", X, { self: T("x") }),
  c("softplus beta 2 threshold 1", "aten.softplus.default", X, { self: T("x"), beta: I(2), threshold: I(1) }),
  c(
    "addmm",
    "aten.addmm.default",
    { b: f32(5), m: f32(3, 4), w: f32(4, 5) },
    { self: T("b"), mat1: T("m"), mat2: T("w") },
  ),
  c(
    "addmm beta 0.5 alpha 2",
    "aten.addmm.default",
    { b: f32(3, 5), m: f32(3, 4), w: f32(4, 5) },
    { self: T("b"), mat1: T("m"), mat2: T("w"), beta: F(0.5), alpha: I(2) },
  ),
  c(
    "addmm beta 0",
    "aten.addmm.default",
    { b: f32(5), m: f32(3, 4), w: f32(4, 5) },
    { self: T("b"), mat1: T("m"), mat2: T("w"), beta: I(0) },
  ),
  c("constant_pad_nd", "aten.constant_pad_nd.default", X, {
    self: T("x"),
    pad: L(1, 2, 0, 1),
    value: F(1.5),
  }),
  c("var.correction 0", "aten.var.correction", X, {
    self: T("x"),
    dim: L(1),
    correction: I(0),
    keepdim: B(true),
  }),
  c("var.correction None", "aten.var.correction", X, { self: T("x"), dim: L(2) }),
  c("std.correction 1", "aten.std.correction", X, { self: T("x"), dim: L(0, 2), correction: I(1) }),
  c("var_mean.correction", "aten.var_mean.correction", X, { self: T("x"), dim: L(1), correction: I(0) }),
  c("full", "aten.full.default", {}, { size: L(2, 3), fill_value: F(1.5) }),
  c("full_like", "aten.full_like.default", X, {
    self: T("x"),
    fill_value: I(0),
    pin_memory: B(false),
    memory_format: { kind: "memoryFormat", value: "preserve_format" },
  }),
  c("new_full", "aten.new_full.default", X, {
    self: T("x"),
    size: L(4),
    fill_value: I(7),
    dtype: D("int64"),
  }),
  c("scalar_tensor", "aten.scalar_tensor.default", {}, { s: F(2.5) }),
  c("arange end", "aten.arange.default", {}, { end: I(5) }),
  c("arange start", "aten.arange.start", {}, { start: I(2), end: I(7), dtype: D("float32") }),
  c("arange start_step", "aten.arange.start_step", {}, { start: F(0), end: F(1), step: F(0.25) }),
  // op-rewrites.ts
  c("zeros", "aten.zeros.default", {}, { size: L(2, 2), device: { kind: "device", value: "cpu" } }),
  c("ones", "aten.ones.default", {}, { size: L(3), dtype: D("int64") }),
  c("empty", "aten.empty.memory_format", {}, { size: L(2, 5) }, true),
  c("to.device", "aten.to.device", X, {
    self: T("x"),
    device: { kind: "device", value: "cuda:0" },
    dtype: D("float16"),
  }),
  c("to.prim_dtype", "aten.to.prim_dtype", X, { self: T("x"), dtype: I(4) }),
  c("to.prim_Device", "aten.to.prim_Device", X, { self: T("x"), device: { kind: "device", value: "cpu" } }),
  // in-place → functional
  c("relu_", "aten.relu_.default", X, { self: T("x") }),
  c("mul_ keeps self's dtype", "aten.mul_.Tensor", { x: f16(6), y: f32(6) }, { self: T("x"), other: T("y") }),
  c("add_.Scalar", "aten.add_.Scalar", X, { self: T("x"), other: F(1), alpha: I(2) }),
  c("hardtanh_", "aten.hardtanh_.default", X, { self: T("x"), min_val: I(0), max_val: I(6) }),
  // conv-precision.ts
  c(
    "conv2d → _convolution",
    "aten.conv2d.default",
    { x: f32(1, 4, 6, 6), w: f32(8, 2, 3, 3), b: f32(8) },
    { input: T("x"), weight: T("w"), bias: T("b"), stride: I(2), padding: L(1, 1), groups: I(2) },
  ),
  c(
    "conv1d padding same",
    "aten.conv1d.padding",
    { x: f32(2, 3, 9), w: f32(4, 3, 3) },
    { input: T("x"), weight: T("w"), padding: S("same") },
  ),
  c(
    "conv_transpose2d",
    "aten.conv_transpose2d.input",
    { x: f32(1, 4, 5, 5), w: f32(4, 3, 3, 3) },
    { input: T("x"), weight: T("w"), stride: L(2, 2), padding: L(1, 1), output_padding: L(1, 1) },
  ),
  c(
    "convolution",
    "aten.convolution.default",
    { x: f32(1, 2, 5, 5), w: f32(3, 2, 3, 3) },
    {
      input: T("x"),
      weight: T("w"),
      bias: NONE,
      stride: L(1, 1),
      padding: L(0, 0),
      dilation: L(1, 1),
      transposed: B(false),
      output_padding: L(0, 0),
      groups: I(1),
    },
  ),
  c("fill.Scalar into int64", "aten.fill.Scalar", { x: i64(2, 3) }, { self: T("x"), value: F(2.7) }),
  c("fill.Scalar into float", "aten.fill.Scalar", { x: f32(4) }, { self: T("x"), value: I(-3) }),
  // composite ops with a Scalar (composite-rewrites.ts)
  c(
    "addcmul, value 0.5, broadcast",
    "aten.addcmul.default",
    { x: f32(2, 3), a: f32(3), b: f32(2, 1) },
    { self: T("x"), tensor1: T("a"), tensor2: T("b"), value: F(0.5) },
  ),
  c(
    "addcmul, int tensors",
    "aten.addcmul.default",
    { x: i64(2, 3), a: i64(3), b: i64(2, 3) },
    { self: T("x"), tensor1: T("a"), tensor2: T("b"), value: I(3) },
  ),
  c(
    "addcdiv, value −2",
    "aten.addcdiv.default",
    { x: f32(2, 3), a: f32(2, 3), b: f32(2, 3) },
    { self: T("x"), tensor1: T("a"), tensor2: T("b"), value: F(-2) },
  ),
  ...[2, 1, 0, 3, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY].map((ord) =>
    c(
      `linalg_vector_norm ord ${ord}`,
      "aten.linalg_vector_norm.default",
      { x: f32(2, 3, 4) },
      { self: T("x"), ord: F(ord), dim: L(-1), keepdim: B(ord === 1) },
    ),
  ),
  c(
    "linalg_vector_norm over all dims, float64",
    "aten.linalg_vector_norm.default",
    { x: f32(2, 3) },
    { self: T("x"), dtype: D("float64") },
  ),
  // eval-mode batch norm: CUDA's [C] stats sliced to the graph's [0] (batch-norm-stats.ts)
  ...batchNormCases(),
  // quantization ops outside LibTorch's dispatcher → aten arithmetic (quantize-rewrites.ts)
  ...quantizationCases(),
];

function batchNormCases(): RewriteCase[] {
  const inputs = { x: f32(2, 3, 4), w: f32(3), b: f32(3), m: f32(3), v: f32(3) };
  const affine = { input: T("x"), weight: T("w"), bias: T("b"), running_mean: T("m"), running_var: T("v") };
  const num = { momentum: F(0.1), eps: F(1e-3) };
  return [
    c("batch norm no_training", "aten._native_batch_norm_legit_no_training.default", inputs, {
      ...affine,
      ...num,
    }),
    c("_native_batch_norm_legit eval", "aten._native_batch_norm_legit.default", inputs, {
      ...affine,
      training: B(false),
      ...num,
    }),
    c("native_batch_norm eval", "aten.native_batch_norm.default", inputs, {
      ...affine,
      training: B(false),
      ...num,
    }),
  ];
}

function quantizationCases(): RewriteCase[] {
  const range = { quant_min: I(-128), quant_max: I(127), dtype: D("int8") };
  const layer = {
    input_scale: F(0.1),
    input_zero_point: I(3),
    input_quant_min: I(-128),
    input_quant_max: I(127),
    weight: T("w"),
    weight_scales: T("ws"),
  };
  return [
    c(
      "quantize_per_tensor",
      "quantized_decomposed.quantize_per_tensor.default",
      { x: f32(2, 3) },
      { input: T("x"), scale: F(0.1), zero_point: I(3), ...range },
    ),
    c(
      "quantize_per_tensor.tensor",
      "quantized_decomposed.quantize_per_tensor.tensor",
      { x: f32(2, 3), s: f32(1), z: i64(1) },
      { input: T("x"), scale: T("s"), zero_point: T("z"), ...range },
    ),
    c(
      "dequantize_per_tensor to float16",
      "quantized_decomposed.dequantize_per_tensor.default",
      { q: i8(2, 3) },
      { input: T("q"), scale: F(0.1), zero_point: I(-2), ...range, out_dtype: D("float16") },
    ),
    c(
      "dequantize_per_tensor.tensor",
      "quantized_decomposed.dequantize_per_tensor.tensor",
      { q: i8(2, 3), s: f32(1), z: i64(1) },
      { input: T("q"), scale: T("s"), zero_point: T("z"), ...range },
    ),
    c(
      "quantize_per_channel axis 1",
      "quantized_decomposed.quantize_per_channel.default",
      { x: f32(2, 3), s: f32(3), z: i64(3) },
      { input: T("x"), scales: T("s"), zero_points: T("z"), axis: I(1), ...range },
    ),
    c(
      "dequantize_per_channel, no zero points",
      "quantized_decomposed.dequantize_per_channel.default",
      { q: i8(2, 3), s: f32(3) },
      { input: T("q"), scales: T("s"), zero_points: NONE, axis: I(-1), ...range },
    ),
    c(
      "torchc quantized_linear",
      "torchc.quantized_linear.default",
      { x: f32(2, 4), w: i8(3, 4), ws: f32(3), b: f32(3) },
      { input: T("x"), ...layer, weight_zero_points: NONE, bias: T("b") },
    ),
    c(
      "torchc quantized_convolution",
      "torchc.quantized_convolution.default",
      { x: f32(1, 2, 4, 4), w: i8(3, 2, 3, 3), ws: f32(1) },
      {
        input: T("x"),
        ...layer,
        weight_zero_points: NONE,
        bias: NONE,
        stride: L(1, 1),
        padding: L(1, 1),
        dilation: L(1, 1),
        groups: I(1),
      },
    ),
  ];
}

/** A deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomTensor(r: () => number, type: TensorType): Tensor {
  const n = numel(type.shape);
  const values = Array.from({ length: n }, () => {
    if (type.dtype === "bool") return r() < 0.5 ? 1 : 0;
    if (!isFloating(type.dtype)) return Math.floor(r() * 11) - 5;
    const v = (r() * 2 - 1) * 3;
    return r() < 0.1 ? 0 : Math.round(v * 64) / 64;
  });
  return tensorFromNumbers(type.dtype, type.shape, values);
}

/** The case as a one-node graph (outputs typed by inference) and the node itself. */
export function caseGraph(k: RewriteCase): { graph: Graph; node: Node } {
  const b = new GraphBuilder();
  for (const [name, type] of Object.entries(k.inputs)) b.addInput(name, type);
  const probe: Node = { name: "n", op: k.op, args: k.args, outputs: [], meta: {} };
  const types = inferNode(probe, (n) => b.typeOf(n));
  const outs = b.addNode(
    k.op,
    { ...k.args },
    types.map((type, i) => ({ name: `out${i}`, type })),
    {},
    "n",
  );
  b.setOutputs(outs);
  const graph = b.build();
  return { graph, node: graph.nodes[0] };
}

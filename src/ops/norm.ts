import type { DType } from "../ir/dtype.js";
import type { TensorType } from "../ir/graph.js";
import { numel, type Shape } from "../ir/tensor.js";
import { f64, fromF64, tt } from "./data.js";
import { defineOp, OpArgError, opTable } from "./schema.js";
import type { TypeOf, ValueOf } from "./types.js";

/** Mean and 1/sqrt(biased var + eps) of `rows` consecutive runs of `len` elements. */
function rowStats(
  x: Float64Array,
  rows: number,
  len: number,
  eps: number,
): { mean: Float64Array; rstd: Float64Array } {
  const mean = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * len;
    let s = 0;
    for (let j = 0; j < len; j++) s += x[o + j];
    const m = s / len;
    let v = 0;
    for (let j = 0; j < len; j++) {
      const d = x[o + j] - m;
      v += d * d;
    }
    mean[r] = m;
    rstd[r] = 1 / Math.sqrt(v / len + eps);
  }
  return { mean, rstd };
}

function statsDtype(d: DType): DType {
  return d === "float64" ? "float64" : "float32";
}

export interface LayerNormArgs {
  readonly input: string;
  readonly normalizedShape: number[];
  readonly weight: string | null;
  readonly bias: string | null;
  readonly eps: number;
}

function layerNormTypes(op: string, a: LayerNormArgs, x: TensorType): TensorType[] {
  const k = a.normalizedShape.length;
  const tail = x.shape.slice(x.shape.length - k);
  if (k > x.shape.length || tail.some((d, i) => d !== a.normalizedShape[i])) {
    throw new OpArgError(
      op,
      "normalized_shape",
      `[${a.normalizedShape.join(", ")}] is not the trailing shape of [${x.shape.join(", ")}]`,
    );
  }
  const stats = [...x.shape.slice(0, x.shape.length - k), ...new Array<number>(k).fill(1)];
  return [tt(x.dtype, x.shape), tt(statsDtype(x.dtype), stats), tt(statsDtype(x.dtype), stats)];
}

function layerNorm(op: string, a: LayerNormArgs, valueAt: ValueOf) {
  const xt = valueAt(a.input);
  const [outT, statT] = layerNormTypes(op, a, xt);
  const x = f64(xt);
  const len = numel(a.normalizedShape);
  const rows = len === 0 ? 0 : x.length / len;
  const { mean, rstd } = rowStats(x, rows, len, a.eps);
  const w = a.weight === null ? null : f64(valueAt(a.weight));
  const b = a.bias === null ? null : f64(valueAt(a.bias));
  const out = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    const o = r * len;
    for (let j = 0; j < len; j++) {
      let v = (x[o + j] - mean[r]) * rstd[r];
      if (w) v *= w[j];
      if (b) v += b[j];
      out[o + j] = v;
    }
  }
  return [
    fromF64(outT.dtype, outT.shape, out),
    fromF64(statT.dtype, statT.shape, mean),
    fromF64(statT.dtype, statT.shape, rstd),
  ];
}

export interface GroupNormArgs {
  readonly input: string;
  readonly weight: string | null;
  readonly bias: string | null;
  readonly groups: number;
  readonly eps: number;
}

function groupDims(op: string, shape: Shape, groups: number): { n: number; c: number; hw: number } {
  if (shape.length < 2) throw new OpArgError(op, "input", `expected (N, C, …), got [${shape.join(", ")}]`);
  const c = shape[1];
  if (groups < 1 || c % groups !== 0)
    throw new OpArgError(op, "group", `${groups} groups do not divide ${c} channels`);
  return { n: shape[0], c, hw: numel(shape.slice(2)) };
}

function groupNorm(op: string, a: GroupNormArgs, valueAt: ValueOf) {
  const xt = valueAt(a.input);
  const { n, c, hw } = groupDims(op, xt.shape, a.groups);
  const x = f64(xt);
  const cg = c / a.groups;
  const { mean, rstd } = rowStats(x, n * a.groups, cg * hw, a.eps);
  const w = a.weight === null ? null : f64(valueAt(a.weight));
  const b = a.bias === null ? null : f64(valueAt(a.bias));
  const out = new Float64Array(x.length);
  for (let i = 0; i < n; i++)
    for (let ch = 0; ch < c; ch++) {
      const g = i * a.groups + Math.floor(ch / cg);
      const scale = rstd[g] * (w ? w[ch] : 1);
      const shift = (b ? b[ch] : 0) - mean[g] * scale;
      for (let j = 0, o = (i * c + ch) * hw; j < hw; j++) out[o + j] = x[o + j] * scale + shift;
    }
  const sd = statsDtype(xt.dtype);
  return [
    fromF64(xt.dtype, xt.shape, out),
    fromF64(sd, [n, a.groups], mean),
    fromF64(sd, [n, a.groups], rstd),
  ];
}

function groupNormTypes(op: string, a: GroupNormArgs, typeOf: TypeOf): TensorType[] {
  const x = typeOf(a.input);
  const { n } = groupDims(op, x.shape, a.groups);
  const sd = statsDtype(x.dtype);
  return [tt(x.dtype, x.shape), tt(sd, [n, a.groups]), tt(sd, [n, a.groups])];
}

export interface RmsNormArgs {
  readonly input: string;
  readonly normalizedShape: number[];
  readonly weight: string | null;
  /** null: the machine epsilon of the type PyTorch computes in (float32 for float16/bfloat16 inputs). */
  readonly eps: number | null;
}

/**
 * rms_norm's default epsilon. PyTorch's documentation says torch.finfo(input.dtype).eps, but its kernels take the
 * epsilon of the compute ("opmath") type: float32's for float16 and bfloat16 inputs. Using float16's 2^-10 instead
 * dominated the mean square of small activations (a timm ViT with nn.RMSNorm was 45 % off in fp16).
 */
const MACHINE_EPS: Readonly<Partial<Record<DType, number>>> = {
  float32: 2 ** -23,
  float64: 2 ** -52,
  float16: 2 ** -23,
  bfloat16: 2 ** -23,
};

export function rmsNormEps(a: RmsNormArgs, dtype: DType): number {
  return a.eps ?? MACHINE_EPS[dtype] ?? 2 ** -23;
}

function rmsNormCheck(a: RmsNormArgs, x: TensorType): void {
  const op = "aten.rms_norm.default";
  const tail = x.shape.slice(x.shape.length - a.normalizedShape.length);
  if (
    a.normalizedShape.length === 0 ||
    a.normalizedShape.length > x.shape.length ||
    tail.join() !== a.normalizedShape.join()
  )
    throw new OpArgError(
      op,
      "normalized_shape",
      `[${a.normalizedShape}] is not the end of the input's [${x.shape}]`,
    );
}

/** x / sqrt(mean(x², over the normalized dims) + eps) · weight, in float64. */
function rmsNorm(a: RmsNormArgs, valueAt: ValueOf) {
  const xt = valueAt(a.input);
  rmsNormCheck(a, xt);
  const x = f64(xt);
  const len = numel(a.normalizedShape);
  const eps = rmsNormEps(a, xt.dtype);
  const w = a.weight === null ? null : f64(valueAt(a.weight));
  const out = new Float64Array(x.length);
  for (let o = 0; o < x.length; o += len) {
    let ms = 0;
    for (let j = 0; j < len; j++) ms += x[o + j] * x[o + j];
    const r = 1 / Math.sqrt(ms / len + eps);
    for (let j = 0; j < len; j++) out[o + j] = x[o + j] * r * (w ? w[j] : 1);
  }
  return fromF64(xt.dtype, xt.shape, out);
}

export const NORM_OPS = opTable(
  defineOp({
    name: "aten.rms_norm.default",
    schema: "Tensor input, SymInt[] normalized_shape, Tensor? weight=None, float? eps=None",
    read: (r): RmsNormArgs => ({
      input: r.tensor("input"),
      normalizedShape: r.ints("normalized_shape"),
      weight: r.optTensor("weight"),
      eps: r.optFloat("eps"),
    }),
    infer: (a, typeOf) => {
      const x = typeOf(a.input);
      rmsNormCheck(a, x);
      return [tt(x.dtype, x.shape)];
    },
    evaluate: (a, valueAt) => [rmsNorm(a, valueAt)],
  }),
  defineOp({
    name: "aten.layer_norm.default",
    schema:
      "Tensor input, SymInt[] normalized_shape, Tensor? weight=None, Tensor? bias=None, float eps=1e-05, bool cudnn_enable=True",
    read: (r): LayerNormArgs => ({
      input: r.tensor("input"),
      normalizedShape: r.ints("normalized_shape"),
      weight: r.optTensor("weight"),
      bias: r.optTensor("bias"),
      eps: r.float("eps"),
    }),
    infer: (a, typeOf) => [layerNormTypes("aten.layer_norm.default", a, typeOf(a.input))[0]],
    evaluate: (a, valueAt) => [layerNorm("aten.layer_norm.default", a, valueAt)[0]],
  }),
  defineOp({
    name: "aten.native_layer_norm.default",
    schema: "Tensor input, SymInt[] normalized_shape, Tensor? weight, Tensor? bias, float eps",
    returns: 3,
    read: (r): LayerNormArgs => ({
      input: r.tensor("input"),
      normalizedShape: r.ints("normalized_shape"),
      weight: r.optTensor("weight"),
      bias: r.optTensor("bias"),
      eps: r.float("eps"),
    }),
    infer: (a, typeOf) => layerNormTypes("aten.native_layer_norm.default", a, typeOf(a.input)),
    evaluate: (a, valueAt) => layerNorm("aten.native_layer_norm.default", a, valueAt),
  }),
  defineOp({
    name: "aten.group_norm.default",
    schema:
      "Tensor input, int num_groups, Tensor? weight=None, Tensor? bias=None, float eps=1e-05, bool cudnn_enabled=True",
    read: (r): GroupNormArgs => ({
      input: r.tensor("input"),
      groups: r.int("num_groups"),
      weight: r.optTensor("weight"),
      bias: r.optTensor("bias"),
      eps: r.float("eps"),
    }),
    infer: (a, typeOf) => [groupNormTypes("aten.group_norm.default", a, typeOf)[0]],
    evaluate: (a, valueAt) => [groupNorm("aten.group_norm.default", a, valueAt)[0]],
  }),
  defineOp({
    name: "aten.native_group_norm.default",
    schema:
      "Tensor input, Tensor? weight, Tensor? bias, SymInt N, SymInt C, SymInt HxW, int group, float eps",
    returns: 3,
    read: (r): GroupNormArgs => ({
      input: r.tensor("input"),
      groups: r.int("group"),
      weight: r.optTensor("weight"),
      bias: r.optTensor("bias"),
      eps: r.float("eps"),
    }),
    infer: (a, typeOf) => groupNormTypes("aten.native_group_norm.default", a, typeOf),
    evaluate: (a, valueAt) => groupNorm("aten.native_group_norm.default", a, valueAt),
  }),
);

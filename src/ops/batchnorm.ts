import type { DType } from "../ir/dtype.js";
import type { TensorType } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import { f64, fromF64, tt } from "./data.js";
import { defineOp, OpArgError, opTable } from "./schema.js";
import type { TypeOf, ValueOf } from "./types.js";

export interface BatchNormArgs {
  readonly input: string;
  readonly weight: string | null;
  readonly bias: string | null;
  readonly runningMean: string | null;
  readonly runningVar: string | null;
  readonly training: boolean;
  readonly eps: number;
}

/** Batch statistics are used in training mode, or when there are no running statistics to use. */
function usesBatchStats(a: BatchNormArgs): boolean {
  return a.training || a.runningMean === null || a.runningVar === null;
}

function statsDtype(d: DType): DType {
  return d === "float64" ? "float64" : "float32";
}

function channels(op: string, shape: readonly number[]): number {
  if (shape.length < 2)
    throw new OpArgError(op, "input", `expected at least 2 dims (N, C, …), got [${shape.join(", ")}]`);
  return shape[1];
}

/**
 * The three-result forms: (out, save_mean, save_invstd). In eval mode PyTorch's CPU kernels (and export's meta on
 * the CPU) return empty [0] stats; CUDA's return [C], which the LibTorch fallback slices to these types
 * (backends/torch/batch-norm-stats.ts).
 */
function inferThree(op: string, a: BatchNormArgs, typeOf: TypeOf): TensorType[] {
  const x = typeOf(a.input);
  const c = channels(op, x.shape);
  const s = usesBatchStats(a) ? [c] : [0];
  return [tt(x.dtype, x.shape), tt(statsDtype(x.dtype), s), tt(statsDtype(x.dtype), s)];
}

export function batchNorm(op: string, a: BatchNormArgs, valueAt: ValueOf): Tensor[] {
  const xt = valueAt(a.input);
  const x = f64(xt);
  const shape = xt.shape;
  const c = channels(op, shape);
  const n = shape[0];
  const plane = shape.slice(2).reduce((p, d) => p * d, 1);
  const vec = (name: string | null, fill: number) =>
    name === null ? new Float64Array(c).fill(fill) : f64(valueAt(name));
  const w = vec(a.weight, 1);
  const b = vec(a.bias, 0);
  const mean = new Float64Array(c);
  const invstd = new Float64Array(c);
  const batch = usesBatchStats(a);
  if (batch) {
    const count = n * plane;
    for (let ch = 0; ch < c; ch++) {
      let s = 0;
      for (let i = 0; i < n; i++) for (let j = 0, o = (i * c + ch) * plane; j < plane; j++) s += x[o + j];
      const m = s / count;
      let v = 0;
      for (let i = 0; i < n; i++)
        for (let j = 0, o = (i * c + ch) * plane; j < plane; j++) {
          const d = x[o + j] - m;
          v += d * d;
        }
      mean[ch] = m;
      invstd[ch] = 1 / Math.sqrt(v / count + a.eps);
    }
  } else {
    const rm = vec(a.runningMean, 0);
    const rv = vec(a.runningVar, 1);
    for (let ch = 0; ch < c; ch++) {
      mean[ch] = rm[ch];
      invstd[ch] = 1 / Math.sqrt(rv[ch] + a.eps);
    }
  }
  const out = new Float64Array(x.length);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const scale = invstd[ch] * w[ch];
      const shift = b[ch] - mean[ch] * scale;
      for (let j = 0, o = (i * c + ch) * plane; j < plane; j++) out[o + j] = x[o + j] * scale + shift;
    }
  }
  const sd = statsDtype(xt.dtype);
  const stats = batch
    ? [fromF64(sd, [c], mean), fromF64(sd, [c], invstd)]
    : [fromF64(sd, [0], []), fromF64(sd, [0], [])];
  return [fromF64(xt.dtype, shape, out), ...stats];
}

export const BATCHNORM_OPS = opTable(
  defineOp({
    name: "aten.batch_norm.default",
    schema:
      "Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean, Tensor? running_var, bool training, float momentum, float eps, bool cudnn_enabled",
    read: (r): BatchNormArgs => ({
      input: r.tensor("input"),
      weight: r.optTensor("weight"),
      bias: r.optTensor("bias"),
      eps: r.float("eps"),
      runningMean: r.optTensor("running_mean"),
      runningVar: r.optTensor("running_var"),
      training: r.bool("training"),
    }),
    infer: (a, typeOf) => [inferThree("aten.batch_norm.default", a, typeOf)[0]],
    evaluate: (a, valueAt) => [batchNorm("aten.batch_norm.default", a, valueAt)[0]],
  }),
  defineOp({
    name: "aten._native_batch_norm_legit_no_training.default",
    schema:
      "Tensor input, Tensor? weight, Tensor? bias, Tensor running_mean, Tensor running_var, float momentum, float eps",
    returns: 3,
    read: (r): BatchNormArgs => ({
      input: r.tensor("input"),
      weight: r.optTensor("weight"),
      bias: r.optTensor("bias"),
      eps: r.float("eps"),
      runningMean: r.tensor("running_mean"),
      runningVar: r.tensor("running_var"),
      training: false,
    }),
    infer: (a, typeOf) => inferThree("aten._native_batch_norm_legit_no_training.default", a, typeOf),
    evaluate: (a, valueAt) => batchNorm("aten._native_batch_norm_legit_no_training.default", a, valueAt),
  }),
  defineOp({
    name: "aten._native_batch_norm_legit.default",
    schema:
      "Tensor input, Tensor? weight, Tensor? bias, Tensor(a!) running_mean, Tensor(b!) running_var, bool training, float momentum, float eps",
    returns: 3,
    read: (r): BatchNormArgs => ({
      input: r.tensor("input"),
      weight: r.optTensor("weight"),
      bias: r.optTensor("bias"),
      eps: r.float("eps"),
      runningMean: r.tensor("running_mean"),
      runningVar: r.tensor("running_var"),
      training: r.bool("training"),
    }),
    infer: (a, typeOf) => inferThree("aten._native_batch_norm_legit.default", a, typeOf),
    evaluate: (a, valueAt) => batchNorm("aten._native_batch_norm_legit.default", a, valueAt),
  }),
  defineOp({
    name: "aten._native_batch_norm_legit.no_stats",
    schema: "Tensor input, Tensor? weight, Tensor? bias, bool training, float momentum, float eps",
    returns: 3,
    read: (r): BatchNormArgs => ({
      input: r.tensor("input"),
      weight: r.optTensor("weight"),
      bias: r.optTensor("bias"),
      eps: r.float("eps"),
      runningMean: null,
      runningVar: null,
      training: r.bool("training"),
    }),
    infer: (a, typeOf) => inferThree("aten._native_batch_norm_legit.no_stats", a, typeOf),
    evaluate: (a, valueAt) => batchNorm("aten._native_batch_norm_legit.no_stats", a, valueAt),
  }),
  defineOp({
    name: "aten.native_batch_norm.default",
    schema:
      "Tensor input, Tensor? weight, Tensor? bias, Tensor? running_mean, Tensor? running_var, bool training, float momentum, float eps",
    returns: 3,
    read: (r): BatchNormArgs => ({
      input: r.tensor("input"),
      weight: r.optTensor("weight"),
      bias: r.optTensor("bias"),
      eps: r.float("eps"),
      runningMean: r.optTensor("running_mean"),
      runningVar: r.optTensor("running_var"),
      training: r.bool("training"),
    }),
    infer: (a, typeOf) => inferThree("aten.native_batch_norm.default", a, typeOf),
    evaluate: (a, valueAt) => batchNorm("aten.native_batch_norm.default", a, valueAt),
  }),
);

import { type DType, isFloating } from "../ir/dtype.js";
import { numel, type Shape, type Tensor } from "../ir/tensor.js";
import { f64, fromF64, normDim, nums, reducedShape, splitAt, tt } from "./data.js";
import { type ArgReader, defineOp, OpArgError, opTable } from "./schema.js";

/**
 * Normalized, de-duplicated reduction dims; null means every dim, and so does [] except where `allowEmpty`
 * (any.dims/all.dims: ATen's allany_meta passes allow_empty_dims=true, so `dim=[]` reduces nothing).
 */
function reduceDims(op: string, rank: number, dims: readonly number[] | null, allowEmpty = false): number[] {
  if (dims === null || (dims.length === 0 && !allowEmpty)) return Array.from({ length: rank }, (_, i) => i);
  const ds = dims.map((d) => normDim(op, d, rank));
  if (new Set(ds).size !== ds.length)
    throw new OpArgError(op, "dim", `dim [${dims.join(", ")}] repeats a dim`);
  return rank === 0 ? [] : ds;
}

/** For each input element, the flat index of the output element it reduces into. */
function outputIndex(shape: Shape, dims: readonly number[]): { index: Int32Array; outN: number } {
  const n = numel(shape);
  const rank = shape.length;
  const ostride = new Array<number>(rank).fill(0);
  let s = 1;
  for (let d = rank - 1; d >= 0; d--) {
    if (!dims.includes(d)) {
      ostride[d] = s;
      s *= shape[d];
    }
  }
  const index = new Int32Array(n);
  const counter = new Array<number>(rank).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    index[i] = off;
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]++;
      off += ostride[d];
      if (counter[d] < shape[d]) break;
      off -= ostride[d] * counter[d];
      counter[d] = 0;
    }
  }
  return { index, outN: s };
}

type Kind = "sum" | "mean" | "prod" | "amax" | "amin" | "any" | "all";

function reduceValues(x: ArrayLike<number>, shape: Shape, dims: readonly number[], kind: Kind): Float64Array {
  const { index, outN } = outputIndex(shape, dims);
  const out = new Float64Array(outN);
  const n = x.length;
  switch (kind) {
    case "sum":
    case "mean":
      for (let i = 0; i < n; i++) out[index[i]] += x[i];
      if (kind === "mean") {
        const count = n / Math.max(outN, 1);
        for (let j = 0; j < outN; j++) out[j] /= count;
      }
      break;
    case "prod":
      out.fill(1);
      for (let i = 0; i < n; i++) out[index[i]] *= x[i];
      break;
    case "amax":
    case "amin": {
      const max = kind === "amax";
      out.fill(max ? -Infinity : Infinity);
      for (let i = 0; i < n; i++) {
        const v = x[i];
        const o = index[i];
        if (max ? v > out[o] : v < out[o]) out[o] = v;
        else if (Number.isNaN(v)) out[o] = v;
      }
      break;
    }
    case "any":
      for (let i = 0; i < n; i++) if (x[i] !== 0) out[index[i]] = 1;
      break;
    case "all":
      out.fill(1);
      for (let i = 0; i < n; i++) if (x[i] === 0) out[index[i]] = 0;
      break;
  }
  return out;
}

/** Σ(x - mean)² / (count - correction) per output element. */
function variance(
  x: ArrayLike<number>,
  shape: Shape,
  dims: readonly number[],
  correction: number,
): { v: Float64Array; mean: Float64Array } {
  const { index, outN } = outputIndex(shape, dims);
  const mean = new Float64Array(outN);
  const n = x.length;
  for (let i = 0; i < n; i++) mean[index[i]] += x[i];
  const count = n / Math.max(outN, 1);
  for (let j = 0; j < outN; j++) mean[j] /= count;
  const v = new Float64Array(outN);
  for (let i = 0; i < n; i++) {
    const d = x[i] - mean[index[i]];
    v[index[i]] += d * d;
  }
  const denom = Math.max(0, count - correction);
  for (let j = 0; j < outN; j++) v[j] /= denom;
  return { v, mean };
}

/** sum/prod/cumsum promote integers and bool to int64. */
function accDtype(d: DType, dtype: DType | null): DType {
  return dtype ?? (isFloating(d) ? d : "int64");
}

export interface ReduceArgs {
  readonly self: string;
  readonly dim: number[] | null;
  readonly keepdim: boolean;
  readonly dtype: DType | null;
  /** `dim=[]` reduces no dim (any.dims/all.dims), where other reductions read it as every dim. */
  readonly allowEmptyDims?: boolean;
}

function reduceOp<const N extends string>(
  name: N,
  schema: string,
  kind: Kind,
  read: (r: ArgReader) => ReduceArgs,
) {
  const outDtype = (d: DType, a: ReduceArgs): DType =>
    kind === "sum" || kind === "prod"
      ? accDtype(d, a.dtype)
      : kind === "any" || kind === "all"
        ? "bool"
        : (a.dtype ?? d);
  return defineOp({
    name,
    schema,
    read,
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      if (kind === "mean" && !isFloating(a.dtype ?? t.dtype))
        throw new OpArgError(name, "self", `mean needs a floating dtype, got ${t.dtype}`);
      return [
        tt(
          outDtype(t.dtype, a),
          reducedShape(t.shape, reduceDims(name, t.shape.length, a.dim, a.allowEmptyDims), a.keepdim),
        ),
      ];
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      const dims = reduceDims(name, t.shape.length, a.dim, a.allowEmptyDims);
      if ((kind === "amax" || kind === "amin") && dims.some((d) => t.shape[d] === 0))
        throw new OpArgError(name, "self", "reduction over an empty dim");
      return [
        fromF64(
          outDtype(t.dtype, a),
          reducedShape(t.shape, dims, a.keepdim),
          reduceValues(nums(t), t.shape, dims, kind),
        ),
      ];
    },
  });
}

const all = (r: ArgReader): ReduceArgs => ({
  self: r.tensor("self"),
  dim: null,
  keepdim: false,
  dtype: r.has("dtype") ? r.optDtype("dtype") : null,
});
const listDims = (r: ArgReader): ReduceArgs => ({
  self: r.tensor("self"),
  dim: r.optInts("dim"),
  keepdim: r.bool("keepdim"),
  dtype: r.has("dtype") ? r.optDtype("dtype") : null,
});
/** any.dims/all.dims: `dim=None` reduces every dim, `dim=[]` none (allow_empty_dims in ATen's allany_meta). */
const allAnyDims = (r: ArgReader): ReduceArgs => ({ ...listDims(r), allowEmptyDims: true });
const oneDim = (r: ArgReader): ReduceArgs => ({
  self: r.tensor("self"),
  dim: [r.int("dim")],
  keepdim: r.bool("keepdim"),
  dtype: r.has("dtype") ? r.optDtype("dtype") : null,
});

export interface DimArgs {
  readonly self: string;
  readonly dim: number | null;
  readonly keepdim: boolean;
}

/** max/min over one dim with the index of the first extreme (NaN counts as the extreme, as in PyTorch). */
function argExtreme(
  t: Tensor,
  dim: number | null,
  max: boolean,
): { values: Float64Array; indices: Float64Array } {
  const x = nums(t);
  const [outer, len, inner] = dim === null ? [1, x.length, 1] : splitAt(t.shape, dim);
  const values = new Float64Array(outer * inner);
  const indices = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let best = x[o * len * inner + i];
      let bi = 0;
      for (let k = 1; k < len && !Number.isNaN(best); k++) {
        const v = x[(o * len + k) * inner + i];
        if ((max ? v > best : v < best) || Number.isNaN(v)) {
          best = v;
          bi = k;
        }
      }
      values[o * inner + i] = best;
      indices[o * inner + i] = bi;
    }
  }
  return { values, indices };
}

function dimShape(
  op: string,
  shape: Shape,
  dim: number | null,
  keepdim: boolean,
): { d: number | null; out: number[] } {
  if (dim === null) return { d: null, out: keepdim ? shape.map(() => 1) : [] };
  const d = normDim(op, dim, shape.length);
  if (shape.length > 0 && shape[d] === 0) throw new OpArgError(op, "dim", "reduction over an empty dim");
  return {
    d: shape.length === 0 ? null : d,
    out: reducedShape(shape, shape.length === 0 ? [] : [d], keepdim),
  };
}

function maxDim<const N extends string>(name: N, max: boolean) {
  return defineOp({
    name,
    schema: "Tensor self, int dim, bool keepdim=False",
    returns: 2,
    read: (r): DimArgs => ({ self: r.tensor("self"), dim: r.int("dim"), keepdim: r.bool("keepdim") }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      const { out } = dimShape(name, t.shape, a.dim, a.keepdim);
      return [tt(t.dtype, out), tt("int64", out)];
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      const { d, out } = dimShape(name, t.shape, a.dim, a.keepdim);
      const r = argExtreme(t, d, max);
      return [fromF64(t.dtype, out, r.values), fromF64("int64", out, r.indices)];
    },
  });
}

function argOp<const N extends string>(name: N, max: boolean) {
  return defineOp({
    name,
    schema: "Tensor self, int? dim=None, bool keepdim=False",
    read: (r): DimArgs => ({ self: r.tensor("self"), dim: r.optInt("dim"), keepdim: r.bool("keepdim") }),
    infer: (a, typeOf) => [tt("int64", dimShape(name, typeOf(a.self).shape, a.dim, a.keepdim).out)],
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      const { d, out } = dimShape(name, t.shape, a.dim, a.keepdim);
      return [fromF64("int64", out, argExtreme(t, d, max).indices)];
    },
  });
}

export interface VarArgs {
  readonly self: string;
  readonly dim: number[] | null;
  readonly correction: number;
  readonly keepdim: boolean;
}

function varOp<const N extends string>(
  name: N,
  schema: string,
  what: "var" | "std" | "var_mean",
  read: (r: ArgReader) => VarArgs,
) {
  return defineOp({
    name,
    schema,
    returns: what === "var_mean" ? 2 : 1,
    read,
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      const out = tt(t.dtype, reducedShape(t.shape, reduceDims(name, t.shape.length, a.dim), a.keepdim));
      return what === "var_mean" ? [out, out] : [out];
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      const dims = reduceDims(name, t.shape.length, a.dim);
      const shape = reducedShape(t.shape, dims, a.keepdim);
      const { v, mean } = variance(f64(t), t.shape, dims, a.correction);
      if (what === "std") for (let i = 0; i < v.length; i++) v[i] = Math.sqrt(v[i]);
      const out = fromF64(t.dtype, shape, v);
      return what === "var_mean" ? [out, fromF64(t.dtype, shape, mean)] : [out];
    },
  });
}

const correction = (r: ArgReader): VarArgs => ({
  self: r.tensor("self"),
  dim: r.optInts("dim"),
  correction: r.optScalar("correction")?.value ?? 1,
  keepdim: r.bool("keepdim"),
});
const unbiasedDim = (r: ArgReader): VarArgs => ({
  self: r.tensor("self"),
  dim: r.optInts("dim"),
  correction: r.bool("unbiased") ? 1 : 0,
  keepdim: r.bool("keepdim"),
});
const unbiasedAll = (r: ArgReader): VarArgs => ({
  self: r.tensor("self"),
  dim: null,
  correction: r.bool("unbiased") ? 1 : 0,
  keepdim: false,
});

const CORRECTION = "Tensor self, int[1]? dim=None, *, Scalar? correction=None, bool keepdim=False";
const UNBIASED_DIM = "Tensor self, int[1]? dim, bool unbiased=True, bool keepdim=False";

export const REDUCE_OPS = opTable(
  reduceOp("aten.sum.default", "Tensor self, *, ScalarType? dtype=None", "sum", all),
  reduceOp(
    "aten.sum.dim_IntList",
    "Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None",
    "sum",
    listDims,
  ),
  reduceOp("aten.mean.default", "Tensor self, *, ScalarType? dtype=None", "mean", all),
  reduceOp(
    "aten.mean.dim",
    "Tensor self, int[1]? dim, bool keepdim=False, *, ScalarType? dtype=None",
    "mean",
    listDims,
  ),
  reduceOp("aten.prod.default", "Tensor self, *, ScalarType? dtype=None", "prod", all),
  reduceOp(
    "aten.prod.dim_int",
    "Tensor self, int dim, bool keepdim=False, *, ScalarType? dtype=None",
    "prod",
    oneDim,
  ),
  reduceOp("aten.amax.default", "Tensor self, int[1] dim=[], bool keepdim=False", "amax", listDims),
  reduceOp("aten.amin.default", "Tensor self, int[1] dim=[], bool keepdim=False", "amin", listDims),
  reduceOp("aten.max.default", "Tensor self", "amax", all),
  reduceOp("aten.min.default", "Tensor self", "amin", all),
  reduceOp("aten.any.default", "Tensor self", "any", all),
  reduceOp("aten.any.dim", "Tensor self, int dim, bool keepdim=False", "any", oneDim),
  reduceOp("aten.any.dims", "Tensor self, int[]? dim=None, bool keepdim=False", "any", allAnyDims),
  reduceOp("aten.all.default", "Tensor self", "all", all),
  reduceOp("aten.all.dim", "Tensor self, int dim, bool keepdim=False", "all", oneDim),
  reduceOp("aten.all.dims", "Tensor self, int[]? dim=None, bool keepdim=False", "all", allAnyDims),
  maxDim("aten.max.dim", true),
  maxDim("aten.min.dim", false),
  argOp("aten.argmax.default", true),
  argOp("aten.argmin.default", false),
  varOp("aten.var.correction", CORRECTION, "var", correction),
  varOp("aten.var.dim", UNBIASED_DIM, "var", unbiasedDim),
  varOp("aten.var.default", "Tensor self, bool unbiased=True", "var", unbiasedAll),
  varOp("aten.std.correction", CORRECTION, "std", correction),
  varOp("aten.std.dim", UNBIASED_DIM, "std", unbiasedDim),
  varOp("aten.std.default", "Tensor self, bool unbiased=True", "std", unbiasedAll),
  varOp("aten.var_mean.correction", CORRECTION, "var_mean", correction),
  varOp("aten.var_mean.dim", UNBIASED_DIM, "var_mean", unbiasedDim),
  defineOp({
    name: "aten.cumsum.default",
    schema: "Tensor self, int dim, *, ScalarType? dtype=None",
    read: (r) => ({ self: r.tensor("self"), dim: r.int("dim"), dtype: r.optDtype("dtype") }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      normDim("aten.cumsum.default", a.dim, t.shape.length);
      return [tt(accDtype(t.dtype, a.dtype), t.shape)];
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      const d = normDim("aten.cumsum.default", a.dim, t.shape.length);
      const x = nums(t);
      const [outer, len, inner] = splitAt(t.shape, d);
      const out = new Float64Array(x.length);
      for (let o = 0; o < outer; o++)
        for (let i = 0; i < inner; i++) {
          let s = 0;
          for (let k = 0; k < len; k++) {
            const j = (o * len + k) * inner + i;
            s += x[j];
            out[j] = s;
          }
        }
      return [fromF64(accDtype(t.dtype, a.dtype), t.shape, out)];
    },
  }),
);

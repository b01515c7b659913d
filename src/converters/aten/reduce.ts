import type { DType } from "../../ir/dtype.js";
import { tensorFromNumbers } from "../../ir/tensor.js";
import type { NetworkBuilder } from "../../network/builder.js";
import type { ReduceOp } from "../../network/layers/reduce.js";
import { binary, unary } from "../impl/elementwise.js";
import { matmul } from "../impl/matmul.js";
import { cast, fill, normalizeDim, permute, reshape, scalar } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter, SUPPORTED } from "../types.js";
import { needsFloat, outType, reductionAxes } from "./common.js";

interface Reduce {
  readonly self: string;
  readonly dim: readonly number[] | null;
  readonly keepdim: boolean;
  readonly dtype: DType | null;
  /** any.dims/all.dims: `dim=[]` reduces nothing (src/ops/reduce.ts). */
  readonly allowEmptyDims?: boolean;
}

/** A reduce layer over `axes`; with no axes (a 0-d input) the input is the result. */
export function reduceAxes(
  net: NetworkBuilder,
  op: ReduceOp,
  x: string,
  axes: readonly number[],
  keepDims: boolean,
): string {
  if (axes.length === 0) return x;
  return net.add({ type: "reduce", op, inputs: [x], axes: [...axes], keepDims }, op);
}

/** The input is cast to the result dtype first (sum of ints accumulates in int64, any/all in bool). */
function reduce(op: ReduceOp): ConverterSpec<Reduce> {
  return {
    name: op,
    supports: (node, _a, ctx) => (op === "mean" ? needsFloat(outType(node, ctx).dtype, "result") : SUPPORTED),
    convert: (node, a, net) => {
      const out = outType(node, net).dtype;
      const computeIn = op === "any" || op === "all" ? "bool" : out;
      const x = cast(net.net, net.input(a.self), computeIn);
      const axes =
        a.allowEmptyDims && a.dim?.length === 0 ? [] : reductionAxes(a.dim, net.typeOf(a.self).shape.length);
      return [cast(net.net, reduceAxes(net.net, op, x, axes, a.keepdim), out)];
    },
  };
}

interface DimArgs {
  readonly self: string;
  readonly dim: number | null;
  readonly keepdim: boolean;
}

/** argmax/argmin; without a dim they index the flattened tensor. */
function argExtreme(
  net: NetworkBuilder,
  op: "argmax" | "argmin",
  x: string,
  dim: number | null,
  keepdim: boolean,
): string {
  const shape = net.typeOf(x).shape;
  if (shape.length === 0) return fill(net, "int64", [], 0);
  if (dim === null) {
    const flat = reshape(net, x, [shape.reduce((p, d) => p * d, 1)]);
    const r = reduceAxes(net, op, flat, [0], false);
    return keepdim
      ? reshape(
          net,
          r,
          shape.map(() => 1),
        )
      : r;
  }
  return reduceAxes(net, op, x, [normalizeDim(dim, shape.length)], keepdim);
}

function arg(op: "argmax" | "argmin"): ConverterSpec<DimArgs> {
  return {
    name: op,
    supports: () => SUPPORTED,
    convert: (_node, a, net) => [argExtreme(net.net, op, net.input(a.self), a.dim, a.keepdim)],
  };
}

/** max.dim / min.dim: values and the index of the first extreme. */
function extremeWithIndex(max: boolean): ConverterSpec<DimArgs> {
  return {
    name: max ? "max-with-index" : "min-with-index",
    supports: () => SUPPORTED,
    convert: (_node, a, net) => {
      const x = net.input(a.self);
      const rank = net.typeOf(a.self).shape.length;
      const axes = rank === 0 ? [] : [normalizeDim(a.dim ?? 0, rank)];
      return [
        reduceAxes(net.net, max ? "max" : "min", x, axes, a.keepdim),
        argExtreme(net.net, max ? "argmax" : "argmin", x, rank === 0 ? null : a.dim, a.keepdim),
      ];
    },
  };
}

interface VarArgs {
  readonly self: string;
  readonly dim: readonly number[] | null;
  readonly correction: number;
  readonly keepdim: boolean;
}

/** Two-pass variance: Σ(x − mean)² / (N − correction); std is its square root; var_mean adds the mean. */
function variance(what: "var" | "std" | "var_mean"): ConverterSpec<VarArgs> {
  return {
    name: what,
    supports: (_node, a, ctx) => needsFloat(ctx.typeOf(a.self).dtype),
    convert: (_node, a, net) => {
      const x = net.input(a.self);
      const t = net.typeOf(a.self);
      const axes = reductionAxes(a.dim, t.shape.length);
      const n = axes.reduce((p, d) => p * t.shape[d], 1);
      const mean = reduceAxes(net.net, "mean", x, axes, true);
      const diff = binary(net.net, "sub", x, mean);
      const ss = reduceAxes(net.net, "sum", binary(net.net, "mul", diff, diff), axes, a.keepdim);
      const v = binary(net.net, "div", ss, scalar(net.net, t.dtype, Math.max(n - a.correction, 0)));
      if (what === "std") return [unary(net.net, "sqrt", v)];
      if (what === "var") return [v];
      return [v, a.keepdim ? mean : reduceAxes(net.net, "mean", x, axes, false)];
    },
  };
}

interface Cumsum {
  readonly self: string;
  readonly dim: number;
  readonly dtype: DType | null;
}

/**
 * cumsum as a matmul with an upper-triangular matrix of ones along the scanned axis: exact for integers
 * and the same summation order as a sequential scan.
 */
const cumsum: ConverterSpec<Cumsum> = {
  name: "cumsum-matmul",
  notes: "matmul with a triangular constant; fine for the short axes of vision and NLP models",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const out = outType(node, net).dtype;
    const x = cast(net.net, net.input(a.self), out);
    const shape = net.typeOf(a.self).shape;
    if (shape.length === 0) return [x];
    const d = normalizeDim(a.dim, shape.length);
    const n = shape[d];
    const perm = [...shape.keys()].filter((i) => i !== d).concat(d);
    const inv = perm.map((_, i) => perm.indexOf(i));
    const tri = new Float64Array(n * n);
    for (let k = 0; k < n; k++) for (let j = k; j < n; j++) tri[k * n + j] = 1;
    const u = net.net.constant(tensorFromNumbers(out, [n, n], tri));
    const y = matmul(net.net, permute(net.net, x, perm), u);
    return [permute(net.net, y, inv)];
  },
};

export const REDUCE_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.sum.default", reduce("sum")),
  converter("aten.sum.dim_IntList", reduce("sum")),
  converter("aten.mean.default", reduce("mean")),
  converter("aten.mean.dim", reduce("mean")),
  converter("aten.prod.default", reduce("prod")),
  converter("aten.prod.dim_int", reduce("prod")),
  converter("aten.amax.default", reduce("max")),
  converter("aten.amin.default", reduce("min")),
  converter("aten.max.default", reduce("max")),
  converter("aten.min.default", reduce("min")),
  converter("aten.any.default", reduce("any")),
  converter("aten.any.dim", reduce("any")),
  converter("aten.any.dims", reduce("any")),
  converter("aten.all.default", reduce("all")),
  converter("aten.all.dim", reduce("all")),
  converter("aten.all.dims", reduce("all")),
  converter("aten.max.dim", extremeWithIndex(true)),
  converter("aten.min.dim", extremeWithIndex(false)),
  converter("aten.argmax.default", arg("argmax")),
  converter("aten.argmin.default", arg("argmin")),
  converter("aten.var.correction", variance("var")),
  converter("aten.var.dim", variance("var")),
  converter("aten.var.default", variance("var")),
  converter("aten.std.correction", variance("std")),
  converter("aten.std.dim", variance("std")),
  converter("aten.std.default", variance("std")),
  converter("aten.var_mean.correction", variance("var_mean")),
  converter("aten.var_mean.dim", variance("var_mean")),
  converter("aten.cumsum.default", cumsum),
];

// How each composite op (composite.ts) is computed from simpler ones, written once against a small emitter
// interface: the lowering pass implements it with aten nodes (src/passes/decompositions/composite.ts) and the
// converters with network layers (src/converters/aten/composite.ts), so both paths compute the same thing.
import { type DType, isFloating } from "../ir/dtype.js";
import type { Arg } from "../ir/graph.js";
import { numel, type Shape, stridesOf, type Tensor, tensorFromNumbers } from "../ir/tensor.js";
import {
  type AsStridedArgs,
  asStridedIndex,
  type EinsumSpec,
  type RepeatInterleaveArgs,
  type ResizeKind,
  repeatInterleaveGeometry,
  resizeWeights,
} from "./composite.js";

/** The operations a lowering may emit; `V` is a value handle (an aten value name or a layer output). */
export interface Emitter<V> {
  shape(v: V): Shape;
  dtype(v: V): DType;
  permute(v: V, perm: readonly number[]): V;
  reshape(v: V, shape: readonly number[]): V;
  expand(v: V, shape: readonly number[]): V;
  /** [B, M, K] · [B, K, N] → [B, M, N]. */
  bmm(a: V, b: V): V;
  reduce(op: "sum" | "max" | "min", v: V, axes: readonly number[], keepdim: boolean): V;
  unary(op: "abs" | "sqrt", v: V): V;
  binary(op: "add" | "mul" | "div", a: V, b: V): V;
  /** v · c, v ** c (c a number, v keeps its dtype). */
  scalar(op: "mul" | "pow", v: V, c: number): V;
  /** 1 where v ≠ 0, else 0, in `dtype`. */
  nonzero(v: V, dtype: DType): V;
  cast(v: V, dtype: DType): V;
  constant(t: Tensor): V;
  /** x · Wᵀ over the last axis with a constant W [out, in]. */
  linear(x: V, w: Tensor): V;
  /** Elements of the flattened v at the given constant int64 positions, shaped `shape`. */
  take(v: V, positions: readonly number[], shape: readonly number[]): V;
  /** where(mask, a, b) with a constant bool mask. */
  choose(mask: Tensor, a: V, b: V): V;
}

/** A number operand next to a tensor of `dtype`: an int literal for integral tensors (keeps their dtype). */
export function numberFor(dtype: DType, c: number): Arg {
  return isFloating(dtype) || !Number.isInteger(c) ? { kind: "float", value: c } : { kind: "int", value: c };
}

const identityPerm = (p: readonly number[]) => p.every((x, i) => x === i);

function permuteIfNeeded<V>(e: Emitter<V>, v: V, perm: readonly number[]): V {
  return identityPerm(perm) ? v : e.permute(v, perm);
}

function reshapeIfNeeded<V>(e: Emitter<V>, v: V, shape: readonly number[]): V {
  return e.shape(v).join() === shape.join() ? v : e.reshape(v, shape);
}

// ------------------------------------------------------------------------------------------ addcmul / addcdiv

/** self + (value·t1)·t2, or self + (value·t1)/t2: ATen's CPU kernels evaluate left to right. */
export function lowerAddc<V>(e: Emitter<V>, self: V, t1: V, t2: V, value: number, divide: boolean): V {
  const scaled = value === 1 ? t1 : e.scalar("mul", t1, value);
  return e.binary("add", self, e.binary(divide ? "div" : "mul", scaled, t2));
}

// ------------------------------------------------------------------------------------------ linalg_vector_norm

export function lowerVectorNorm<V>(
  e: Emitter<V>,
  x0: V,
  ord: number,
  axes: readonly number[],
  keepdim: boolean,
  dtype: DType | null,
): V {
  const x = dtype !== null && dtype !== e.dtype(x0) ? e.cast(x0, dtype) : x0;
  if (ord === 0) return e.reduce("sum", e.nonzero(x, e.dtype(x)), axes, keepdim);
  if (ord === 2) return e.unary("sqrt", e.reduce("sum", e.binary("mul", x, x), axes, keepdim));
  const a = e.unary("abs", x);
  if (ord === 1) return e.reduce("sum", a, axes, keepdim);
  if (ord === Number.POSITIVE_INFINITY) return e.reduce("max", a, axes, keepdim);
  if (ord === Number.NEGATIVE_INFINITY) return e.reduce("min", a, axes, keepdim);
  return e.scalar("pow", e.reduce("sum", e.scalar("pow", a, ord), axes, keepdim), 1 / ord);
}

// ------------------------------------------------------------------------------------------ einsum

interface Term<V> {
  v: V;
  labels: string[];
}

/** Sums the axes of `t` whose labels are not in `keep`. */
function sumOut<V>(e: Emitter<V>, t: Term<V>, keep: ReadonlySet<string>): Term<V> {
  const axes = t.labels.flatMap((l, i) => (keep.has(l) ? [] : [i]));
  if (axes.length === 0) return t;
  return { v: e.reduce("sum", t.v, axes, false), labels: t.labels.filter((l) => keep.has(l)) };
}

/** A·B over their shared labels: batch (kept) labels, contracted labels and the rest, as one bmm. */
function contract<V>(
  e: Emitter<V>,
  a: Term<V>,
  b: Term<V>,
  keep: ReadonlySet<string>,
  size: ReadonlyMap<string, number>,
): Term<V> {
  const inB = new Set(b.labels);
  const inA = new Set(a.labels);
  const batch = a.labels.filter((l) => inB.has(l) && keep.has(l));
  const summed = a.labels.filter((l) => inB.has(l) && !keep.has(l));
  const aOnly = a.labels.filter((l) => !inB.has(l));
  const bOnly = b.labels.filter((l) => !inA.has(l));
  const n = (ls: readonly string[]) => ls.reduce((p, l) => p * (size.get(l) as number), 1);
  const at = (t: Term<V>, ls: readonly string[]) => ls.map((l) => t.labels.indexOf(l));
  const A = reshapeIfNeeded(e, permuteIfNeeded(e, a.v, at(a, [...batch, ...aOnly, ...summed])), [
    n(batch),
    n(aOnly),
    n(summed),
  ]);
  const B = reshapeIfNeeded(e, permuteIfNeeded(e, b.v, at(b, [...batch, ...summed, ...bOnly])), [
    n(batch),
    n(summed),
    n(bOnly),
  ]);
  const labels = [...batch, ...aOnly, ...bOnly];
  return {
    v: reshapeIfNeeded(
      e,
      e.bmm(A, B),
      labels.map((l) => size.get(l) as number),
    ),
    labels,
  };
}

/**
 * A label repeated within one operand (`ii`, `bii`) reads its diagonal: a gather of constant positions that
 * keeps each label once, in first-occurrence order.
 */
function diagonal<V>(e: Emitter<V>, t: Term<V>, size: ReadonlyMap<string, number>): Term<V> {
  const unique = [...new Set(t.labels)];
  if (unique.length === t.labels.length) return t;
  const dims = unique.map((l) => size.get(l) as number);
  const shape = t.labels.map((l) => size.get(l) as number);
  const strides = stridesOf(shape);
  const positions: number[] = [];
  const coord = new Array<number>(unique.length).fill(0);
  for (let k = 0; k < numel(dims); k++) {
    positions.push(t.labels.reduce((o, l, i) => o + coord[unique.indexOf(l)] * strides[i], 0));
    for (let a = unique.length - 1; a >= 0; a--) {
      if (++coord[a] < dims[a]) break;
      coord[a] = 0;
    }
  }
  return { v: e.take(t.v, positions, dims), labels: unique };
}

/**
 * einsum as permutes, views, sums and bmm (operands contracted left to right); diagonals as constant gathers.
 */
export function lowerEinsum<V>(
  e: Emitter<V>,
  spec: EinsumSpec,
  size: ReadonlyMap<string, number>,
  operands: readonly V[],
): V {
  let terms: Term<V>[] = operands.map((v, i) => {
    const labels = [...spec.inputs[i]];
    const full = labels.map((l) => size.get(l) as number);
    // size-1 dims broadcast against the label's size
    const v2 = e.shape(v).join() === full.join() ? v : e.expand(v, full);
    return diagonal(e, { v: v2, labels }, size);
  });
  const out = new Set(spec.output);
  const neededAfter = (k: number) => {
    const s = new Set(out);
    for (const t of terms.slice(k)) for (const l of t.labels) s.add(l);
    return s;
  };
  // labels that only one operand has and the output lacks are summed first
  terms = terms.map((t, i) => {
    const others = new Set(out);
    terms.forEach((u, j) => {
      if (j !== i) for (const l of u.labels) others.add(l);
    });
    return sumOut(e, t, others);
  });
  let acc = terms[0];
  for (let k = 1; k < terms.length; k++) acc = contract(e, acc, terms[k], neededAfter(k + 1), size);
  acc = sumOut(e, acc, out);
  return permuteIfNeeded(
    e,
    acc.v,
    spec.output.map((l) => acc.labels.indexOf(l)),
  );
}

// ------------------------------------------------------------------------------------------ as_strided

/**
 * Ops whose result PyTorch stores with non-contiguous strides (a view of its input's memory). as_strided reads
 * memory, so over such a result it reads the *input's* storage, which torchc's dense values do not model:
 * the lowering and the converter leave that case to LibTorch, which sees the same strided view.
 */
export const STRIDED_VIEW_OPS: ReadonlySet<string> = new Set([
  "aten.permute.default",
  "aten.transpose.int",
  "aten.swapaxes.default",
  "aten.swapdims.default",
  "aten.t.default",
  "aten.expand.default",
  "aten.slice.Tensor",
  "aten.select.int",
  "aten.narrow.default",
  "aten.diagonal.default",
  "aten.unfold.default",
  "aten.as_strided.default",
  "aten.split.Tensor",
  "aten.split_with_sizes.default",
  "aten.chunk.default",
  "aten.unbind.int",
]);

/**
 * as_strided over a contiguous input: a view when (size, stride, offset) are the contiguous strides of `size`
 * at offset 0, a broadcast when the only difference is stride-0 axes, else a gather of constant positions.
 */
export function lowerAsStrided<V>(e: Emitter<V>, x: V, a: AsStridedArgs): V {
  const n = numel(e.shape(x));
  const cs = stridesOf(a.size);
  const sameStride = (i: number) => a.size[i] === 1 || a.stride[i] === cs[i];
  if (a.storageOffset === 0 && numel(a.size) === n && a.size.every((_, i) => sameStride(i)))
    return reshapeIfNeeded(e, x, a.size);
  // stride-0 axes over a contiguous rest: view the rest, then broadcast
  const kept = a.size.map((d, i) => (a.stride[i] === 0 ? 1 : d));
  const ks = stridesOf(kept);
  if (
    a.storageOffset === 0 &&
    numel(kept) === n &&
    a.size.some((d, i) => a.stride[i] === 0 && d !== 1) &&
    kept.every((d, i) => d === 1 || a.stride[i] === ks[i])
  )
    return e.expand(reshapeIfNeeded(e, x, kept), a.size);
  return e.take(x, Array.from(asStridedIndex(a, n)), a.size);
}

// ------------------------------------------------------------------------------------------ scatter into a view

/**
 * `self` with the elements at flat `positions` (row-major) replaced by `src`'s, in src order: the update of a
 * slice_scatter / select_scatter, and of a write through a view. where(M, take(src, P), self), with M marking
 * the written positions and P, for each of them, the src element written there.
 */
export function lowerScatter<V>(e: Emitter<V>, self: V, src: V, positions: ArrayLike<number>): V {
  if (positions.length === 0) return self; // an empty slice writes nothing
  const shape = e.shape(self);
  const n = numel(shape);
  const mask = new Float64Array(n);
  const from = new Array<number>(n).fill(0);
  for (let k = 0; k < positions.length; k++) {
    mask[positions[k]] = 1;
    from[positions[k]] = k;
  }
  const s = e.dtype(src) === e.dtype(self) ? src : e.cast(src, e.dtype(self));
  return e.choose(tensorFromNumbers("bool", shape, mask), e.take(s, from, shape), self);
}

// ------------------------------------------------------------------------------------------ antialiased resize

/** The separable resize as two products with constant weight matrices: over W, then over H. */
export function lowerAaResize<V>(
  e: Emitter<V>,
  x: V,
  kind: ResizeKind,
  out: readonly number[],
  scale: readonly number[],
  alignCorners = false,
): V {
  const [, , H, W] = e.shape(x);
  const dtype = e.dtype(x);
  const ww = tensorFromNumbers(dtype, [out[1], W], resizeWeights(kind, W, out[1], scale[1], alignCorners));
  const wh = tensorFromNumbers(dtype, [out[0], H], resizeWeights(kind, H, out[0], scale[0], alignCorners));
  const y = e.linear(x, ww); // [N, C, H, outW]
  const t = e.permute(y, [0, 1, 3, 2]); // [N, C, outW, H]
  return e.permute(e.linear(t, wh), [0, 1, 3, 2]); // [N, C, outH, outW]
}

// ------------------------------------------------------------------------------------------ repeat_interleave

/** repeat_interleave(x, r, dim): a new axis of size r after dim, broadcast, then merged into dim. */
export function lowerRepeatInterleave<V>(e: Emitter<V>, x: V, a: RepeatInterleaveArgs): V {
  const { src, axis, out } = repeatInterleaveGeometry(a, e.shape(x));
  const flat = reshapeIfNeeded(e, x, src);
  const split = [...src.slice(0, axis + 1), 1, ...src.slice(axis + 1)];
  const wide = [...src.slice(0, axis + 1), a.repeats, ...src.slice(axis + 1)];
  return e.reshape(e.expand(e.reshape(flat, split), wide), out);
}

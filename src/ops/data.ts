import { type DType, isFloating, promoteTypes } from "../ir/dtype.js";
import type { TensorType } from "../ir/graph.js";
import { numberToBfloat16Bits, numberToFloat16Bits } from "../ir/half.js";
import { allocData, numel, type Shape, type Tensor, toFloat64Array } from "../ir/tensor.js";
import { isScalarOperand, OpArgError, type Operand, type ScalarValue } from "./schema.js";
import type { TypeOf, ValueOf } from "./types.js";

/**
 * Elements as JS numbers without a copy where the storage already holds plain numbers; int64 and the
 * half types are converted (int64 exactly below 2^53).
 */
export function nums(t: Tensor): ArrayLike<number> {
  switch (t.dtype) {
    case "int64":
    case "float16":
    case "bfloat16":
      return toFloat64Array(t);
    default:
      return t.data as Float32Array;
  }
}

/** Elements as a Float64Array (a fresh copy unless the tensor is float64). */
export function f64(t: Tensor): Float64Array {
  switch (t.dtype) {
    case "float64":
      return t.data as Float64Array;
    case "int64":
    case "float16":
    case "bfloat16":
      return toFloat64Array(t);
    default:
      // The typed-array constructor converts natively, far faster than an element loop shared by every dtype.
      return new Float64Array(t.data as Float32Array);
  }
}

/** Builds a tensor from computed numbers, rounding to the dtype (ints truncate, non-finite ints become 0). */
export function fromF64(dtype: DType, shape: Shape, values: ArrayLike<number>): Tensor {
  const n = values.length;
  const data = allocData(dtype, n);
  switch (dtype) {
    case "float32":
    case "float64":
      (data as Float32Array).set(values);
      break;
    case "float16":
      for (let i = 0; i < n; i++) (data as Uint16Array)[i] = numberToFloat16Bits(values[i]);
      break;
    case "bfloat16":
      for (let i = 0; i < n; i++) (data as Uint16Array)[i] = numberToBfloat16Bits(values[i]);
      break;
    case "int64":
      for (let i = 0; i < n; i++) {
        const v = values[i];
        (data as BigInt64Array)[i] = Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
      }
      break;
    case "bool":
      for (let i = 0; i < n; i++) (data as Uint8Array)[i] = values[i] !== 0 ? 1 : 0;
      break;
    default:
      for (let i = 0; i < n; i++) (data as Int32Array)[i] = Math.trunc(values[i]);
  }
  return { dtype, shape: [...shape], data };
}

export function makeTensor(dtype: DType, shape: Shape, data: Tensor["data"]): Tensor {
  return { dtype, shape: [...shape], data };
}

/** A same-dtype tensor whose elements are `src[index[i]]`; exact for every dtype (no number round trip). */
export function gather(t: Tensor, shape: Shape, index: ArrayLike<number>): Tensor {
  const n = index.length;
  const out = allocData(t.dtype, n);
  const src = t.data;
  if (src instanceof BigInt64Array) {
    const o = out as BigInt64Array;
    for (let i = 0; i < n; i++) o[i] = src[index[i]];
  } else {
    const o = out as Float32Array;
    const s = src as Float32Array;
    for (let i = 0; i < n; i++) o[i] = s[index[i]];
  }
  return { dtype: t.dtype, shape: [...shape], data: out };
}

/** A tensor sharing the data of `t` under another shape (data is never mutated, so sharing is safe). */
export function reshaped(t: Tensor, shape: Shape): Tensor {
  return { dtype: t.dtype, shape: [...shape], data: t.data };
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Wraps a possibly negative dim into [0, rank). */
export function normDim(op: string, dim: number, rank: number, arg = "dim"): number {
  const r = Math.max(rank, 1);
  if (dim < -r || dim >= r) throw new OpArgError(op, arg, `dim ${dim} out of range for a ${rank}-d tensor`);
  return dim < 0 ? dim + r : dim;
}

export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const j = rank - s.length + i;
      const d = s[i];
      if (d === out[j] || d === 1) continue;
      if (out[j] === 1) out[j] = d;
      else
        throw new OpArgError(
          op,
          "self",
          `shapes [${shapes.map((x) => x.join(", ")).join("] and [")}] do not broadcast`,
        );
    }
  }
  return out;
}

/** For each element of `outShape` (row-major), the flat index of the element of `inShape` broadcast to it. */
export function broadcastIndex(inShape: Shape, outShape: Shape): Int32Array {
  const n = numel(outShape);
  const rank = outShape.length;
  const idx = new Int32Array(n);
  if (n === 0) return idx;
  const bstride = new Array<number>(rank).fill(0);
  let s = 1;
  for (let i = inShape.length - 1; i >= 0; i--) {
    const j = rank - inShape.length + i;
    bstride[j] = inShape[i] === 1 ? 0 : s;
    s *= inShape[i];
  }
  const counter = new Array<number>(rank).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    idx[i] = off;
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]++;
      off += bstride[d];
      if (counter[d] < outShape[d]) break;
      off -= bstride[d] * counter[d];
      counter[d] = 0;
    }
  }
  return idx;
}

/** Elements of `t` broadcast to `outShape`, as numbers. */
export function expandNums(t: Tensor, outShape: Shape): ArrayLike<number> {
  const src = nums(t);
  const n = numel(outShape);
  if (src.length === n) return src;
  const out = new Float64Array(n);
  if (src.length === 1) return out.fill(src[0]);
  const idx = broadcastIndex(t.shape, outShape);
  for (let i = 0; i < n; i++) out[i] = src[idx[i]];
  return out;
}

// ---- dtype promotion with PyTorch's three priority classes: dimensioned tensors, 0-d tensors, numbers ----

type Cat = 0 | 1 | 2;
function category(d: DType): Cat {
  return d === "bool" ? 0 : isFloating(d) ? 2 : 1;
}

/** The dtype a Python number gets when it takes part in promotion. */
export function scalarDtype(s: ScalarValue): DType {
  return s.type === "float" ? "float32" : s.type === "int" ? "int64" : "bool";
}

function combine(higher: DType | null, lower: DType | null): DType | null {
  if (higher === null) return lower;
  if (lower === null) return higher;
  if (isFloating(higher)) return higher;
  if (higher === "bool" || category(lower) > category(higher)) return promoteTypes(higher, lower);
  return higher;
}

export interface OperandType {
  readonly dtype: DType;
  readonly shape: Shape;
  readonly wrapped: boolean;
}

export function resultType(...ops: OperandType[]): DType {
  let dim: DType | null = null;
  let zero: DType | null = null;
  let wrapped: DType | null = null;
  for (const o of ops) {
    if (o.wrapped) wrapped = wrapped === null ? o.dtype : promoteTypes(wrapped, o.dtype);
    else if (o.shape.length === 0) zero = zero === null ? o.dtype : promoteTypes(zero, o.dtype);
    else dim = dim === null ? o.dtype : promoteTypes(dim, o.dtype);
  }
  return combine(dim, combine(zero, wrapped)) ?? "float32";
}

export function operandType(o: Operand, typeOf: TypeOf): OperandType {
  if (isScalarOperand(o)) return { dtype: scalarDtype(o), shape: [], wrapped: true };
  const t = typeOf(o);
  return { dtype: t.dtype, shape: t.shape, wrapped: false };
}

export function operandTensor(o: Operand, valueAt: ValueOf): Tensor {
  if (!isScalarOperand(o)) return valueAt(o);
  const dtype = scalarDtype(o);
  // A float number keeps double precision while it takes part in arithmetic, as in PyTorch.
  return dtype === "float32" ? fromF64("float64", [], [o.value]) : fromF64(dtype, [], [o.value]);
}

/** Integer and bool results of ops that always produce floating point (div, sqrt, mean …) become float32. */
export function toFloating(d: DType): DType {
  return isFloating(d) ? d : "float32";
}

export function tt(dtype: DType, shape: Shape): TensorType {
  return { dtype, shape: [...shape] };
}

/** `keepdim`-aware shape of a reduction over `dims` (already normalized). */
export function reducedShape(shape: Shape, dims: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!dims.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

/** Sizes before, along and after `dim`: the (outer, len, inner) view of a contiguous tensor. */
export function splitAt(shape: Shape, dim: number): [number, number, number] {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < dim; i++) outer *= shape[i];
  for (let i = dim + 1; i < shape.length; i++) inner *= shape[i];
  return [outer, shape.length === 0 ? 1 : shape[dim], inner];
}

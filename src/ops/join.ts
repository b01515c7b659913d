import type { DType } from "../ir/dtype.js";
import type { TensorType } from "../ir/graph.js";
import { allocData, numel, type Shape, type Tensor } from "../ir/tensor.js";
import { fromF64, makeTensor, normDim, nums, resultType, sameShape, splitAt, tt } from "./data.js";
import { defineOp, OpArgError, opTable } from "./schema.js";
import type { TypeOf } from "./types.js";

/** PyTorch still accepts (and skips) legacy empty 1-d tensors in cat. */
const isLegacyEmpty = (s: Shape) => s.length === 1 && s[0] === 0;

function catType(
  op: string,
  types: readonly TensorType[],
  dim: number,
): { shape: number[]; dim: number; dtype: DType } {
  if (types.length === 0) throw new OpArgError(op, "tensors", "needs at least one tensor");
  const dtype = resultType(...types.map((t) => ({ dtype: t.dtype, shape: t.shape, wrapped: false })));
  const parts = types.filter((t) => !isLegacyEmpty(t.shape));
  if (parts.length === 0) return { shape: [0], dim: 0, dtype };
  const ref = parts[0].shape;
  const d = normDim(op, dim, ref.length);
  let total = 0;
  for (const t of parts) {
    if (t.shape.length !== ref.length || t.shape.some((s, i) => i !== d && s !== ref[i])) {
      throw new OpArgError(
        op,
        "tensors",
        `shapes [${ref.join(", ")}] and [${t.shape.join(", ")}] differ outside dim ${d}`,
      );
    }
    total += t.shape[d];
  }
  return { shape: ref.map((s, i) => (i === d ? total : s)), dim: d, dtype };
}

function cast(t: Tensor, dtype: DType): Tensor {
  return t.dtype === dtype ? t : fromF64(dtype, t.shape, nums(t));
}

export function cat(op: string, inputs: readonly Tensor[], dim: number): Tensor {
  const { shape, dim: d, dtype } = catType(op, inputs, dim);
  const parts = inputs.filter((t) => !isLegacyEmpty(t.shape)).map((t) => cast(t, dtype));
  const out = allocData(dtype, numel(shape));
  const [outer, , inner] = splitAt(shape, d);
  const rowOut = shape[d] * inner;
  let col = 0;
  for (const t of parts) {
    const row = t.shape[d] * inner;
    const src = t.data;
    for (let o = 0; o < outer; o++)
      (out as Float32Array).set((src as Float32Array).subarray(o * row, (o + 1) * row), o * rowOut + col);
    col += row;
  }
  return makeTensor(dtype, shape, out);
}

/** Pieces of `t` along `dim` of the given sizes (which must add up to the dim's size). */
export function splitSizes(t: Tensor, dim: number, sizes: readonly number[]): Tensor[] {
  const [outer, len, inner] = splitAt(t.shape, dim);
  let start = 0;
  return sizes.map((s) => {
    const shape = t.shape.map((x, i) => (i === dim ? s : x));
    const out = allocData(t.dtype, outer * s * inner);
    for (let o = 0; o < outer; o++) {
      (out as Float32Array).set(
        (t.data as Float32Array).subarray((o * len + start) * inner, (o * len + start + s) * inner),
        o * s * inner,
      );
    }
    start += s;
    return makeTensor(t.dtype, shape, out);
  });
}

function checkSizes(op: string, shape: Shape, dim: number, sizes: readonly number[]): void {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (total !== shape[dim] || sizes.some((s) => s < 0)) {
    throw new OpArgError(
      op,
      "split_sizes",
      `[${sizes.join(", ")}] do not add up to ${shape[dim]} (dim ${dim})`,
    );
  }
}

function evenSizes(op: string, arg: string, len: number, size: number): number[] {
  if (size < 0 || (size === 0 && len !== 0))
    throw new OpArgError(op, arg, `split size ${size} is invalid for a dim of ${len}`);
  if (len === 0) return [0];
  const n = Math.ceil(len / size);
  return Array.from({ length: n }, (_, i) => Math.min(size, len - i * size));
}

function chunkSizes(op: string, len: number, chunks: number): number[] {
  if (chunks < 1) throw new OpArgError(op, "chunks", `must be at least 1, got ${chunks}`);
  return evenSizes(op, "chunks", len, Math.ceil(len / chunks) || 1);
}

/** A `Tensor[]`-returning split: `sizes` turns the arguments and input shape into piece lengths. */
function splitOp<const N extends string, A extends { self: string; dim: number }>(
  name: N,
  schema: string,
  read: (r: import("./schema.js").ArgReader) => A,
  sizes: (a: A, shape: Shape, dim: number) => number[],
) {
  const plan = (a: A, shape: Shape) => {
    const d = normDim(name, a.dim, shape.length);
    const s = sizes(a, shape, d);
    checkSizes(name, shape, d, s);
    return { d, s };
  };
  return defineOp({
    name,
    schema,
    returns: "list",
    read,
    infer: (a, typeOf: TypeOf) => {
      const t = typeOf(a.self);
      const { d, s } = plan(a, t.shape);
      return s.map((len) =>
        tt(
          t.dtype,
          t.shape.map((x, i) => (i === d ? len : x)),
        ),
      );
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      const { d, s } = plan(a, t.shape);
      return splitSizes(t, d, s);
    },
  });
}

export const JOIN_OPS = opTable(
  defineOp({
    name: "aten.cat.default",
    schema: "Tensor[] tensors, int dim=0",
    read: (r) => ({ tensors: r.tensors("tensors"), dim: r.int("dim") }),
    infer: (a, typeOf) => {
      const c = catType("aten.cat.default", a.tensors.map(typeOf), a.dim);
      return [tt(c.dtype, c.shape)];
    },
    evaluate: (a, valueAt) => [cat("aten.cat.default", a.tensors.map(valueAt), a.dim)],
  }),
  defineOp({
    name: "aten.stack.default",
    schema: "Tensor[] tensors, int dim=0",
    read: (r) => ({ tensors: r.tensors("tensors"), dim: r.int("dim") }),
    infer: (a, typeOf) => {
      const ts = a.tensors.map(typeOf);
      if (ts.length === 0) throw new OpArgError("aten.stack.default", "tensors", "needs at least one tensor");
      if (ts.some((t) => !sameShape(t.shape, ts[0].shape)))
        throw new OpArgError("aten.stack.default", "tensors", "all tensors must have the same shape");
      const d = normDim("aten.stack.default", a.dim, ts[0].shape.length + 1);
      const shape = [...ts[0].shape.slice(0, d), ts.length, ...ts[0].shape.slice(d)];
      return [tt(resultType(...ts.map((t) => ({ dtype: t.dtype, shape: t.shape, wrapped: false }))), shape)];
    },
    evaluate: (a, valueAt) => {
      const ts = a.tensors.map(valueAt);
      const d = normDim("aten.stack.default", a.dim, ts[0].shape.length + 1);
      const parts = ts.map((t) =>
        makeTensor(t.dtype, [...t.shape.slice(0, d), 1, ...t.shape.slice(d)], t.data),
      );
      return [cat("aten.stack.default", parts, d)];
    },
  }),
  splitOp(
    "aten.split.Tensor",
    "Tensor(a -> *) self, SymInt split_size, int dim=0",
    (r) => ({ self: r.tensor("self"), splitSize: r.int("split_size"), dim: r.int("dim") }),
    (a, s, d) => evenSizes("aten.split.Tensor", "split_size", s[d], a.splitSize),
  ),
  splitOp(
    "aten.split.sizes",
    "Tensor(a -> *) self, SymInt[] split_size, int dim=0",
    (r) => ({ self: r.tensor("self"), sizes: r.ints("split_size"), dim: r.int("dim") }),
    (a) => a.sizes,
  ),
  splitOp(
    "aten.split_with_sizes.default",
    "Tensor(a -> *) self, SymInt[] split_sizes, int dim=0",
    (r) => ({ self: r.tensor("self"), sizes: r.ints("split_sizes"), dim: r.int("dim") }),
    (a) => a.sizes,
  ),
  splitOp(
    "aten.chunk.default",
    "Tensor(a -> *) self, int chunks, int dim=0",
    (r) => ({ self: r.tensor("self"), chunks: r.int("chunks"), dim: r.int("dim") }),
    (a, s, d) => chunkSizes("aten.chunk.default", s[d], a.chunks),
  ),
  defineOp({
    name: "aten.unbind.int",
    schema: "Tensor(a -> *) self, int dim=0",
    returns: "list",
    read: (r) => ({ self: r.tensor("self"), dim: r.int("dim") }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      const d = normDim("aten.unbind.int", a.dim, t.shape.length);
      const shape = t.shape.filter((_, i) => i !== d);
      return Array.from({ length: t.shape[d] }, () => tt(t.dtype, shape));
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      const d = normDim("aten.unbind.int", a.dim, t.shape.length);
      const shape = t.shape.filter((_, i) => i !== d);
      return splitSizes(t, d, new Array<number>(t.shape[d]).fill(1)).map((p) =>
        makeTensor(p.dtype, shape, p.data),
      );
    },
  }),
);

import { isIntegral } from "../ir/dtype.js";
import type { TensorType } from "../ir/graph.js";
import { numel, type Shape, stridesOf, type Tensor } from "../ir/tensor.js";
import { broadcastIndex, broadcastShapes, gather, normDim, nums, splitAt, tt } from "./data.js";
import { defineOp, OpArgError, opTable } from "./schema.js";

/** Index values as numbers, wrapped when negative, checked against `size`. */
function indexValues(op: string, arg: string, t: Tensor, size: number): Float64Array {
  if (!isIntegral(t.dtype))
    throw new OpArgError(op, arg, `indices must be an integer tensor, got ${t.dtype}`);
  const v = Float64Array.from(nums(t));
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x < -size || x >= size) throw new OpArgError(op, arg, `index ${x} is out of bounds for size ${size}`);
    if (x < 0) v[i] = x + size;
  }
  return v;
}

export function embedding(op: string, weight: Tensor, indices: Tensor): Tensor {
  if (weight.shape.length !== 2)
    throw new OpArgError(op, "weight", `expected a 2-d weight, got [${weight.shape.join(", ")}]`);
  const [rows, d] = weight.shape;
  const ix = indexValues(op, "indices", indices, rows);
  const idx = new Int32Array(ix.length * d);
  for (let i = 0; i < ix.length; i++) for (let j = 0; j < d; j++) idx[i * d + j] = ix[i] * d + j;
  return gather(weight, [...indices.shape, d], idx);
}

function indexSelect(op: string, t: Tensor, dim: number, index: Tensor): Tensor {
  const d = normDim(op, dim, t.shape.length);
  const [outer, len, inner] = splitAt(t.shape, d);
  const ix = indexValues(op, "index", index, len);
  const k = ix.length;
  const idx = new Int32Array(outer * k * inner);
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < k; j++)
      for (let i = 0; i < inner; i++) idx[(o * k + j) * inner + i] = (o * len + ix[j]) * inner + i;
  return gather(t, t.shape.length === 0 ? [] : t.shape.map((s, i) => (i === d ? k : s)), idx);
}

function gatherAlong(op: string, t: Tensor, dim: number, index: Tensor): Tensor {
  const d = normDim(op, dim, t.shape.length);
  if (index.shape.length !== t.shape.length)
    throw new OpArgError(
      op,
      "index",
      `index rank ${index.shape.length} differs from input rank ${t.shape.length}`,
    );
  const ix = indexValues(op, "index", index, t.shape[d] ?? 1);
  const ist = stridesOf(index.shape);
  const tst = stridesOf(t.shape);
  const idx = new Int32Array(ix.length);
  for (let i = 0; i < ix.length; i++) {
    let off = 0;
    for (let k = 0; k < index.shape.length; k++) {
      const c = k === d ? ix[i] : Math.floor(i / ist[k]) % index.shape[k];
      off += c * tst[k];
    }
    idx[i] = off;
  }
  return gather(t, index.shape, idx);
}

/** Advanced indexing `self[i0, i1, …]` with integer index tensors (None entries keep a dim whole). */
function indexShape(
  op: string,
  shape: Shape,
  indices: readonly (Shape | null)[],
): { out: number[]; b: number[]; dims: number[]; front: boolean } {
  if (indices.length > shape.length)
    throw new OpArgError(op, "indices", `${indices.length} indices for a ${shape.length}-d tensor`);
  const dims = indices.flatMap((s, i) => (s === null ? [] : [i]));
  if (dims.length === 0) return { out: [...shape], b: [], dims, front: false };
  const b = broadcastShapes(op, ...dims.map((i) => indices[i] as Shape));
  // Adjacent indexed dims keep their place; separated ones move the broadcast dims to the front (NumPy's rule).
  const adjacent = dims.every((d, i) => i === 0 || d === dims[i - 1] + 1);
  const rest = shape.map((s, i) => (dims.includes(i) ? -1 : s));
  let out: number[];
  if (adjacent) out = [...shape.slice(0, dims[0]), ...b, ...shape.slice(dims[dims.length - 1] + 1)];
  else out = [...b, ...rest.filter((s) => s !== -1)];
  return { out, b, dims, front: !adjacent };
}

function advancedIndex(op: string, t: Tensor, indices: readonly (Tensor | null)[]): Tensor {
  for (const ix of indices) {
    if (ix && ix.dtype === "bool")
      throw new OpArgError(
        op,
        "indices",
        "boolean mask indices give data-dependent shapes and are not supported",
      );
  }
  const { out, b, dims, front } = indexShape(
    op,
    t.shape,
    indices.map((x) => x?.shape ?? null),
  );
  if (dims.length === 0) return t;
  const vals = dims.map((d) => {
    const ix = indices[d] as Tensor;
    const v = indexValues(op, "indices", ix, t.shape[d]);
    const bi = broadcastIndex(ix.shape, b);
    return Float64Array.from(bi, (j) => v[j]);
  });
  const tst = stridesOf(t.shape);
  const restDims = t.shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const n = numel(out);
  const idx = new Int32Array(n);
  const ost = stridesOf(out);
  const bStart = front ? 0 : dims[0];
  for (let i = 0; i < n; i++) {
    const coord = out.map((s, k) => Math.floor(i / ost[k]) % s);
    let bflat = 0;
    for (let k = 0; k < b.length; k++) bflat = bflat * b[k] + coord[bStart + k];
    let off = 0;
    for (let k = 0; k < dims.length; k++) off += vals[k][bflat] * tst[dims[k]];
    // Remaining (non-indexed) dims, in order, skipping the broadcast block.
    let r = 0;
    for (let k = 0; k < out.length; k++) {
      if (k >= bStart && k < bStart + b.length) continue;
      off += coord[k] * tst[restDims[r++]];
    }
    idx[i] = off;
  }
  return gather(t, out, idx);
}

export const INDEXING_OPS = opTable(
  defineOp({
    name: "aten.embedding.default",
    schema:
      "Tensor weight, Tensor indices, SymInt padding_idx=-1, bool scale_grad_by_freq=False, bool sparse=False",
    read: (r) => ({ weight: r.tensor("weight"), indices: r.tensor("indices") }),
    infer: (a, typeOf): TensorType[] => {
      const w = typeOf(a.weight);
      if (w.shape.length !== 2)
        throw new OpArgError(
          "aten.embedding.default",
          "weight",
          `expected a 2-d weight, got [${w.shape.join(", ")}]`,
        );
      return [tt(w.dtype, [...typeOf(a.indices).shape, w.shape[1]])];
    },
    evaluate: (a, valueAt) => [embedding("aten.embedding.default", valueAt(a.weight), valueAt(a.indices))],
  }),
  defineOp({
    name: "aten.index_select.default",
    schema: "Tensor self, int dim, Tensor index",
    read: (r) => ({ self: r.tensor("self"), dim: r.int("dim"), index: r.tensor("index") }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      const d = normDim("aten.index_select.default", a.dim, t.shape.length);
      const k = numel(typeOf(a.index).shape);
      return [tt(t.dtype, t.shape.length === 0 ? [] : t.shape.map((s, i) => (i === d ? k : s)))];
    },
    evaluate: (a, valueAt) => [
      indexSelect("aten.index_select.default", valueAt(a.self), a.dim, valueAt(a.index)),
    ],
  }),
  defineOp({
    name: "aten.gather.default",
    schema: "Tensor self, int dim, Tensor index, *, bool sparse_grad=False",
    read: (r) => ({ self: r.tensor("self"), dim: r.int("dim"), index: r.tensor("index") }),
    infer: (a, typeOf) => [tt(typeOf(a.self).dtype, typeOf(a.index).shape)],
    evaluate: (a, valueAt) => [gatherAlong("aten.gather.default", valueAt(a.self), a.dim, valueAt(a.index))],
  }),
  defineOp({
    name: "aten.index.Tensor",
    schema: "Tensor self, Tensor?[] indices",
    read: (r) => ({ self: r.tensor("self"), indices: r.optTensors("indices") }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      for (const i of a.indices) {
        if (i !== null && typeOf(i).dtype === "bool")
          throw new OpArgError(
            "aten.index.Tensor",
            "indices",
            "boolean mask indices give data-dependent shapes and are not supported",
          );
      }
      const { out } = indexShape(
        "aten.index.Tensor",
        t.shape,
        a.indices.map((i) => (i === null ? null : typeOf(i).shape)),
      );
      return [tt(t.dtype, out)];
    },
    evaluate: (a, valueAt) => [
      advancedIndex(
        "aten.index.Tensor",
        valueAt(a.self),
        a.indices.map((i) => (i === null ? null : valueAt(i))),
      ),
    ],
  }),
);

import type { TensorType } from "../ir/graph.js";
import { numel, type Shape, stridesOf, type Tensor } from "../ir/tensor.js";
import { broadcastShapes, fromF64, gather, normDim, nums, reshaped, tt } from "./data.js";
import { defineOp, OpArgError, opTable } from "./schema.js";
import type { TypeOf, ValueOf } from "./types.js";

/** Flat input indices of a strided view (strides in elements, possibly 0), in row-major output order. */
export function stridedIndex(outShape: Shape, strides: readonly number[], offset: number): Int32Array {
  const n = numel(outShape);
  const idx = new Int32Array(n);
  const rank = outShape.length;
  if (n === 0) return idx;
  const counter = new Array<number>(rank).fill(0);
  let off = offset;
  for (let i = 0; i < n; i++) {
    idx[i] = off;
    for (let d = rank - 1; d >= 0; d--) {
      counter[d]++;
      off += strides[d];
      if (counter[d] < outShape[d]) break;
      off -= strides[d] * counter[d];
      counter[d] = 0;
    }
  }
  return idx;
}

export function stridedView(t: Tensor, outShape: Shape, strides: readonly number[], offset: number): Tensor {
  return gather(t, outShape, stridedIndex(outShape, strides, offset));
}

/** A `view`/`reshape` size list with at most one -1, checked against the element count. */
export function resolveShape(op: string, arg: string, from: Shape, size: readonly number[]): number[] {
  const n = numel(from);
  const known = size.reduce((p, d) => (d === -1 ? p : p * d), 1);
  const holes = size.filter((d) => d === -1).length;
  if (holes > 1 || size.some((d) => d < -1))
    throw new OpArgError(op, arg, `invalid size [${size.join(", ")}]`);
  const out = size.map((d) => (d === -1 ? (known === 0 ? 0 : n / known) : d));
  if (numel(out) !== n || out.some((d) => !Number.isInteger(d))) {
    throw new OpArgError(
      op,
      arg,
      `shape [${size.join(", ")}] is invalid for input of size ${n} ([${from.join(", ")}])`,
    );
  }
  return out;
}

function permuteShape(op: string, shape: Shape, dims: readonly number[]): number[] {
  const r = shape.length;
  const d = dims.map((x) => normDim(op, x, r, "dims"));
  if (d.length !== r || new Set(d).size !== r)
    throw new OpArgError(op, "dims", `[${dims.join(", ")}] is not a permutation of ${r} dims`);
  return d;
}

export function permute(op: string, t: Tensor, dims: readonly number[]): Tensor {
  const d = permuteShape(op, t.shape, dims);
  if (d.every((x, i) => x === i)) return t;
  const st = stridesOf(t.shape);
  return stridedView(
    t,
    d.map((x) => t.shape[x]),
    d.map((x) => st[x]),
    0,
  );
}

function transposeDims(
  op: string,
  rank: number,
  d0: number,
  d1: number,
  names: readonly [string, string] = ["dim0", "dim1"],
): number[] {
  const a = normDim(op, d0, rank, names[0]);
  const b = normDim(op, d1, rank, names[1]);
  const dims = Array.from({ length: rank }, (_, i) => i);
  if (rank > 0) [dims[a], dims[b]] = [dims[b], dims[a]];
  return dims;
}

function expandShape(op: string, from: Shape, size: readonly number[]): number[] {
  if (size.length < from.length)
    throw new OpArgError(op, "size", `[${size.join(", ")}] has fewer dims than [${from.join(", ")}]`);
  const lead = size.length - from.length;
  return size.map((s, i) => {
    if (i < lead) {
      if (s < 0) throw new OpArgError(op, "size", `-1 is not allowed for a new leading dim`);
      return s;
    }
    const f = from[i - lead];
    if (s === -1 || s === f) return f;
    if (f !== 1) throw new OpArgError(op, "size", `cannot expand dim ${i - lead} of size ${f} to ${s}`);
    return s;
  });
}

export function expandTo(t: Tensor, shape: Shape): Tensor {
  if (numel(shape) === numel(t.shape)) return reshaped(t, shape);
  const st = stridesOf(t.shape);
  const lead = shape.length - t.shape.length;
  return stridedView(
    t,
    shape,
    shape.map((_, i) => (i < lead || t.shape[i - lead] === 1 ? 0 : st[i - lead])),
    0,
  );
}

export interface SliceArgs {
  readonly self: string;
  readonly dim: number;
  readonly start: number | null;
  readonly end: number | null;
  readonly step: number;
}

/** Python slice bounds, clamped as PyTorch does. */
function sliceBounds(op: string, a: SliceArgs, shape: Shape): { dim: number; start: number; len: number } {
  const dim = normDim(op, a.dim, shape.length);
  const size = shape[dim];
  if (a.step < 1) throw new OpArgError(op, "step", `must be positive, got ${a.step}`);
  const clamp = (v: number | null, dflt: number) => {
    if (v === null) return dflt;
    const w = v < 0 ? v + size : v;
    return Math.min(Math.max(w, 0), size);
  };
  const start = clamp(a.start, 0);
  const end = Math.max(clamp(a.end, size), start);
  return { dim, start, len: Math.ceil((end - start) / a.step) };
}

function selectIndex(op: string, shape: Shape, dim: number, index: number): [number, number] {
  const d = normDim(op, dim, shape.length);
  const size = shape[d];
  if (index < -size || index >= size)
    throw new OpArgError(op, "index", `${index} out of range for dim ${d} of size ${size}`);
  return [d, index < 0 ? index + size : index];
}

function squeezeShape(op: string, shape: Shape, dims: readonly number[] | null): number[] {
  const ds = dims === null ? null : new Set(dims.map((d) => normDim(op, d, shape.length)));
  return shape.filter((s, i) => !(s === 1 && (ds === null || ds.has(i))));
}

function unsqueezeShape(op: string, shape: Shape, dim: number): number[] {
  const d = normDim(op, dim, shape.length + 1);
  return [...shape.slice(0, d), 1, ...shape.slice(d)];
}

function flattenShape(op: string, shape: Shape, startDim: number, endDim: number): number[] {
  if (shape.length === 0) return [1];
  const s = normDim(op, startDim, shape.length, "start_dim");
  const e = normDim(op, endDim, shape.length, "end_dim");
  if (s > e) throw new OpArgError(op, "start_dim", `start_dim ${startDim} comes after end_dim ${endDim}`);
  return [...shape.slice(0, s), numel(shape.slice(s, e + 1)), ...shape.slice(e + 1)];
}

/** An op whose result is the input's data under a new shape. */
function reshapeOp<const N extends string, A extends { self: string }>(
  name: N,
  schema: string,
  read: (r: import("./schema.js").ArgReader) => A,
  shapeOf: (a: A, self: Shape, typeOf: TypeOf) => number[],
) {
  return defineOp({
    name,
    schema,
    read,
    infer: (a, typeOf): TensorType[] => {
      const t = typeOf(a.self);
      return [tt(t.dtype, shapeOf(a, t.shape, typeOf))];
    },
    evaluate: (a, valueAt: ValueOf) => {
      const t = valueAt(a.self);
      return [
        reshaped(
          t,
          shapeOf(a, t.shape, (n) => valueAt(n)),
        ),
      ];
    },
  });
}

/** An op whose result gathers the input's elements through a strided view. */
function gatherOp<const N extends string, A extends { self: string }>(
  name: N,
  schema: string,
  read: (r: import("./schema.js").ArgReader) => A,
  shapeOf: (a: A, self: Shape, typeOf: TypeOf) => number[],
  run: (a: A, t: Tensor, valueAt: ValueOf) => Tensor,
) {
  return defineOp({
    name,
    schema,
    read,
    infer: (a, typeOf): TensorType[] => {
      const t = typeOf(a.self);
      return [tt(t.dtype, shapeOf(a, t.shape, typeOf))];
    },
    evaluate: (a, valueAt: ValueOf) => [run(a, valueAt(a.self), valueAt)],
  });
}

const self = (r: import("./schema.js").ArgReader) => ({ self: r.tensor("self") });
const same = (_a: unknown, s: Shape) => [...s];

function tShape(op: string, s: Shape): number[] {
  if (s.length > 2)
    throw new OpArgError(op, "self", `expects a tensor with <= 2 dims, got [${s.join(", ")}]`);
  return s.length === 2 ? [s[1], s[0]] : [...s];
}

function repeatShape(op: string, s: Shape, repeats: readonly number[]): number[] {
  if (repeats.length < s.length)
    throw new OpArgError(op, "repeats", `${repeats.length} repeats for ${s.length} dims`);
  const lead = repeats.length - s.length;
  return repeats.map((r, i) => r * (i < lead ? 1 : s[i - lead]));
}

function repeat(t: Tensor, repeats: readonly number[]): Tensor {
  const lead = repeats.length - t.shape.length;
  const inShape = [...new Array<number>(lead).fill(1), ...t.shape];
  const outShape = repeatShape("aten.repeat.default", t.shape, repeats);
  const inStrides = stridesOf(inShape);
  const n = numel(outShape);
  const idx = new Int32Array(n);
  const outStrides = stridesOf(outShape);
  for (let i = 0; i < n; i++) {
    let off = 0;
    for (let d = 0; d < outShape.length; d++)
      off += ((Math.floor(i / outStrides[d]) % outShape[d]) % inShape[d]) * inStrides[d];
    idx[i] = off;
  }
  return gather(t, outShape, idx);
}

function flipOrRoll(t: Tensor, map: (d: number, i: number) => number): Tensor {
  const shape = t.shape;
  const st = stridesOf(shape);
  const n = numel(shape);
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let off = 0;
    for (let d = 0; d < shape.length; d++) off += map(d, Math.floor(i / st[d]) % shape[d]) * st[d];
    idx[i] = off;
  }
  return gather(t, shape, idx);
}

/** transpose.int, or one of its aliases: the same op under another name and argument names. */
function transposeOp<const N extends string>(name: N, arg0: string, arg1: string) {
  const names = [arg0, arg1] as const;
  return gatherOp(
    name,
    `Tensor(a) self, int ${arg0}, int ${arg1}`,
    (r) => ({ self: r.tensor("self"), dim0: r.int(arg0), dim1: r.int(arg1) }),
    (a, s) => transposeDims(name, s.length, a.dim0, a.dim1, names).map((d) => s[d]),
    (a, t) => permute(name, t, transposeDims(name, t.shape.length, a.dim0, a.dim1, names)),
  );
}

export const VIEW_OPS = opTable(
  reshapeOp(
    "aten.view.default",
    "Tensor(a) self, SymInt[] size",
    (r) => ({ self: r.tensor("self"), size: r.ints("size") }),
    (a, s) => resolveShape("aten.view.default", "size", s, a.size),
  ),
  reshapeOp(
    "aten._unsafe_view.default",
    "Tensor self, SymInt[] size",
    (r) => ({ self: r.tensor("self"), size: r.ints("size") }),
    (a, s) => resolveShape("aten._unsafe_view.default", "size", s, a.size),
  ),
  reshapeOp(
    "aten.reshape.default",
    "Tensor(a) self, SymInt[] shape",
    (r) => ({ self: r.tensor("self"), shape: r.ints("shape") }),
    (a, s) => resolveShape("aten.reshape.default", "shape", s, a.shape),
  ),
  reshapeOp(
    "aten.view_as.default",
    "Tensor(a) self, Tensor other",
    (r) => ({ self: r.tensor("self"), other: r.tensor("other") }),
    (a, s, typeOf) => resolveShape("aten.view_as.default", "other", s, typeOf(a.other).shape),
  ),
  reshapeOp(
    "aten.reshape_as.default",
    "Tensor(a) self, Tensor other",
    (r) => ({ self: r.tensor("self"), other: r.tensor("other") }),
    (a, s, typeOf) => resolveShape("aten.reshape_as.default", "other", s, typeOf(a.other).shape),
  ),
  reshapeOp(
    "aten.flatten.using_ints",
    "Tensor(a) self, int start_dim=0, int end_dim=-1",
    (r) => ({ self: r.tensor("self"), startDim: r.int("start_dim"), endDim: r.int("end_dim") }),
    (a, s) => flattenShape("aten.flatten.using_ints", s, a.startDim, a.endDim),
  ),
  reshapeOp(
    "aten.unflatten.int",
    "Tensor(a) self, int dim, SymInt[] sizes",
    (r) => ({ self: r.tensor("self"), dim: r.int("dim"), sizes: r.ints("sizes") }),
    (a, s) => {
      const d = normDim("aten.unflatten.int", a.dim, s.length);
      const inner = resolveShape("aten.unflatten.int", "sizes", [s[d]], a.sizes);
      return [...s.slice(0, d), ...inner, ...s.slice(d + 1)];
    },
  ),
  reshapeOp(
    "aten.unsqueeze.default",
    "Tensor(a) self, int dim",
    (r) => ({ self: r.tensor("self"), dim: r.int("dim") }),
    (a, s) => unsqueezeShape("aten.unsqueeze.default", s, a.dim),
  ),
  reshapeOp("aten.squeeze.default", "Tensor(a) self", self, (_a, s) =>
    squeezeShape("aten.squeeze.default", s, null),
  ),
  reshapeOp(
    "aten.squeeze.dim",
    "Tensor(a) self, int dim",
    (r) => ({ self: r.tensor("self"), dim: r.int("dim") }),
    (a, s) => squeezeShape("aten.squeeze.dim", s, [a.dim]),
  ),
  reshapeOp(
    "aten.squeeze.dims",
    "Tensor(a) self, int[] dim",
    (r) => ({ self: r.tensor("self"), dim: r.ints("dim") }),
    (a, s) => squeezeShape("aten.squeeze.dims", s, a.dim),
  ),
  reshapeOp("aten.alias.default", "Tensor(a) self", self, same),
  reshapeOp("aten.detach.default", "Tensor(a) self", self, same),
  reshapeOp("aten.lift_fresh_copy.default", "Tensor self", self, same),
  reshapeOp("aten.clone.default", "Tensor self, *, MemoryFormat? memory_format=None", self, same),
  reshapeOp("aten.contiguous.default", "Tensor(a) self, *, MemoryFormat memory_format=0", self, same),
  gatherOp(
    "aten.permute.default",
    "Tensor(a) self, int[] dims",
    (r) => ({ self: r.tensor("self"), dims: r.ints("dims") }),
    (a, s) => permuteShape("aten.permute.default", s, a.dims).map((d) => s[d]),
    (a, t) => permute("aten.permute.default", t, a.dims),
  ),
  transposeOp("aten.transpose.int", "dim0", "dim1"),
  // numpy-style aliases of transpose.int (CompositeImplicitAutograd in PyTorch; TorchScript keeps them)
  transposeOp("aten.swapaxes.default", "axis0", "axis1"),
  transposeOp("aten.swapdims.default", "dim0", "dim1"),
  gatherOp(
    "aten.t.default",
    "Tensor(a) self",
    self,
    (_a, s) => tShape("aten.t.default", s),
    (_a, t) => (t.shape.length === 2 ? permute("aten.t.default", t, [1, 0]) : t),
  ),
  gatherOp(
    "aten.expand.default",
    "Tensor(a) self, SymInt[] size, *, bool implicit=False",
    (r) => ({ self: r.tensor("self"), size: r.ints("size") }),
    (a, s) => expandShape("aten.expand.default", s, a.size),
    (a, t) => expandTo(t, expandShape("aten.expand.default", t.shape, a.size)),
  ),
  gatherOp(
    "aten.expand_as.default",
    "Tensor(a) self, Tensor other",
    (r) => ({ self: r.tensor("self"), other: r.tensor("other") }),
    (a, s, typeOf) => expandShape("aten.expand_as.default", s, typeOf(a.other).shape),
    (a, t, valueAt) => expandTo(t, expandShape("aten.expand_as.default", t.shape, valueAt(a.other).shape)),
  ),
  gatherOp(
    "aten.slice.Tensor",
    "Tensor(a) self, int dim=0, SymInt? start=None, SymInt? end=None, SymInt step=1",
    (r): SliceArgs => ({
      self: r.tensor("self"),
      dim: r.int("dim"),
      start: r.optInt("start"),
      end: r.optInt("end"),
      step: r.int("step"),
    }),
    (a, s) => {
      const b = sliceBounds("aten.slice.Tensor", a, s);
      return s.map((d, i) => (i === b.dim ? b.len : d));
    },
    (a, t) => {
      const b = sliceBounds("aten.slice.Tensor", a, t.shape);
      const st = stridesOf(t.shape);
      const shape = t.shape.map((d, i) => (i === b.dim ? b.len : d));
      return stridedView(
        t,
        shape,
        st.map((s, i) => (i === b.dim ? s * a.step : s)),
        b.start * st[b.dim],
      );
    },
  ),
  gatherOp(
    "aten.narrow.default",
    "Tensor(a) self, int dim, SymInt start, SymInt length",
    (r) => ({ self: r.tensor("self"), dim: r.int("dim"), start: r.int("start"), length: r.int("length") }),
    (a, s) => {
      const d = normDim("aten.narrow.default", a.dim, s.length);
      return s.map((x, i) => (i === d ? a.length : x));
    },
    (a, t) => {
      const d = normDim("aten.narrow.default", a.dim, t.shape.length);
      const start = a.start < 0 ? a.start + t.shape[d] : a.start;
      if (start < 0 || start + a.length > t.shape[d])
        throw new OpArgError(
          "aten.narrow.default",
          "length",
          `start ${a.start} + length ${a.length} exceeds ${t.shape[d]}`,
        );
      const st = stridesOf(t.shape);
      return stridedView(
        t,
        t.shape.map((x, i) => (i === d ? a.length : x)),
        st,
        start * st[d],
      );
    },
  ),
  gatherOp(
    "aten.select.int",
    "Tensor(a) self, int dim, SymInt index",
    (r) => ({ self: r.tensor("self"), dim: r.int("dim"), index: r.int("index") }),
    (a, s) => {
      const [d] = selectIndex("aten.select.int", s, a.dim, a.index);
      return s.filter((_, i) => i !== d);
    },
    (a, t) => {
      const [d, idx] = selectIndex("aten.select.int", t.shape, a.dim, a.index);
      const st = stridesOf(t.shape);
      return stridedView(
        t,
        t.shape.filter((_, i) => i !== d),
        st.filter((_, i) => i !== d),
        idx * st[d],
      );
    },
  ),
  gatherOp(
    "aten.repeat.default",
    "Tensor self, SymInt[] repeats",
    (r) => ({ self: r.tensor("self"), repeats: r.ints("repeats") }),
    (a, s) => repeatShape("aten.repeat.default", s, a.repeats),
    (a, t) => repeat(t, a.repeats),
  ),
  gatherOp(
    "aten.flip.default",
    "Tensor self, int[] dims",
    (r) => ({ self: r.tensor("self"), dims: r.ints("dims") }),
    same,
    (a, t) => {
      const ds = new Set(a.dims.map((d) => normDim("aten.flip.default", d, t.shape.length, "dims")));
      return flipOrRoll(t, (d, i) => (ds.has(d) ? t.shape[d] - 1 - i : i));
    },
  ),
  gatherOp(
    "aten.roll.default",
    "Tensor self, SymInt[1] shifts, int[1] dims=[]",
    (r) => ({ self: r.tensor("self"), shifts: r.ints("shifts"), dims: r.ints("dims") }),
    same,
    (a, t) => {
      if (a.dims.length === 0) {
        const flat = reshaped(t, [numel(t.shape)]);
        const n = numel(t.shape);
        const k = n === 0 ? 0 : ((a.shifts[0] % n) + n) % n;
        return reshaped(
          flipOrRoll(flat, (_d, i) => (i - k + n) % n),
          t.shape,
        );
      }
      if (a.dims.length !== a.shifts.length)
        throw new OpArgError(
          "aten.roll.default",
          "shifts",
          `${a.shifts.length} shifts for ${a.dims.length} dims`,
        );
      const shift = new Array<number>(t.shape.length).fill(0);
      a.dims.forEach((d, j) => {
        shift[normDim("aten.roll.default", d, t.shape.length, "dims")] += a.shifts[j];
      });
      return flipOrRoll(t, (d, i) => {
        const n = t.shape[d];
        return (((i - shift[d]) % n) + n) % n;
      });
    },
  ),
  defineOp({
    name: "aten.copy.default",
    schema: "Tensor self, Tensor src, bool non_blocking=False",
    read: (r) => ({ self: r.tensor("self"), src: r.tensor("src") }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      broadcastShapes("aten.copy.default", t.shape, typeOf(a.src).shape);
      return [tt(t.dtype, t.shape)];
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      const s = expandTo(valueAt(a.src), t.shape);
      return [s.dtype === t.dtype ? s : fromF64(t.dtype, t.shape, nums(s))];
    },
  }),
);

import { UnsupportedOpError } from "../errors.js";
import type { DType } from "../ir/dtype.js";
import type { Tensor } from "../ir/tensor.js";
import { fromF64, nums, sameShape, tt } from "./data.js";
import { type ArgReader, defineOp, OpArgError, opTable } from "./schema.js";

export function castTo(t: Tensor, dtype: DType): Tensor {
  return t.dtype === dtype ? t : fromF64(dtype, t.shape, nums(t));
}

export interface CastArgs {
  readonly self: string;
  readonly dtype: DType | null;
  /** `to.other`/`type_as`: take the dtype of this tensor. */
  readonly like: string | null;
}

function castOp<const N extends string>(name: N, schema: string, read: (r: ArgReader) => CastArgs) {
  return defineOp({
    name,
    schema,
    read,
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      return [tt(a.dtype ?? (a.like ? typeOf(a.like).dtype : t.dtype), t.shape)];
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      return [castTo(t, a.dtype ?? (a.like ? valueAt(a.like).dtype : t.dtype))];
    },
  });
}

export interface DropoutArgs {
  readonly input: string;
  readonly p: number;
  readonly train: boolean;
}

/** Dropout is the identity in eval mode; a training-mode dropout is random and has no reference. */
function checkEval(op: string, a: DropoutArgs): void {
  if (a.train && a.p !== 0) {
    throw new UnsupportedOpError(
      `${op}: dropout with train=True and p=${a.p} is random; export the model in eval mode`,
      op,
    );
  }
}

function dropoutOp<const N extends string>(name: N) {
  return defineOp({
    name,
    schema: "Tensor input, float p, bool train",
    read: (r): DropoutArgs => ({ input: r.tensor("input"), p: r.float("p"), train: r.bool("train") }),
    infer: (a, typeOf) => {
      const t = typeOf(a.input);
      return [tt(t.dtype, t.shape)];
    },
    evaluate: (a, valueAt) => {
      checkEval(name, a);
      return [valueAt(a.input)];
    },
  });
}

export interface TriArgs {
  readonly self: string;
  readonly diagonal: number;
}

/** Keeps the lower (tril) or upper (triu) triangle of the last two dims. */
function triOp<const N extends string>(name: N, lower: boolean) {
  return defineOp({
    name,
    schema: "Tensor self, SymInt diagonal=0",
    read: (r): TriArgs => ({ self: r.tensor("self"), diagonal: r.int("diagonal") }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      if (t.shape.length < 2)
        throw new OpArgError(name, "self", `expected at least 2 dims, got [${t.shape.join(", ")}]`);
      return [tt(t.dtype, t.shape)];
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      if (t.shape.length < 2)
        throw new OpArgError(name, "self", `expected at least 2 dims, got [${t.shape.join(", ")}]`);
      const [R, C] = t.shape.slice(-2);
      const x = nums(t);
      const out = new Float64Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const c = i % C;
        const r = Math.floor(i / C) % R;
        const keep = lower ? c - r <= a.diagonal : c - r >= a.diagonal;
        out[i] = keep ? x[i] : 0;
      }
      return [fromF64(t.dtype, t.shape, out)];
    },
  });
}

const noCopy = "bool non_blocking=False, bool copy=False";

export interface FillArgs {
  readonly self: string;
  /** A number, a 0-d tensor, or null for zero(). */
  readonly value: number | string | null;
}

/** fill.Scalar / fill.Tensor / zero: self's shape and dtype, every element the value (cast to self's dtype). */
function fillLikeOp<const N extends string>(name: N, schema: string, read: (r: ArgReader) => FillArgs) {
  return defineOp({
    name,
    schema,
    read,
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      if (typeof a.value === "string" && typeOf(a.value).shape.length !== 0)
        throw new OpArgError(name, "value", "must be a 0-d tensor");
      return [tt(t.dtype, t.shape)];
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      const v = a.value === null ? 0 : typeof a.value === "number" ? a.value : nums(valueAt(a.value))[0];
      return [fromF64(t.dtype, t.shape, new Float64Array(t.data.length).fill(v))];
    },
  });
}

export const MISC_OPS = opTable(
  castOp(
    "aten._to_copy.default",
    "Tensor self, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None, bool non_blocking=False, MemoryFormat? memory_format=None",
    (r) => ({ self: r.tensor("self"), dtype: r.optDtype("dtype"), like: null }),
  ),
  castOp(
    "aten.to.dtype",
    `Tensor(a) self, ScalarType dtype, ${noCopy}, MemoryFormat? memory_format=None`,
    (r) => ({ self: r.tensor("self"), dtype: r.dtype("dtype"), like: null }),
  ),
  castOp(
    "aten.to.device",
    `Tensor(a) self, Device device, ScalarType dtype, ${noCopy}, MemoryFormat? memory_format=None`,
    (r) => ({
      self: r.tensor("self"),
      dtype: r.dtype("dtype"),
      like: null,
    }),
  ),
  castOp(
    "aten.to.other",
    `Tensor(a) self, Tensor other, ${noCopy}, MemoryFormat? memory_format=None`,
    (r) => ({ self: r.tensor("self"), dtype: null, like: r.tensor("other") }),
  ),
  castOp(
    "aten.to.dtype_layout",
    `Tensor(a) self, *, ScalarType? dtype=None, Layout? layout=None, Device? device=None, bool? pin_memory=None, ${noCopy}, MemoryFormat? memory_format=None`,
    (r) => ({ self: r.tensor("self"), dtype: r.optDtype("dtype"), like: null }),
  ),
  castOp("aten.to.prim_dtype", `Tensor(a) self, int? dtype=None, ${noCopy}`, (r) => ({
    self: r.tensor("self"),
    dtype: r.optDtype("dtype"),
    like: null,
  })),
  castOp("aten.to.prim_Device", `Tensor(a) self, Device? device, int? dtype=None, ${noCopy}`, (r) => ({
    self: r.tensor("self"),
    dtype: r.optDtype("dtype"),
    like: null,
  })),
  castOp("aten.type_as.default", "Tensor self, Tensor other", (r) => ({
    self: r.tensor("self"),
    dtype: null,
    like: r.tensor("other"),
  })),
  defineOp({
    name: "aten._assert_tensor_metadata.default",
    schema:
      "Tensor a, SymInt[]? size=None, SymInt[]? stride=None, ScalarType? dtype=None, *, Device? device=None, Layout? layout=None",
    returns: 0,
    read: (r) => ({ a: r.tensor("a"), size: r.optInts("size"), dtype: r.optDtype("dtype") }),
    infer: () => [],
    evaluate: (a, valueAt) => {
      const t = valueAt(a.a);
      if (a.dtype !== null && t.dtype !== a.dtype)
        throw new OpArgError(
          "aten._assert_tensor_metadata.default",
          "dtype",
          `tensor is ${t.dtype}, expected ${a.dtype}`,
        );
      if (a.size !== null && !sameShape(t.shape, a.size)) {
        throw new OpArgError(
          "aten._assert_tensor_metadata.default",
          "size",
          `tensor is [${t.shape.join(", ")}], expected [${a.size.join(", ")}]`,
        );
      }
      return [];
    },
  }),
  dropoutOp("aten.dropout.default"),
  dropoutOp("aten.feature_dropout.default"),
  dropoutOp("aten.alpha_dropout.default"),
  dropoutOp("aten.feature_alpha_dropout.default"),
  defineOp({
    name: "aten.native_dropout.default",
    schema: "Tensor input, float p, bool? train",
    returns: 2,
    read: (r): DropoutArgs => ({
      input: r.tensor("input"),
      p: r.float("p"),
      train: r.optBool("train") ?? true,
    }),
    infer: (a, typeOf) => {
      const t = typeOf(a.input);
      return [tt(t.dtype, t.shape), tt("bool", t.shape)];
    },
    evaluate: (a, valueAt) => {
      checkEval("aten.native_dropout.default", a);
      const t = valueAt(a.input);
      return [t, fromF64("bool", t.shape, new Float64Array(t.data.length).fill(1))];
    },
  }),
  fillLikeOp("aten.fill.Scalar", "Tensor self, Scalar value", (r) => ({
    self: r.tensor("self"),
    value: Number(r.scalar("value").value),
  })),
  fillLikeOp("aten.fill.Tensor", "Tensor self, Tensor value", (r) => ({
    self: r.tensor("self"),
    value: r.tensor("value"),
  })),
  fillLikeOp("aten.zero.default", "Tensor self", (r) => ({ self: r.tensor("self"), value: null })),
  triOp("aten.tril.default", true),
  triOp("aten.triu.default", false),
);

// Composite ops lowered to the core set with the shared recipes of src/ops/composite-lowering.ts: addcmul and
// addcdiv (mul/div + add), linalg_vector_norm (abs/mul/pow + sum/amax/amin + sqrt/pow), einsum (permute, view,
// sum, bmm), as_strided (view, expand or a gather of constant positions) and the antialiased resizes (two
// products with constant weight matrices, which become linear layers).
import type { DType } from "../../ir/dtype.js";
import type { Arg } from "../../ir/graph.js";
import { numel, type Shape, type Tensor, tensorFromNumbers } from "../../ir/tensor.js";
import {
  aaGeometry,
  einsumSizes,
  normAxes,
  parseEinsum,
  type RepeatInterleaveArgs,
  type ResizeKind,
  type ScatterArgs,
  scatterPositions,
} from "../../ops/composite.js";
import {
  type Emitter,
  lowerAaResize,
  lowerAddc,
  lowerAsStrided,
  lowerEinsum,
  lowerRepeatInterleave,
  lowerScatter,
  lowerVectorNorm,
  numberFor,
  STRIDED_VIEW_OPS,
} from "../../ops/composite-lowering.js";
import { getOp } from "../../ops/index.js";
import { arg } from "../rewrite/args.js";
import { op } from "../rewrite/pattern.js";
import type { ReplacementBuilder } from "../rewrite/replacement.js";
import { rule, ruleSet } from "../rewrite/rule.js";

/** The emitter over aten nodes: each call adds one node (types inferred by the op catalogue). */
function atenEmitter(b: ReplacementBuilder): Emitter<string> {
  const node = (opName: string, args: Record<string, Arg>) => b.node(opName, args);
  return {
    shape: (v) => b.typeOf(v).shape,
    dtype: (v) => b.typeOf(v).dtype,
    permute: (v, perm) => node("aten.permute.default", { self: arg.tensor(v), dims: arg.ints(perm) }),
    reshape: (v, shape) => node("aten.view.default", { self: arg.tensor(v), size: arg.ints(shape) }),
    expand: (v, shape) => node("aten.expand.default", { self: arg.tensor(v), size: arg.ints(shape) }),
    bmm: (a, c) => node("aten.bmm.default", { self: arg.tensor(a), mat2: arg.tensor(c) }),
    reduce: (opName, v, axes, keepdim) => {
      const args = (x: string) => ({ self: arg.tensor(x), dim: arg.ints(axes), keepdim: arg.bool(keepdim) });
      if (opName === "sum") return node("aten.sum.dim_IntList", args(v));
      if (opName === "max") return node("aten.amax.default", args(v));
      // min(v) = −max(−v): amax is the core reduction
      const neg = (x: string) => node("aten.neg.default", { self: arg.tensor(x) });
      return neg(node("aten.amax.default", args(neg(v))));
    },
    unary: (opName, v) => node(`aten.${opName}.default`, { self: arg.tensor(v) }),
    binary: (opName, x, y) => node(`aten.${opName}.Tensor`, { self: arg.tensor(x), other: arg.tensor(y) }),
    scalar: (opName, v, c) =>
      opName === "mul"
        ? node("aten.mul.Tensor", { self: arg.tensor(v), other: numberFor(b.typeOf(v).dtype, c) })
        : node("aten.pow.Tensor_Scalar", { self: arg.tensor(v), exponent: arg.float(c) }),
    nonzero: (v, dtype) =>
      node("aten._to_copy.default", {
        self: arg.tensor(node("aten.ne.Scalar", { self: arg.tensor(v), other: arg.int(0) })),
        dtype: arg.dtype(dtype),
      }),
    cast: (v, dtype) => node("aten._to_copy.default", { self: arg.tensor(v), dtype: arg.dtype(dtype) }),
    constant: (t: Tensor) => b.weight("composite_const", t),
    linear: (x, w) =>
      node("aten.linear.default", {
        input: arg.tensor(x),
        weight: arg.tensor(b.weight("resize_weight", w)),
        bias: arg.none,
      }),
    choose: (mask, x, y) =>
      node("aten.where.self", {
        condition: arg.tensor(b.weight("scatter_mask", mask)),
        self: arg.tensor(x),
        other: arg.tensor(y),
      }),
    take: (v, positions, shape) => {
      const n = numel(b.typeOf(v).shape);
      const flat = node("aten.view.default", { self: arg.tensor(v), size: arg.ints([n]) });
      const idx = b.weight("strided_index", tensorFromNumbers("int64", shape as Shape, positions));
      return node("aten.index.Tensor", { self: arg.tensor(flat), indices: arg.tensors([idx]) });
    },
  };
}

/** Parses the root with the catalogue (defaults applied) for a rewrite. */
function parsed<A>(opName: string, args: Readonly<Record<string, Arg>>): A {
  return getOp(opName)!.parse(args) as A;
}

export const decomposeAddc = rule({
  name: "decompose-addcmul-addcdiv",
  doc: "addcmul(x, a, b, value=v) ⇒ x + (v·a)·b; addcdiv(x, a, b, value=v) ⇒ x + (v·a)/b",
  pattern: op(["aten.addcmul.default", "aten.addcdiv.default"]),
  rewrite: ({ root }, ctx) => {
    const a = parsed<{ self: string; tensor1: string; tensor2: string; value: { value: number } }>(
      root.op,
      root.args,
    );
    const b = ctx.build();
    const v = lowerAddc(
      atenEmitter(b),
      a.self,
      a.tensor1,
      a.tensor2,
      Number(a.value.value),
      root.op === "aten.addcdiv.default",
    );
    return b.typeOf(v).dtype === root.out.type.dtype ? b.replace(v) : undefined;
  },
});

export const decomposeVectorNorm = rule({
  name: "decompose-linalg-vector-norm",
  doc: "linalg_vector_norm(x, ord, dim) ⇒ sqrt(sum(x·x)) / sum(|x|) / amax(|x|) / amin(|x|) / sum(|x|^p)^(1/p)",
  pattern: op("aten.linalg_vector_norm.default"),
  rewrite: ({ root }, ctx) => {
    const a = parsed<{
      self: string;
      ord: number;
      dim: number[] | null;
      keepdim: boolean;
      dtype: DType | null;
    }>(root.op, root.args);
    const b = ctx.build();
    const rank = b.typeOf(a.self).shape.length;
    const axes = normAxes(root.op, a.dim, rank);
    return b.replace(lowerVectorNorm(atenEmitter(b), a.self, a.ord, axes, a.keepdim, a.dtype));
  },
});

export const decomposeEinsum = rule({
  name: "decompose-einsum",
  doc: "einsum(eq, operands) ⇒ permutes, views, sums and bmm (operands contracted left to right)",
  pattern: op("aten.einsum.default"),
  rewrite: ({ root }, ctx) => {
    const a = parsed<{ equation: string; tensors: string[] }>(root.op, root.args);
    const b = ctx.build();
    const shapes = a.tensors.map((t) => b.typeOf(t).shape);
    const spec = parseEinsum(
      root.op,
      a.equation,
      shapes.map((s) => s.length),
    );
    const sizes = einsumSizes(root.op, spec, shapes);
    const v = lowerEinsum(atenEmitter(b), spec, sizes, a.tensors);
    // a lone operand whose einsum is the identity: the value itself
    return b.replace(v);
  },
});

export const decomposeAsStrided = rule({
  name: "decompose-as-strided",
  doc: "as_strided(x, size, stride, offset) ⇒ view / view + expand / index of constant positions of x's contiguous storage",
  pattern: op("aten.as_strided.default"),
  rewrite: ({ root }, ctx) => {
    const a = parsed<{ self: string; size: number[]; stride: number[]; storageOffset: number }>(
      root.op,
      root.args,
    );
    // over a strided view, as_strided reads the view's base storage: left to LibTorch
    const producer = ctx.graph.producerOf(a.self)?.node.op;
    if (producer !== undefined && STRIDED_VIEW_OPS.has(producer)) return undefined;
    const b = ctx.build();
    return b.replace(lowerAsStrided(atenEmitter(b), a.self, a));
  },
});

export const decomposeScatter = rule({
  name: "decompose-slice-select-scatter",
  doc: "slice_scatter / select_scatter(x, src, …) ⇒ where(constant mask, index(view(src, [-1]), constant positions), x)",
  pattern: op(["aten.slice_scatter.default", "aten.select_scatter.default"]),
  rewrite: ({ root }, ctx) => {
    const a = parsed<ScatterArgs>(root.op, root.args);
    const b = ctx.build();
    const { positions } = scatterPositions(root.op, a, b.typeOf(a.self).shape);
    return b.replace(lowerScatter(atenEmitter(b), a.self, a.src, positions));
  },
});

const AA: Record<string, ResizeKind> = {
  "aten._upsample_bilinear2d_aa.default": "bilinear",
  "aten._upsample_bilinear2d_aa.vec": "bilinear",
  "aten._upsample_bicubic2d_aa.default": "bicubic",
  "aten._upsample_bicubic2d_aa.vec": "bicubic",
  "aten.upsample_bicubic2d.default": "cubic",
  "aten.upsample_bicubic2d.vec": "cubic",
};

export const decomposeAaResize = rule({
  name: "decompose-antialiased-resize",
  doc: "_upsample_{bilinear,bicubic}2d_aa(x), upsample_bicubic2d(x) ⇒ linear over W, then over H, with constant filter weights",
  pattern: op(Object.keys(AA)),
  rewrite: ({ root }, ctx) => {
    const a = parsed<{
      input: string;
      outputSize: number[] | null;
      alignCorners: boolean;
      scales: (number | null)[];
    }>(root.op, root.args);
    const b = ctx.build();
    const { out, scale } = aaGeometry(root.op, a, b.typeOf(a.input).shape);
    return b.replace(lowerAaResize(atenEmitter(b), a.input, AA[root.op], out, scale, a.alignCorners));
  },
});

export const decomposeRepeatInterleave = rule({
  name: "decompose-repeat-interleave",
  doc: "repeat_interleave(x, r, dim) ⇒ reshape(expand(reshape(x, […, n, 1, …]), […, n, r, …]), […, n·r, …])",
  pattern: op("aten.repeat_interleave.self_int"),
  rewrite: ({ root }, ctx) => {
    const a = parsed<RepeatInterleaveArgs>(root.op, root.args);
    const b = ctx.build();
    return b.replace(lowerRepeatInterleave(atenEmitter(b), a.self, a));
  },
});

const NEW_FILL: Readonly<Record<string, number | "fill_value">> = {
  "aten.new_zeros.default": 0,
  "aten.new_ones.default": 1,
  "aten.new_full.default": "fill_value",
  "aten.zeros_like.default": 0,
  "aten.ones_like.default": 1,
};

/** new_zeros(x, size) and friends read only x's type: a `full` without inputs, which folding can turn constant. */
export const newFillToFull = rule({
  name: "new-fill-to-full",
  doc: "new_zeros / new_ones / new_full(x, size) and zeros_like / ones_like(x) ⇒ full(size, v, dtype)",
  pattern: op(Object.keys(NEW_FILL)),
  rewrite: ({ root }, ctx) => {
    const spec = NEW_FILL[root.op];
    const v = spec === "fill_value" ? root.args.fill_value : { kind: "int" as const, value: spec };
    if (v?.kind !== "int" && v?.kind !== "float" && v?.kind !== "bool") return undefined;
    const value = v.kind === "bool" ? (v.value ? 1 : 0) : Number(v.value);
    const t = root.out.type;
    return ctx.replaceWithNode(
      "aten.full.default",
      { size: arg.ints(t.shape), fill_value: arg.float(value), dtype: arg.dtype(t.dtype) },
      t,
    );
  },
});

export const compositeRules = ruleSet(
  newFillToFull,
  decomposeAddc,
  decomposeVectorNorm,
  decomposeEinsum,
  decomposeAsStrided,
  decomposeScatter,
  decomposeAaResize,
  decomposeRepeatInterleave,
);

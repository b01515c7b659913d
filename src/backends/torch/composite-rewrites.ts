/**
 * Composite ops whose schemas carry a Scalar (addcmul/addcdiv's `value`, linalg_vector_norm's `ord`), which
 * PyTorch 2.11's dispatcher stack cannot take: they are rewritten with the same recipes the lowering pass and
 * the converters use (src/ops/composite-lowering.ts), emitted as aten ops that the fallback can call (their own
 * Scalars go through the rules of scalar-rewrites.ts: numbers in Tensor slots become 0-d constants, add's alpha
 * the generated shim). The result is bound to the node's output with aten.alias (a view, no copy).
 */
import type { Arg, Node } from "../../ir/graph.js";
import { numel, tensorFromNumbers } from "../../ir/tensor.js";
import { normAxes } from "../../ops/composite.js";
import { type Emitter, lowerAddc, lowerVectorNorm, numberFor } from "../../ops/composite-lowering.js";
import { getOp } from "../../ops/index.js";
import type { Rule } from "../../passes/rewrite/rule.js";
import { type LoweringContext, loweringRule } from "./lowering-rule.js";
import { refuse, tensorArg as t } from "./rewrite-context.js";

/** The emitter over fallback ops: every call is one emitted (and further lowered) aten node. */
export function fallbackEmitter(cx: LoweringContext): Emitter<string> {
  const emit = (op: string, args: Record<string, Arg>) => cx.emit(op, args)[0];
  const ints = (value: readonly number[]): Arg => ({ kind: "ints", value: [...value] });
  const reduceArgs = (v: string, axes: readonly number[], keepdim: boolean): Record<string, Arg> => ({
    self: t(v),
    dim: ints(axes),
    keepdim: { kind: "bool", value: keepdim },
  });
  return {
    shape: (v) => cx.typeOf(v).shape,
    dtype: (v) => cx.typeOf(v).dtype,
    permute: (v, perm) => emit("aten.permute.default", { self: t(v), dims: ints(perm) }),
    // reshape, not view: LibTorch refuses to view a permuted tensor
    reshape: (v, shape) => emit("aten.reshape.default", { self: t(v), shape: ints(shape) }),
    expand: (v, shape) => emit("aten.expand.default", { self: t(v), size: ints(shape) }),
    bmm: (a, b) => emit("aten.bmm.default", { self: t(a), mat2: t(b) }),
    reduce: (op, v, axes, keepdim) =>
      emit(
        op === "sum" ? "aten.sum.dim_IntList" : op === "max" ? "aten.amax.default" : "aten.amin.default",
        reduceArgs(v, axes, keepdim),
      ),
    unary: (op, v) => emit(`aten.${op}.default`, { self: t(v) }),
    binary: (op, a, b) => emit(`aten.${op}.Tensor`, { self: t(a), other: t(b) }),
    scalar: (op, v, c) =>
      op === "mul"
        ? emit("aten.mul.Tensor", { self: t(v), other: numberFor(cx.typeOf(v).dtype, c) })
        : emit("aten.pow.Tensor_Scalar", { self: t(v), exponent: { kind: "float", value: c } }),
    nonzero: (v, dtype) =>
      emit("aten._to_copy.default", {
        self: t(emit("aten.ne.Scalar", { self: t(v), other: { kind: "int", value: 0 } })),
        dtype: { kind: "dtype", value: dtype },
      }),
    cast: (v, dtype) => emit("aten._to_copy.default", { self: t(v), dtype: { kind: "dtype", value: dtype } }),
    constant: (tensor) => cx.constant(`${cx.source.name}_const`, tensor),
    linear: (x, w) => {
      const name = cx.constant(`${cx.source.name}_weight`, w);
      return emit("aten.linear.default", { input: t(x), weight: t(name), bias: { kind: "none" } });
    },
    choose: (mask, x, y) => {
      const m = cx.constant(`${cx.source.name}_mask`, mask);
      return emit("aten.where.self", { condition: t(m), self: t(x), other: t(y) });
    },
    take: (v, positions, shape) => {
      const n = numel(cx.typeOf(v).shape);
      const flat = emit("aten.reshape.default", { self: t(v), shape: ints([n]) });
      const idx = cx.constant(`${cx.source.name}_index`, tensorFromNumbers("int64", shape, positions));
      return emit("aten.index.Tensor", { self: t(flat), indices: { kind: "tensors", names: [idx] } });
    },
  };
}

function bind(cx: LoweringContext, rule: string, v: string, node: Node): void {
  const want = cx.typeOf(node.outputs[0]);
  const got = cx.typeOf(v);
  if (got.dtype !== want.dtype || got.shape.join() !== want.shape.join())
    refuse(`${rule} gave ${got.dtype}[${got.shape}] for ${want.dtype}[${want.shape}]`);
  cx.emit("aten.alias.default", { self: t(v) }, node.outputs);
}

function addc(divide: boolean): Rule {
  const name = divide ? "addcdiv" : "addcmul";
  return loweringRule({
    name: `${name} → mul/div + add`,
    doc: `value is a Scalar: → add(self, ${divide ? "div" : "mul"}(mul(tensor1, c(value)), tensor2)), ATen's order of evaluation`,
    ops: `aten.${name}.default`,
    lower: (node, cx) => {
      const a = getOp(node.op)!.parse(node.args) as {
        self: string;
        tensor1: string;
        tensor2: string;
        value: { value: number };
      };
      const rule = `${name} → mul/div + add`;
      const e = fallbackEmitter(cx);
      const out = cx.typeOf(node.outputs[0]).dtype;
      const [s, t1, t2] = [a.self, a.tensor1, a.tensor2].map((x) =>
        cx.typeOf(x).dtype === out ? x : e.cast(x, out),
      );
      bind(cx, rule, lowerAddc(e, s, t1, t2, Number(a.value.value), divide), node);
    },
  });
}

export const COMPOSITE_RULES: readonly Rule[] = [
  addc(false),
  addc(true),
  loweringRule({
    name: "linalg_vector_norm → reductions",
    doc: "ord is a Scalar: → sqrt(sum(x·x)) / sum(|x|) / amax(|x|) / amin(|x|) / count of nonzeros / sum(|x|^p)^(1/p)",
    ops: "aten.linalg_vector_norm.default",
    lower: (node, cx) => {
      const a = getOp(node.op)!.parse(node.args) as {
        self: string;
        ord: number;
        dim: number[] | null;
        keepdim: boolean;
        dtype: Parameters<Emitter<string>["cast"]>[1] | null;
      };
      const rule = "linalg_vector_norm → reductions";
      const axes = normAxes(node.op, a.dim, cx.typeOf(a.self).shape.length);
      bind(cx, rule, lowerVectorNorm(fallbackEmitter(cx), a.self, a.ord, axes, a.keepdim, a.dtype), node);
    },
  }),
];

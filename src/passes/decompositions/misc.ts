// Softmax, attention, casts and Scalar overloads in their core form.

import { functionalVariant } from "../../ops/index.js";
import { arg, pickArgs } from "../rewrite/args.js";
import { anyOp, dtype, op, scalar, value } from "../rewrite/pattern.js";
import { rule, ruleSet } from "../rewrite/rule.js";

const sx = value();
const sdtype = dtype();
export const softmaxToCore = rule({
  name: "softmax-to-core",
  doc: "softmax(x, dim) / log_softmax(x, dim) ⇒ _softmax(x, dim, False) / _log_softmax(x, dim, False)",
  pattern: op(["aten.softmax.int", "aten.log_softmax.int"], { self: sx, dtype: sdtype }),
  captures: { sx, sdtype },
  rewrite: ({ sx, sdtype, root }, ctx) => {
    if (sdtype !== null && sdtype !== sx.type.dtype) return undefined;
    const core = root.op === "aten.softmax.int" ? "aten._softmax.default" : "aten._log_softmax.default";
    return ctx.replaceWithNode(
      core,
      { self: arg.tensor(sx), dim: root.args.dim, half_to_float: arg.bool(false) },
      root.out.type,
    );
  },
});

export const cpuFlashAttentionToSdpa = rule({
  name: "cpu-flash-attention-to-sdpa",
  doc: "_scaled_dot_product_flash_attention_for_cpu(q, k, v, …)[0] ⇒ scaled_dot_product_attention(q, k, v, …)",
  pattern: op("aten._scaled_dot_product_flash_attention_for_cpu.default"),
  rewrite: ({ root }, ctx) =>
    ctx.graph.isUnused(root.outputs[1].name)
      ? ctx.replaceWithNode(
          "aten.scaled_dot_product_attention.default",
          pickArgs(root.args, ["query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale"]),
          root.out.type,
        )
      : undefined,
});

const cx = value();
export const castsToCopy = rule({
  name: "cast-to-copy",
  doc: "to(x, dtype) / type_as(x, y) changing the dtype ⇒ _to_copy(x, dtype=…)",
  pattern: op(
    [
      "aten.to.dtype",
      "aten.to.dtype_layout",
      "aten.to.other",
      "aten.type_as.default",
      "aten._to_copy.default",
    ],
    { self: cx },
  ),
  captures: { cx },
  rewrite: ({ cx, root }, ctx) => {
    const target = root.out.type.dtype;
    if (target === cx.type.dtype) return undefined;
    // _to_copy with only self and dtype is the canonical cast; anything else (device, layout) is dropped.
    if (
      root.op === "aten._to_copy.default" &&
      Object.keys(root.node.args).every((k) => k === "self" || k === "dtype")
    )
      return undefined;
    return ctx.replaceWithNode(
      "aten._to_copy.default",
      { self: arg.tensor(cx), dtype: arg.dtype(target) },
      root.out.type,
    );
  },
});

const SCALAR_OVERLOADS: Readonly<Record<string, string>> = {
  "aten.add.Scalar": "aten.add.Tensor",
  "aten.sub.Scalar": "aten.sub.Tensor",
  "aten.mul.Scalar": "aten.mul.Tensor",
  "aten.div.Scalar": "aten.div.Tensor",
};

const scalarLhs = value();
export const scalarOverloadToTensor = rule({
  name: "scalar-overload-to-tensor",
  doc: "add/sub/mul/div.Scalar(x, c) ⇒ add/sub/mul/div.Tensor(x, c) with c a literal operand",
  pattern: op(Object.keys(SCALAR_OVERLOADS), { self: scalarLhs }),
  captures: { scalarLhs },
  rewrite: ({ root }, ctx) => ctx.replaceWithNode(SCALAR_OVERLOADS[root.op], { ...root.args }, root.out.type),
});

const fx = value();
const fill = scalar();
export const fullLikeToFull = rule({
  name: "full-like-to-full",
  doc: "full_like(x, v) ⇒ full(x.shape, v) (it reads only x's type; constant folding may then fold it)",
  pattern: op("aten.full_like.default", { self: fx, fill_value: fill }),
  captures: { fx, fill },
  rewrite: ({ fill, root }, ctx) =>
    ctx.replaceWithNode(
      "aten.full.default",
      {
        size: arg.ints(root.out.type.shape),
        fill_value: arg.float(fill),
        dtype: arg.dtype(root.out.type.dtype),
      },
      root.out.type,
    ),
});

/**
 * An in-place op whose operand nothing reads afterwards is its functional twin: the mutation is
 * unobservable. (torch.export's default IR keeps some, like relu_ after a batch norm.)
 */
export const inPlaceToFunctional = rule({
  name: "in-place-to-functional",
  doc: "op_(x, …) ⇒ op(x, …) when no later node reads x",
  pattern: anyOp({ where: (n) => functionalVariant(n.op) !== undefined }),
  rewrite: ({ root }, ctx) => {
    const self = root.node.args.self;
    if (self?.kind !== "tensor" || ctx.graph.isGraphOutput(self.name)) return undefined;
    const at = ctx.graph.orderOf(root.node);
    if (ctx.graph.usersOf(self.name).some((u) => ctx.graph.orderOf(u) > at)) return undefined;
    const b = ctx.build();
    const outs = b.nodeOutputs(
      functionalVariant(root.op)!,
      { ...root.node.args },
      root.outputs.map((o) => o.type),
    );
    return b.replace(Object.fromEntries(root.outputs.map((o, i) => [o.name, outs[i]])));
  },
});

export const miscRules = ruleSet(
  softmaxToCore,
  cpuFlashAttentionToSdpa,
  castsToCopy,
  scalarOverloadToTensor,
  fullLikeToFull,
  inPlaceToFunctional,
);

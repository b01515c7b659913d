// Every shape-only reinterpretation becomes one op, aten.view.default with the explicit output shape, so
// converters and fusion see one form. Shapes are static, so the node's output type is the target shape.
// Idempotent: each rule's result is a form no rule matches again.
import { type Pass, rulePass } from "./pass.js";
import { arg } from "./rewrite/args.js";
import { ints, op, value, where } from "./rewrite/pattern.js";
import { rule, ruleSet } from "./rewrite/rule.js";

export const VIEW = "aten.view.default";
export const PERMUTE = "aten.permute.default";

const sameShape = (a: readonly number[], b: readonly number[]) => a.join() === b.join();

const RESHAPES = [
  "aten.reshape.default",
  "aten._unsafe_view.default",
  "aten.view_copy.default",
  "aten._reshape_alias.default",
  "aten.flatten.using_ints",
  "aten.unflatten.int",
  "aten.squeeze.default",
  "aten.squeeze.dim",
  "aten.squeeze.dims",
  "aten.unsqueeze.default",
];

const x = value();
export const reshapeToView = rule({
  name: "reshape-to-view",
  doc: "reshape / _unsafe_view / flatten / unflatten / squeeze / unsqueeze(x) ⇒ view(x, out.shape)",
  pattern: op(RESHAPES, { self: x }),
  captures: { x },
  rewrite: ({ x, root }, ctx) =>
    ctx.replaceWithNode(VIEW, { self: arg.tensor(x), size: arg.ints(root.out.type.shape) }, root.out.type),
});

const y = value();
export const removeIdentityView = rule({
  name: "remove-identity-view",
  doc: "view(x, x.shape) ⇒ x",
  pattern: op(VIEW, { self: y }),
  captures: { y },
  rewrite: ({ y, root }, ctx) =>
    sameShape(y.type.shape, root.out.type.shape) ? ctx.replaceWith(y) : undefined,
});

const inner = value();
export const mergeViews = rule({
  name: "merge-views",
  doc: "view(view(x, s1), s2) ⇒ view(x, s2)",
  pattern: op(VIEW, { self: op(VIEW, { self: inner }) }),
  captures: { inner },
  rewrite: ({ inner, root }, ctx) =>
    ctx.replaceWithNode(
      VIEW,
      { self: arg.tensor(inner), size: arg.ints(root.out.type.shape) },
      root.out.type,
    ),
});

const size = ints();
export const explicitViewSize = rule({
  name: "explicit-view-size",
  doc: "view(x, [.., -1, ..]) ⇒ view(x, out.shape)",
  pattern: op(VIEW, { self: value(), size: where(size, (s) => s.includes(-1), "has -1") }),
  captures: { size },
  rewrite: ({ root }, ctx) =>
    ctx.replaceWithNode(VIEW, { ...root.args, size: arg.ints(root.out.type.shape) }, root.out.type),
});

const expanded = value();
export const removeIdentityExpand = rule({
  name: "remove-identity-expand",
  doc: "expand(x, x.shape) ⇒ x",
  pattern: op("aten.expand.default", { self: expanded }),
  captures: { expanded },
  rewrite: ({ expanded, root }, ctx) =>
    sameShape(expanded.type.shape, root.out.type.shape) ? ctx.replaceWith(expanded) : undefined,
});

const expandSize = ints();
export const explicitExpandSize = rule({
  name: "explicit-expand-size",
  doc: "expand(x, [.., -1, ..]) ⇒ expand(x, out.shape)",
  pattern: op("aten.expand.default", {
    self: value(),
    size: where(expandSize, (s) => s.includes(-1), "has -1"),
  }),
  captures: { expandSize },
  rewrite: ({ root }, ctx) =>
    ctx.replaceWithNode(
      "aten.expand.default",
      { ...root.args, size: arg.ints(root.out.type.shape) },
      root.out.type,
    ),
});

const permuted = value();
const dims = ints();
export const removeIdentityPermute = rule({
  name: "remove-identity-permute",
  doc: "permute(x, [0, 1, …, n-1]) ⇒ x",
  pattern: op(PERMUTE, { self: permuted, dims }),
  captures: { permuted, dims },
  rewrite: ({ permuted, dims }, ctx) => {
    const rank = permuted.type.shape.length;
    return dims.every((d, i) => (d + rank) % rank === i) ? ctx.replaceWith(permuted) : undefined;
  },
});

const source = value();
const first = ints();
const second = ints();
export const mergePermutes = rule({
  name: "merge-permutes",
  doc: "permute(permute(x, p), q) ⇒ permute(x, p∘q)",
  pattern: op(PERMUTE, { self: op(PERMUTE, { self: source, dims: first }), dims: second }),
  captures: { source, first, second },
  rewrite: ({ source, first, second, root }, ctx) => {
    const rank = source.type.shape.length;
    const composed = second.map((d) => (first[(d + rank) % rank] + rank) % rank);
    return ctx.replaceWithNode(
      PERMUTE,
      { self: arg.tensor(source), dims: arg.ints(composed) },
      root.out.type,
    );
  },
});

/**
 * A permute that only moves size-1 dimensions keeps the element order: it is a view. Kept after the
 * permute rules so permute(permute) merges first.
 */
const moved = value();
const order = ints();
export const unitPermuteToView = rule({
  name: "unit-permute-to-view",
  doc: "permute(x, p) moving only size-1 dims ⇒ view(x, out.shape)",
  pattern: op(PERMUTE, { self: moved, dims: order }),
  captures: { moved, order },
  rewrite: ({ moved, order, root }, ctx) => {
    const rank = moved.type.shape.length;
    const big = order.map((d) => (d + rank) % rank).filter((d) => moved.type.shape[d] !== 1);
    if (!big.every((d, i) => i === 0 || d > big[i - 1])) return undefined;
    return ctx.replaceWithNode(
      VIEW,
      { self: arg.tensor(moved), size: arg.ints(root.out.type.shape) },
      root.out.type,
    );
  },
});

/**
 * A linear acts on each row, so it commutes with a permute that keeps the feature axis last. Moved below the
 * linear, the permute is a view of the linear's output (nn.MultiheadAttention's sequence-first transpose in front
 * of its qkv projection was a copy of the activations in every layer).
 */
const rowsIn = value();
const rowOrder = ints();
export const linearBeforePermute = rule({
  name: "linear-before-permute",
  doc: "linear(permute(x, p), w, b) with p keeping the last dim ⇒ permute(linear(x, w, b), p)",
  pattern: op("aten.linear.default", { input: op(PERMUTE, { self: rowsIn, dims: rowOrder }) }),
  captures: { rowsIn, rowOrder },
  rewrite: ({ rowsIn, rowOrder, root }, ctx) => {
    const rank = rowsIn.type.shape.length;
    const p = rowOrder.map((d) => (d + rank) % rank);
    const permuted = root.args.input?.kind === "tensor" ? root.args.input.name : undefined;
    if (rank < 2 || p[rank - 1] !== rank - 1 || !permuted || !ctx.graph.hasSingleUser(permuted))
      return undefined;
    const out = root.out.type;
    // a 1-D weight drops the feature dim: the permute would no longer fit the result
    if (out.shape.length !== rank) return undefined;
    const b = ctx.build();
    const rows = b.node(
      "aten.linear.default",
      { ...root.args, input: arg.tensor(rowsIn) },
      { dtype: out.dtype, shape: [...rowsIn.type.shape.slice(0, -1), out.shape[rank - 1]] },
    );
    const y = b.node(PERMUTE, { self: arg.tensor(rows), dims: arg.ints(p) }, out);
    return b.replace({ [root.outputs[0].name]: y });
  },
});

export const viewRules = ruleSet(
  reshapeToView,
  removeIdentityView,
  mergeViews,
  explicitViewSize,
  removeIdentityExpand,
  explicitExpandSize,
  removeIdentityPermute,
  mergePermutes,
  unitPermuteToView,
  linearBeforePermute,
);

export const canonicalizeViews: Pass = rulePass(
  "canonicalize-views",
  "reshape/flatten/squeeze/unsqueeze/_unsafe_view ⇒ view; merge and drop identity views, expands, permutes; permutes below linears",
  viewRules,
);

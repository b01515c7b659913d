// Matmuls with a weight become aten.linear (cuBLASLt fuses bias and activation into it); the rest become
// mm or bmm with explicit views. Core ATen writes linear as permute + addmm (with views around it for
// inputs of rank > 2); those patterns are recomposed here so both IR flavours end in the same graph.
import type { TensorType } from "../../ir/graph.js";
import { arg } from "../rewrite/args.js";
import { commutative, ints, none, op, optional, scalar, value, weight } from "../rewrite/pattern.js";
import { rule, ruleSet } from "../rewrite/rule.js";

const LINEAR = "aten.linear.default";
const VIEW = "aten.view.default";
const RESHAPES = [VIEW, "aten._unsafe_view.default", "aten.reshape.default"];
const transposedWeight = (w: ReturnType<typeof weight>) =>
  op("aten.permute.default", { self: w, dims: ints([1, 0]) });

const x = value({ rank: 2 });
const w = weight({ rank: 2 });
const bias = value({ rank: 1 });
export const addmmToLinear = rule({
  name: "addmm-to-linear",
  doc: "addmm(b, x, permute(W, [1, 0])) ⇒ linear(x, W, b)",
  pattern: op("aten.addmm.default", {
    self: bias,
    mat1: x,
    mat2: transposedWeight(w),
    beta: scalar(1),
    alpha: scalar(1),
  }),
  captures: { x, w, bias },
  rewrite: ({ x, w, bias, root }, ctx) =>
    ctx.replaceWithNode(
      LINEAR,
      { input: arg.tensor(x), weight: arg.tensor(w), bias: arg.tensor(bias) },
      root.out.type,
    ),
});

const mx = value({ rank: 2 });
const mw = weight({ rank: 2 });
export const mmToLinear = rule({
  name: "mm-to-linear",
  doc: "mm(x, permute(W, [1, 0])) ⇒ linear(x, W)",
  pattern: op("aten.mm.default", { self: mx, mat2: transposedWeight(mw) }),
  captures: { mx, mw },
  rewrite: ({ mx, mw, root }, ctx) =>
    ctx.replaceWithNode(
      LINEAR,
      { input: arg.tensor(mx), weight: arg.tensor(mw), bias: arg.none },
      root.out.type,
    ),
});

const folded = value();
const inner = op(LINEAR, { input: op(RESHAPES, { self: folded }, { singleUse: true }) }, { singleUse: true });
export const flattenedLinearToLinear = rule({
  name: "flattened-linear-to-linear",
  doc: "view(linear(view(x, [M, K]), W, b), [..., N]) ⇒ linear(x, W, b) for x of rank > 2",
  pattern: op(RESHAPES, { self: inner }),
  captures: { folded, inner },
  rewrite: ({ folded, inner, root }, ctx) => {
    const lead = folded.type.shape.slice(0, -1);
    const n = inner.out.type.shape[1];
    if (lead.length < 2 || root.out.type.shape.join() !== [...lead, n].join()) return undefined;
    return ctx.replaceWithNode(LINEAR, { ...inner.args, input: arg.tensor(folded) }, root.out.type);
  },
});

const a = value();
const bw = weight({ rank: 2 });
export const matmulWeightToLinear = rule({
  name: "matmul-weight-to-linear",
  doc: "matmul(x, W) with a 2-D weight ⇒ linear(x, permute(W, [1, 0])) (the permute then folds)",
  pattern: op("aten.matmul.default", { self: a, other: bw }),
  captures: { a, bw },
  rewrite: ({ a, bw, root }, ctx) => {
    if (a.type.shape.length < 2) return undefined;
    const b = ctx.build();
    const [k, n] = bw.type.shape;
    const wt = b.node(
      "aten.permute.default",
      { self: arg.tensor(bw), dims: arg.ints([1, 0]) },
      { dtype: bw.type.dtype, shape: [n, k] },
    );
    return b.replace(
      b.node(LINEAR, { input: arg.tensor(a), weight: arg.tensor(wt), bias: arg.none }, root.out.type),
    );
  },
});

function broadcastBatch(p: readonly number[], q: readonly number[]): number[] | undefined {
  const out: number[] = [];
  for (let i = 1; i <= Math.max(p.length, q.length); i++) {
    const [x, y] = [p[p.length - i] ?? 1, q[q.length - i] ?? 1];
    if (x !== y && x !== 1 && y !== 1) return undefined;
    out.unshift(Math.max(x, y));
  }
  return out;
}

const lhs = value();
const rhs = value();
export const matmulToMmOrBmm = rule({
  name: "matmul-to-mm-bmm",
  doc: "matmul(a, b) of rank ≥ 2 ⇒ mm(a, b), or view(bmm(view(expand(a)), view(expand(b))))",
  pattern: op("aten.matmul.default", { self: lhs, other: rhs }),
  captures: { lhs, rhs },
  rewrite: ({ lhs, rhs, root }, ctx) => {
    const [p, q] = [lhs.type.shape, rhs.type.shape];
    if (p.length < 2 || q.length < 2) return undefined;
    const b = ctx.build();
    const dtype = root.out.type.dtype;
    const t = (shape: readonly number[]): TensorType => ({ dtype, shape });
    const [m, k, n] = [p[p.length - 2], p[p.length - 1], q[q.length - 1]];
    if (p.length === 2 && q.length === 2) {
      return b.replace(
        b.node("aten.mm.default", { self: arg.tensor(lhs), mat2: arg.tensor(rhs) }, root.out.type),
      );
    }
    if (q.length === 2) {
      const rows = p.slice(0, -1).reduce((x, y) => x * y, 1);
      const flat = b.node(VIEW, { self: arg.tensor(lhs), size: arg.ints([rows, k]) }, t([rows, k]));
      const product = b.node(
        "aten.mm.default",
        { self: arg.tensor(flat), mat2: arg.tensor(rhs) },
        t([rows, n]),
      );
      return b.replace(
        b.node(VIEW, { self: arg.tensor(product), size: arg.ints(root.out.type.shape) }, root.out.type),
      );
    }
    const batch = broadcastBatch(p.slice(0, -2), q.slice(0, -2));
    if (!batch) return undefined;
    const count = batch.reduce((x, y) => x * y, 1);
    const batched = (v: typeof lhs, rows: number, cols: number) => {
      const full = [...batch, rows, cols];
      const e =
        v.type.shape.join() === full.join()
          ? v.name
          : b.node("aten.expand.default", { self: arg.tensor(v), size: arg.ints(full) }, t(full));
      return b.node(
        VIEW,
        { self: arg.tensor(e), size: arg.ints([count, rows, cols]) },
        t([count, rows, cols]),
      );
    };
    const product = b.node(
      "aten.bmm.default",
      { self: arg.tensor(batched(lhs, m, k)), mat2: arg.tensor(batched(rhs, k, n)) },
      t([count, m, n]),
    );
    return b.replace(
      b.node(VIEW, { self: arg.tensor(product), size: arg.ints(root.out.type.shape) }, root.out.type),
    );
  },
});

const bx = value({ rank: 3 });
const bwt = weight({ rank: 2 });
export const batchedWeightMatmulToLinear = rule({
  name: "bmm-expanded-weight-to-linear",
  doc: "bmm(x, expand(permute(W, [1, 0]), [B, K, N])) ⇒ linear(x, W)",
  pattern: op("aten.bmm.default", {
    self: bx,
    mat2: op("aten.expand.default", { self: transposedWeight(bwt) }),
  }),
  captures: { bx, bwt },
  rewrite: ({ bx, bwt, root }, ctx) =>
    ctx.replaceWithNode(
      LINEAR,
      { input: arg.tensor(bx), weight: arg.tensor(bwt), bias: arg.none },
      root.out.type,
    ),
});

const lx = value();
const lw = value();
const addend = weight({ rank: 1 });
export const biasAddIntoLinear = rule({
  name: "bias-add-into-linear",
  doc: "linear(x, W) + b with b of shape [N] ⇒ linear(x, W, b)",
  pattern: commutative(
    "aten.add.Tensor",
    op(LINEAR, { input: lx, weight: lw, bias: none() }, { singleUse: true }),
    addend,
    { alpha: optional(scalar(1)) },
  ),
  captures: { lx, lw, addend },
  rewrite: ({ lx, lw, addend, root }, ctx) => {
    const n = lw.type.shape[0];
    if (addend.type.shape[0] !== n || addend.type.dtype !== root.out.type.dtype) return undefined;
    return ctx.replaceWithNode(
      LINEAR,
      { input: arg.tensor(lx), weight: arg.tensor(lw), bias: arg.tensor(addend) },
      root.out.type,
    );
  },
});

export const matmulRules = ruleSet(
  addmmToLinear,
  mmToLinear,
  flattenedLinearToLinear,
  matmulWeightToLinear,
  matmulToMmOrBmm,
  batchedWeightMatmulToLinear,
  biasAddIntoLinear,
);

// Transposes, broadcasts, stacking, narrowing and padding in the one form each the core set keeps.
import { arg } from "../rewrite/args.js";
import { int, op, str, value } from "../rewrite/pattern.js";
import { rule, ruleSet } from "../rewrite/rule.js";
import { normDim } from "./int-lists.js";

const PERMUTE = "aten.permute.default";

const tx = value();
const dim0 = int();
const dim1 = int();
export const transposeToPermute = rule({
  name: "transpose-to-permute",
  doc: "transpose(x, i, j) ⇒ permute(x, dims with i and j swapped)",
  pattern: op("aten.transpose.int", { self: tx, dim0, dim1 }),
  captures: { tx, dim0, dim1 },
  rewrite: ({ tx, dim0, dim1, root }, ctx) => {
    const rank = tx.type.shape.length;
    const dims = [...Array(rank).keys()];
    const [i, j] = [normDim(dim0, rank), normDim(dim1, rank)];
    [dims[i], dims[j]] = [dims[j], dims[i]];
    return ctx.replaceWithNode(PERMUTE, { self: arg.tensor(tx), dims: arg.ints(dims) }, root.out.type);
  },
});

const t = value();
export const tToPermute = rule({
  name: "t-to-permute",
  doc: "t(x) ⇒ permute(x, [1, 0]) (x itself below rank 2)",
  pattern: op("aten.t.default", { self: t }),
  captures: { t },
  rewrite: ({ t, root }, ctx) =>
    t.type.shape.length < 2
      ? ctx.replaceWith(t)
      : ctx.replaceWithNode(PERMUTE, { self: arg.tensor(t), dims: arg.ints([1, 0]) }, root.out.type),
});

const ex = value();
export const expandAsToExpand = rule({
  name: "expand-as-to-expand",
  doc: "expand_as(x, y) ⇒ expand(x, y.shape)",
  pattern: op("aten.expand_as.default", { self: ex }),
  captures: { ex },
  rewrite: ({ ex, root }, ctx) =>
    ctx.replaceWithNode(
      "aten.expand.default",
      { self: arg.tensor(ex), size: arg.ints(root.out.type.shape) },
      root.out.type,
    ),
});

const nx = value();
const ndim = int();
const start = int();
const length = int();
export const narrowToSlice = rule({
  name: "narrow-to-slice",
  doc: "narrow(x, dim, start, length) ⇒ slice(x, dim, start, start + length, 1)",
  pattern: op("aten.narrow.default", { self: nx, dim: ndim, start, length }),
  captures: { nx, ndim, start, length },
  rewrite: ({ nx, ndim, start, length, root }, ctx) => {
    const size = nx.type.shape[normDim(ndim, nx.type.shape.length)];
    const from = start < 0 ? start + size : start;
    return ctx.replaceWithNode(
      "aten.slice.Tensor",
      {
        self: arg.tensor(nx),
        dim: arg.int(ndim),
        start: arg.int(from),
        end: arg.int(from + length),
        step: arg.int(1),
      },
      root.out.type,
    );
  },
});

const sdim = int();
export const stackToCat = rule({
  name: "stack-to-cat",
  doc: "stack([a, b, …], dim) ⇒ cat([view(a), view(b), …], dim) with a size-1 dim inserted",
  pattern: op("aten.stack.default", { dim: sdim }),
  captures: { sdim },
  rewrite: ({ sdim, root }, ctx) => {
    const list = root.args.tensors;
    if (list?.kind !== "tensors" || list.names.some((n) => n === null)) return undefined;
    const rank = root.out.type.shape.length;
    const d = normDim(sdim, rank);
    const b = ctx.build();
    const parts = (list.names as string[]).map((name) => {
      const type = ctx.graph.typeOf(name);
      const shape = [...type.shape.slice(0, d), 1, ...type.shape.slice(d)];
      return b.node(
        "aten.view.default",
        { self: arg.tensor(name), size: arg.ints(shape) },
        { dtype: type.dtype, shape },
      );
    });
    return b.replace(
      b.node("aten.cat.default", { tensors: arg.tensors(parts), dim: arg.int(d) }, root.out.type),
    );
  },
});

const px = value();
export const padToConstantPad = rule({
  name: "pad-to-constant-pad",
  doc: "pad(x, pad, mode='constant', value) ⇒ constant_pad_nd(x, pad, value)",
  pattern: op("aten.pad.default", { self: px, mode: str("constant") }),
  captures: { px },
  rewrite: ({ px, root }, ctx) => {
    const v = root.args.value;
    const padValue = v?.kind === "float" || v?.kind === "int" ? v : arg.float(0);
    return ctx.replaceWithNode(
      "aten.constant_pad_nd.default",
      { self: arg.tensor(px), pad: root.args.pad, value: padValue },
      root.out.type,
    );
  },
});

export const layoutRules = ruleSet(
  transposeToPermute,
  tToPermute,
  expandAsToExpand,
  narrowToSlice,
  stackToCat,
  padToConstantPad,
);

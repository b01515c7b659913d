// Activations as single named ops. Core ATen spells silu, hardswish and hardsigmoid as small pointwise
// expressions; they are recomposed so both IR flavours reach the same graph and a backend sees one op.
import { arg } from "../rewrite/args.js";
import { commutative, constantScalar, op, optional, scalar, value } from "../rewrite/pattern.js";
import { rule, ruleSet } from "../rewrite/rule.js";

const HARDTANH = "aten.hardtanh.default";
const CLAMP = "aten.clamp.default";

const r6 = value();
export const relu6ToHardtanh = rule({
  name: "relu6-to-hardtanh",
  doc: "relu6(x) ⇒ hardtanh(x, 0, 6)",
  pattern: op("aten.relu6.default", { self: r6 }),
  captures: { r6 },
  rewrite: ({ r6, root }, ctx) =>
    ctx.replaceWithNode(
      HARDTANH,
      { self: arg.tensor(r6), min_val: arg.float(0), max_val: arg.float(6) },
      root.out.type,
    ),
});

const cm = value();
const cmMin = scalar();
export const clampMinToClamp = rule({
  name: "clamp-min-to-clamp",
  doc: "clamp_min(x, a) ⇒ clamp(x, a, None)",
  pattern: op("aten.clamp_min.default", { self: cm, min: cmMin }),
  captures: { cm, cmMin },
  rewrite: ({ cm, cmMin, root }, ctx) =>
    ctx.replaceWithNode(CLAMP, { self: arg.tensor(cm), min: arg.float(cmMin), max: arg.none }, root.out.type),
});

const cM = value();
const cMMax = scalar();
export const clampMaxToClamp = rule({
  name: "clamp-max-to-clamp",
  doc: "clamp_max(x, b) ⇒ clamp(x, None, b)",
  pattern: op("aten.clamp_max.default", { self: cM, max: cMMax }),
  captures: { cM, cMMax },
  rewrite: ({ cM, cMMax, root }, ctx) =>
    ctx.replaceWithNode(CLAMP, { self: arg.tensor(cM), min: arg.none, max: arg.float(cMMax) }, root.out.type),
});

const inner = value();
const lo1 = optional(scalar());
const hi1 = optional(scalar());
const lo2 = optional(scalar());
const hi2 = optional(scalar());
export const mergeClamps = rule({
  name: "merge-clamps",
  doc: "clamp(clamp(x, a1, b1), a2, b2) ⇒ clamp(x, max(a1, a2), min(b1, b2))",
  pattern: op(CLAMP, { self: op(CLAMP, { self: inner, min: lo1, max: hi1 }), min: lo2, max: hi2 }),
  captures: { inner, lo1, hi1, lo2, hi2 },
  rewrite: ({ inner, lo1, hi1, lo2, hi2, root }, ctx) => {
    const pick = (a: number | null, b: number | null, f: (x: number, y: number) => number) =>
      a === null ? b : b === null ? a : f(a, b);
    const lo = pick(lo1, lo2, Math.max);
    const hi = pick(hi1, hi2, Math.min);
    // Disjoint ranges would make the nested form a constant, which a merged clamp does not express.
    if (lo !== null && hi !== null && lo > hi) return undefined;
    const bound = (v: number | null) => (v === null ? arg.none : arg.float(v));
    return ctx.replaceWithNode(
      CLAMP,
      { self: arg.tensor(inner), min: bound(lo), max: bound(hi) },
      root.out.type,
    );
  },
});

const rx = value();
const rlo = optional(scalar());
const rhi = optional(scalar());
export const mergeReluIntoClamp = rule({
  name: "merge-relu-into-clamp",
  doc: "clamp(relu(x), a, b) ⇒ clamp(x, max(a, 0), b)",
  pattern: op(CLAMP, { self: op("aten.relu.default", { self: rx }), min: rlo, max: rhi }),
  captures: { rx, rlo, rhi },
  rewrite: ({ rx, rlo, rhi, root }, ctx) => {
    const lo = Math.max(rlo ?? 0, 0);
    if (rhi !== null && rhi < lo) return undefined;
    const max = rhi === null ? arg.none : arg.float(rhi);
    return ctx.replaceWithNode(CLAMP, { self: arg.tensor(rx), min: arg.float(lo), max }, root.out.type);
  },
});

const cx = value({ floating: true });
const lo = optional(scalar());
const hi = optional(scalar());
export const clampToActivation = rule({
  name: "clamp-to-activation",
  doc: "clamp(x, a, b) ⇒ hardtanh(x, a, b); clamp(x, 0, None) ⇒ relu(x) (floating x)",
  pattern: op(CLAMP, { self: cx, min: lo, max: hi }),
  captures: { cx, lo, hi },
  rewrite: ({ cx, lo, hi, root }, ctx) => {
    if (lo !== null && hi !== null) {
      return ctx.replaceWithNode(
        HARDTANH,
        { self: arg.tensor(cx), min_val: arg.float(lo), max_val: arg.float(hi) },
        root.out.type,
      );
    }
    if (lo === 0 && hi === null)
      return ctx.replaceWithNode("aten.relu.default", { self: arg.tensor(cx) }, root.out.type);
    return undefined;
  },
});

const sx = value();
export const siluFromSigmoid = rule({
  name: "silu-from-sigmoid",
  doc: "x * sigmoid(x) ⇒ silu(x)",
  pattern: commutative("aten.mul.Tensor", sx, op("aten.sigmoid.default", { self: sx })),
  captures: { sx },
  rewrite: ({ sx, root }, ctx) =>
    ctx.replaceWithNode("aten.silu.default", { self: arg.tensor(sx) }, root.out.type),
});

/** hardtanh(x + 3, 0, 6), the shared core of hardsigmoid and hardswish. */
function shiftedRelu6(x: ReturnType<typeof value>) {
  const plus3 = commutative("aten.add.Tensor", x, constantScalar(3), { alpha: optional(scalar(1)) });
  return op(HARDTANH, { self: plus3, min_val: scalar(0), max_val: scalar(6) });
}

const hx = value();
export const hardsigmoidFromClamp = rule({
  name: "hardsigmoid-from-clamp",
  doc: "hardtanh(x + 3, 0, 6) / 6 ⇒ hardsigmoid(x)",
  pattern: op("aten.div.Tensor", { self: shiftedRelu6(hx), other: constantScalar(6) }),
  captures: { hx },
  rewrite: ({ hx, root }, ctx) =>
    ctx.replaceWithNode("aten.hardsigmoid.default", { self: arg.tensor(hx) }, root.out.type),
});

const wx = value();
export const hardswishFromClamp = rule({
  name: "hardswish-from-clamp",
  doc: "x * hardtanh(x + 3, 0, 6) / 6 ⇒ hardswish(x)",
  pattern: op("aten.div.Tensor", {
    self: commutative("aten.mul.Tensor", wx, shiftedRelu6(wx)),
    other: constantScalar(6),
  }),
  captures: { wx },
  rewrite: ({ wx, root }, ctx) =>
    ctx.replaceWithNode("aten.hardswish.default", { self: arg.tensor(wx) }, root.out.type),
});

const hs = value();
export const hardswishFromHardsigmoid = rule({
  name: "hardswish-from-hardsigmoid",
  doc: "x * hardsigmoid(x) ⇒ hardswish(x)",
  pattern: commutative("aten.mul.Tensor", hs, op("aten.hardsigmoid.default", { self: hs })),
  captures: { hs },
  rewrite: ({ hs, root }, ctx) =>
    ctx.replaceWithNode("aten.hardswish.default", { self: arg.tensor(hs) }, root.out.type),
});

export const activationRules = ruleSet(
  relu6ToHardtanh,
  clampMinToClamp,
  clampMaxToClamp,
  mergeClamps,
  mergeReluIntoClamp,
  clampToActivation,
  siluFromSigmoid,
  hardsigmoidFromClamp,
  hardswishFromClamp,
  hardswishFromHardsigmoid,
);

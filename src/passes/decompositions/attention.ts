// Core ATen writes scaled_dot_product_attention as its math: q·s and kᵀ·s, a bmm, a "safe" softmax
// (rows of -inf give zeros), a second bmm, with views to and from [B·H, T, D]. This recomposes it into the
// one op a fused attention kernel implements, so both IR flavours reach the same graph.
import { arg } from "../rewrite/args.js";
import type { NodePattern } from "../rewrite/pattern.js";
import { bool, constantScalar, int, ints, op, scalar, value, where } from "../rewrite/pattern.js";
import { type Rule, rule, ruleSet } from "../rewrite/rule.js";

const VIEW = "aten.view.default";
const BMM = "aten.bmm.default";
const NOT = "aten.logical_not.default";

const lastDim = () => where(int(), (d) => d === -1 || d === 3, "last dim");

/** softmax(s) over the last dim, optionally in core ATen's safe form: where(¬any(s ≠ -inf), 0, softmax(s)). */
function probabilitiesOf(scores: NodePattern, safe: boolean): NodePattern {
  const softmax = op("aten._softmax.default", { self: scores, dim: lastDim() });
  if (!safe) return softmax;
  const finite = op(NOT, {
    self: op("aten.eq.Scalar", { self: scores, other: scalar(Number.NEGATIVE_INFINITY) }),
  });
  const allMasked = op(NOT, {
    self: op("aten.any.dim", { self: finite, dim: lastDim(), keepdim: bool(true) }),
  });
  const zeros = op(["aten.full.default", "aten.full_like.default"], { fill_value: scalar(0) });
  return op("aten.where.self", { condition: allMasked, self: zeros, other: softmax });
}

function attentionRule(name: string, safe: boolean): Rule {
  const q = value({ rank: 4 });
  const k = value({ rank: 4 });
  const v = value({ rank: 4 });
  const qScale = constantScalar();
  const kScale = constantScalar();
  const scaledQ = op("aten.mul.Tensor", { self: q, other: qScale });
  const scaledKt = op("aten.mul.Tensor", {
    self: op("aten.permute.default", { self: k, dims: ints([0, 1, 3, 2]) }),
    other: kScale,
  });
  const scores = op(VIEW, {
    self: op(BMM, { self: op(VIEW, { self: scaledQ }), mat2: op(VIEW, { self: scaledKt }) }),
  });
  const probabilities = probabilitiesOf(scores, safe);
  return rule({
    name,
    doc: `view(bmm(view(${safe ? "safe_" : ""}softmax(view(bmm(view(q·a), view(kᵀ·b))))), view(v))) ⇒ scaled_dot_product_attention(q, k, v, scale=a·b)`,
    pattern: op(VIEW, {
      self: op(BMM, { self: op(VIEW, { self: probabilities }), mat2: op(VIEW, { self: v }) }),
    }),
    captures: { q, k, v, qScale, kScale },
    rewrite: ({ q, k, v, qScale, kScale, root }, ctx) => {
      const [b, h, t, d] = q.type.shape;
      const [kb, kh, s, kd] = k.type.shape;
      const [vb, vh, vs, dv] = v.type.shape;
      const fits = b === kb && b === vb && h === kh && h === vh && d === kd && s === vs;
      if (!fits || root.out.type.shape.join() !== [b, h, t, dv].join()) return undefined;
      return ctx.replaceWithNode(
        "aten.scaled_dot_product_attention.default",
        {
          query: arg.tensor(q),
          key: arg.tensor(k),
          value: arg.tensor(v),
          attn_mask: arg.none,
          dropout_p: arg.float(0),
          is_causal: arg.bool(false),
          scale: arg.float(qScale * kScale),
        },
        root.out.type,
      );
    },
  });
}

export const safeAttentionToSdpa = attentionRule("safe-attention-math-to-sdpa", true);
export const attentionToSdpa = attentionRule("attention-math-to-sdpa", false);

export const attentionRules = ruleSet(safeAttentionToSdpa, attentionToSdpa);

// Attention written out by hand, as timm's non-fused Attention and torchvision's Swin-T spell it:
// (q·a) @ kᵀ [· c] [+ bias] [+ mask] → softmax → @ v. In core form that is a bmm between views, additive terms
// (Swin's relative-position bias, and its shifted-window mask added through a 5-d view of the scores), a
// softmax and a second bmm. decompositions/attention.ts recomposes only the exact core-ATen spelling of SDPA
// (scales on both q and kᵀ, nothing added); this rule takes the rest into one scaled_dot_product_attention
// whose attn_mask is the sum of the additive terms, so the CUDA backend runs its flash kernel on it.
import type { Arg, Node } from "../ir/graph.js";
import { numel, toFloat64Array } from "../ir/tensor.js";
import { arg } from "./rewrite/args.js";
import type { GraphView } from "./rewrite/graph-view.js";
import { bool, int, op, value, where } from "./rewrite/pattern.js";
import { type Rule, rule, ruleSet } from "./rewrite/rule.js";

const VIEW = "aten.view.default";
const BMM = "aten.bmm.default";

interface Term {
  /** An additive term, broadcastable to `shape`. */
  readonly name: string;
  /** The shape of the scores where it was added (a regrouping of the batch axes of the 4-d scores). */
  readonly shape: readonly number[];
}

interface Scores {
  readonly q: string;
  readonly k: string;
  /** The product of every constant factor on q, on kᵀ and on the scores. */
  readonly scale: number;
  readonly terms: readonly Term[];
}

function tensorArg(a: Arg | undefined): string | undefined {
  return a?.kind === "tensor" ? a.name : undefined;
}

function literal(a: Arg | undefined, g?: GraphView): number | undefined {
  if (a?.kind === "int" || a?.kind === "float") return a.value;
  // a one-element constant (a 0-d scale tensor)
  const w = a?.kind === "tensor" ? g?.weightOf(a.name) : undefined;
  return w && w.tensor.data.length === 1 ? toFloat64Array(w.tensor)[0] : undefined;
}

function producer(g: GraphView, v: string, op: string | readonly string[]): Node | undefined {
  const p = g.producerOf(v);
  const ok = typeof op === "string" ? p?.node.op === op : op.includes(p?.node.op ?? "");
  return p && p.index === 0 && ok ? p.node : undefined;
}

/** `v`, or the tensor `v` is a constant multiple of (mul by a literal): [value, factor]. */
function unscaled(g: GraphView, v: string): [string, number] {
  const mul = producer(g, v, ["aten.mul.Tensor", "aten.mul.Scalar"]);
  if (mul) {
    const a = g.argsOf(mul);
    const c = literal(a.other, g);
    const x = tensorArg(a.self);
    if (c !== undefined && x !== undefined) return [x, c];
  }
  return [v, 1];
}

/** view(bmm(view(q·a), view(permute(k, [0, 1, 3, 2])·b))) with q [B, H, L, E] and k [B, H, S, E]. */
function matchProduct(g: GraphView, v: string): Scores | undefined {
  const outer = producer(g, v, VIEW);
  const bmm = outer && producer(g, tensorArg(g.argsOf(outer).self) ?? "", BMM);
  if (!bmm) return undefined;
  const ba = g.argsOf(bmm);
  const left = producer(g, tensorArg(ba.self) ?? "", VIEW);
  const right = producer(g, tensorArg(ba.mat2) ?? "", VIEW);
  if (!left || !right) return undefined;
  const [q, a] = unscaled(g, tensorArg(g.argsOf(left).self) ?? "");
  const [kt, b] = unscaled(g, tensorArg(g.argsOf(right).self) ?? "");
  const perm = producer(g, kt, "aten.permute.default");
  if (!perm || !g.hasValue(q)) return undefined;
  const dims = g.argsOf(perm).dims;
  if (dims?.kind !== "ints" || dims.value.join() !== "0,1,3,2") return undefined;
  const k = tensorArg(g.argsOf(perm).self);
  if (!k) return undefined;
  const qs = g.typeOf(q).shape;
  const ks = g.typeOf(k).shape;
  const out = g.typeOf(v).shape;
  if (qs.length !== 4 || ks.length !== 4) return undefined;
  const [B, H, L, E] = qs;
  if (ks.join() !== [B, H, ks[2], E].join() || out.join() !== [B, H, L, ks[2]].join()) return undefined;
  return { q, k, scale: a * b, terms: [] };
}

/**
 * Walks from the softmax input back to q·kᵀ through additive terms, constant factors (before any term) and
 * views that only regroup the batch axes (the last two stay [L, S]).
 */
function matchScores(g: GraphView, v: string, depth = 0): Scores | undefined {
  if (depth > 12) return undefined;
  const product = matchProduct(g, v);
  if (product) return product;
  const shape = g.typeOf(v).shape;
  const view = producer(g, v, VIEW);
  if (view) {
    const src = tensorArg(g.argsOf(view).self);
    if (!src) return undefined;
    const s = g.typeOf(src).shape;
    if (s.length < 2 || s.slice(-2).join() !== shape.slice(-2).join()) return undefined;
    return matchScores(g, src, depth + 1);
  }
  const add = producer(g, v, "aten.add.Tensor");
  if (add) {
    const a = g.argsOf(add);
    const alpha = literal(a.alpha) ?? 1;
    const x = tensorArg(a.self);
    const y = tensorArg(a.other);
    if (alpha !== 1 || !x || !y) return undefined;
    for (const [chain, term] of [
      [x, y],
      [y, x],
    ]) {
      if (g.typeOf(chain).shape.join() !== shape.join()) continue;
      const inner = matchScores(g, chain, depth + 1);
      if (inner) return { ...inner, terms: [...inner.terms, { name: term, shape }] };
    }
    return undefined;
  }
  const [x, c] = unscaled(g, v);
  if (c !== 1 || x !== v) {
    const inner = matchScores(g, x, depth + 1);
    // a factor applied after a term would scale the term too: only factors on q·kᵀ itself
    if (inner && inner.terms.length === 0) return { ...inner, scale: inner.scale * c };
  }
  return undefined;
}

const lastDim = () => where(int(), (d) => d === -1 || d === 3, "last dim");

function biasAttentionRule(): Rule {
  const scores = value({ rank: 4, floating: true });
  const v = value({ rank: 4 });
  const probabilities = op("aten._softmax.default", {
    self: scores,
    dim: lastDim(),
    half_to_float: bool(false),
  });
  return rule({
    name: "attention-bias-math-to-sdpa",
    doc: "view(bmm(view(softmax(q·a @ kᵀ [· c] [+ bias …])), view(v))) ⇒ scaled_dot_product_attention(q, k, v, attn_mask = bias + …, scale = a·c)",
    pattern: op(VIEW, {
      self: op(BMM, { self: op(VIEW, { self: probabilities }), mat2: op(VIEW, { self: v }) }),
    }),
    captures: { scores, v },
    rewrite: ({ scores, v, root }, ctx) => {
      const g = ctx.graph;
      const m = matchScores(g, scores.name);
      if (!m) return undefined;
      const [B, H, L, S] = scores.type.shape;
      const [vb, vh, vs, dv] = v.type.shape;
      if (vb !== B || vh !== H || vs !== S || root.out.type.shape.join() !== [B, H, L, dv].join())
        return undefined;
      const dtype = g.typeOf(m.q).dtype;
      if (g.typeOf(m.k).dtype !== dtype || v.type.dtype !== dtype || scores.type.dtype !== dtype)
        return undefined;
      const b = ctx.build();
      let mask: string | null = null;
      for (const t of m.terms) {
        if (g.typeOf(t.name).dtype !== dtype) return undefined;
        let term = t.name;
        // A term added to a regrouped view of the scores: spelled out at that shape, then viewed as [B, H, L, S].
        if (t.shape.join() !== scores.type.shape.join()) {
          if (numel(t.shape) !== numel(scores.type.shape)) return undefined;
          const wide = { dtype, shape: [...t.shape] };
          term = b.node("aten.expand.default", { self: arg.tensor(term), size: arg.ints(t.shape) }, wide);
          term = b.node(
            VIEW,
            { self: arg.tensor(term), size: arg.ints(scores.type.shape) },
            { dtype, shape: [...scores.type.shape] },
          );
        }
        mask =
          mask === null
            ? term
            : b.node("aten.add.Tensor", { self: arg.tensor(mask), other: arg.tensor(term) });
      }
      const out = b.node(
        "aten.scaled_dot_product_attention.default",
        {
          query: arg.tensor(m.q),
          key: arg.tensor(m.k),
          value: arg.tensor(v),
          attn_mask: arg.optionalTensor(mask),
          dropout_p: arg.float(0),
          is_causal: arg.bool(false),
          scale: arg.float(m.scale),
        },
        root.out.type,
      );
      return b.replace(out);
    },
  });
}

export const biasAttentionToSdpa = biasAttentionRule();

export const attentionBiasRules = ruleSet(biasAttentionToSdpa);

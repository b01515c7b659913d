// Every dropout variant in inference: the identity. PyTorch's `_dropout_impl` (aten/src/ATen/native/Dropout.cpp)
// returns its input unchanged when `p == 0 || !train`, for dropout, feature_dropout, alpha_dropout and
// feature_alpha_dropout alike, and their in-place twins leave `self` as it was. `native_dropout` with
// train=False returns (input, ones(bool)); with p == 0 its Bernoulli(1) mask is all true, so it is the identity too.
// These rules run in the first pass, before decompose-to-core turns in-place ops into functional ones, so every
// spelling is listed here.
import type { Arg } from "../ir/graph.js";
import { arg } from "./rewrite/args.js";
import { bool, op, optional, scalar, value } from "./rewrite/pattern.js";
import { type Rule, rule, ruleSet } from "./rewrite/rule.js";

/** Functional dropout variants: `(Tensor input, float p, bool train)`. */
export const DROPOUT_OPS = [
  "aten.dropout.default",
  "aten.feature_dropout.default",
  "aten.alpha_dropout.default",
  "aten.feature_alpha_dropout.default",
] as const;

/** In-place dropout variants: `(Tensor(a!) self, float p, bool train)`. */
export const INPLACE_DROPOUT_OPS = [
  "aten.dropout_.default",
  "aten.feature_dropout_.default",
  "aten.alpha_dropout_.default",
  "aten.feature_alpha_dropout_.default",
] as const;

/** Same dtype and shape: a no-op may only be dropped when its output is its input's type. */
export const sameType = (
  a: { dtype: string; shape: readonly number[] },
  b: { dtype: string; shape: readonly number[] },
) => a.dtype === b.dtype && a.shape.join() === b.shape.join();

const fx = value();
/** dropout / feature_dropout / alpha_dropout / feature_alpha_dropout with train=False ⇒ input. */
export const removeEvalDropout = rule({
  name: "remove-eval-dropout",
  doc: "dropout / feature_dropout / alpha_dropout / feature_alpha_dropout(x, p, train=False) ⇒ x",
  pattern: op(DROPOUT_OPS, { input: fx, train: bool(false) }),
  captures: { x: fx },
  rewrite: ({ x, root }, ctx) => (sameType(x.type, root.out.type) ? ctx.replaceWith(x) : undefined),
});

const ix = value();
/**
 * dropout_(x, p, train=False) ⇒ x. Eval dropout does not change x, so readers of x after the in-place call
 * see the same values whether or not it ran; the call's result is x itself.
 */
export const removeEvalInplaceDropout = rule({
  name: "remove-eval-inplace-dropout",
  doc: "dropout_ / feature_dropout_ / alpha_dropout_ / feature_alpha_dropout_(x, p, train=False) ⇒ x",
  pattern: op(INPLACE_DROPOUT_OPS, { self: ix, train: bool(false) }),
  captures: { x: ix },
  rewrite: ({ x, root }, ctx) => (sameType(x.type, root.out.type) ? ctx.replaceWith(x) : undefined),
});

/** Any dropout variant with p=0, whatever `train` is, ⇒ input (PyTorch returns the input itself). */
export const removeZeroDropout = rule({
  name: "remove-zero-dropout",
  doc: "dropout variants (and their in-place twins) with p=0 ⇒ x, in training mode too",
  pattern: op([...DROPOUT_OPS, ...INPLACE_DROPOUT_OPS], { p: scalar(0) }),
  rewrite: ({ root }, ctx) => {
    const a = root.node.args.input ?? root.node.args.self;
    if (a?.kind !== "tensor") return undefined;
    return sameType(ctx.graph.typeOf(a.name), root.out.type) ? ctx.replaceWith(a.name) : undefined;
  },
});

const nx = value();
/**
 * native_dropout(x, p, train=False) ⇒ (x, ones(bool)); with p=0 (any train) the same. The mask, when something
 * reads it, becomes a constant-filled `full` that constant folding can turn into a weight.
 */
export const removeEvalNativeDropout = rule({
  name: "remove-eval-native-dropout",
  doc: "native_dropout(x, p, train=False) or native_dropout(x, 0, train) ⇒ (x, full(x.shape, True))",
  pattern: op("aten.native_dropout.default", { input: nx, train: optional(bool()) }),
  captures: { x: nx },
  rewrite: ({ x, root }, ctx) => {
    const p = root.args.p;
    const pIsZero = (p?.kind === "float" || p?.kind === "int") && Number(p.value) === 0;
    const train = root.args.train;
    // train=None means training in PyTorch's native_dropout.
    const evalMode = train?.kind === "bool" && train.value === false;
    if (!evalMode && !pIsZero) return undefined;
    if (!sameType(x.type, root.outputs[0].type)) return undefined;
    const mask = root.outputs[1];
    if (ctx.graph.isUnused(mask.name)) return ctx.replaceWith(x);
    const b = ctx.build();
    const fillArgs: Record<string, Arg> = {
      size: arg.ints(mask.type.shape),
      fill_value: arg.int(1),
      dtype: arg.dtype("bool"),
    };
    const ones = b.node("aten.full.default", fillArgs, mask.type);
    return b.replace({ [root.outputs[0].name]: x, [mask.name]: ones });
  },
});

export const evalDropoutRules: readonly Rule[] = ruleSet(
  removeEvalDropout,
  removeEvalInplaceDropout,
  removeEvalNativeDropout,
  removeZeroDropout,
);

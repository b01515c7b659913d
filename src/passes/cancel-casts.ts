// Cast pairs that cancel. A lossless widening followed by a cast back (float16 → float32 → float16, as precision
// assignment makes around an op that reads the wide value) is the identity; a widening followed by a cast to a
// third type is that one cast. The wide value itself stays while anything else reads it (dead-code elimination
// drops it otherwise). A narrowing followed by a widening (float32 → float16 → float32) rounds, and is kept.
import type { DType } from "../ir/dtype.js";
import { type Pass, rulePass } from "./pass.js";
import { arg } from "./rewrite/args.js";
import { op, value } from "./rewrite/pattern.js";
import { rule, ruleSet } from "./rewrite/rule.js";

/** Types each type converts into exactly (every value of the first is a value of the second). */
const EXACT_WIDENING: Readonly<Partial<Record<DType, readonly DType[]>>> = {
  float16: ["float32", "float64"],
  bfloat16: ["float32", "float64"],
  float32: ["float64"],
  int8: ["int16", "int32", "int64"],
  uint8: ["int16", "int32", "int64"],
  int16: ["int32", "int64"],
  int32: ["int64"],
};

export function widensExactly(from: DType, to: DType): boolean {
  return EXACT_WIDENING[from]?.includes(to) ?? false;
}

const x = value();
const wide = op("aten._to_copy.default", { self: x });

export const cancelWideningCast = rule({
  name: "cancel-widening-cast",
  doc: "_to_copy(_to_copy(x, wider), dtype) ⇒ x when dtype is x's, else _to_copy(x, dtype)",
  pattern: op("aten._to_copy.default", { self: wide }),
  captures: { x, wide },
  rewrite: ({ x, wide, root }, ctx) => {
    const from = x.type.dtype;
    const to = root.out.type.dtype;
    if (!widensExactly(from, wide.out.type.dtype)) return undefined;
    if (to === from) return ctx.replaceWith(x);
    return ctx.replaceWithNode(
      "aten._to_copy.default",
      { self: arg.tensor(x), dtype: arg.dtype(to) },
      root.out.type,
    );
  },
});

export const cancelCastRules = ruleSet(cancelWideningCast);

export const cancelCasts: Pass = rulePass(
  "cancel-casts",
  "cast pairs that cancel: x → wider → x's type ⇒ x (float16 → float32 → float16); x → wider → t ⇒ x → t",
  cancelCastRules,
);

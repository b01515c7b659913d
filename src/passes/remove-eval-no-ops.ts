// Ops that do nothing to values in an inference graph. Removing them first lets later patterns see
// conv → batch_norm even when a clone or an eval-mode dropout sits between them.
import { evalDropoutRules, sameType } from "./eval-dropout.js";
import { type Pass, rulePass } from "./pass.js";
import { op, value } from "./rewrite/pattern.js";
import { type Rule, rule, ruleSet } from "./rewrite/rule.js";

/** `op(input, …) ⇒ input` when `input` has the node's type (the type check is the driver's). */
function passThrough(
  name: string,
  doc: string,
  ops: readonly string[],
  input: "self" | "input",
  extra = {},
): Rule {
  const x = value();
  return rule({
    name,
    doc,
    pattern: op(ops, { [input]: x, ...extra }),
    captures: { x },
    rewrite: ({ x, root }, ctx) => (sameType(x.type, root.out.type) ? ctx.replaceWith(x) : undefined),
  });
}

export const removeCopies = passThrough(
  "remove-copy",
  "clone(x) / contiguous(x) / alias(x) / detach(x) / lift_fresh_copy(x) / positive(x) ⇒ x",
  [
    "aten.clone.default",
    "aten.contiguous.default",
    "aten.alias.default",
    "aten.alias_copy.default",
    "aten.detach.default",
    "aten.detach_copy.default",
    "aten.lift_fresh_copy.default",
    "aten.positive.default",
  ],
  "self",
);

export const removeSameTypeCasts = passThrough(
  "remove-same-type-cast",
  "_to_copy(x) / to(x, …) / type_as(x, y) of x's own dtype ⇒ x",
  [
    "aten._to_copy.default",
    "aten.to.dtype",
    "aten.to.dtype_layout",
    "aten.to.device",
    "aten.to.other",
    "aten.type_as.default",
    "aten._to_dim_order_copy.default",
  ],
  "self",
);

/**
 * constant_pad_nd or pad(x, [0, 0, …]) ⇒ x (in any padding mode). torchvision's Swin pads every window attention's input up to a multiple of
 * the window, which at 224×224 is a pad by nothing: a full copy of the activation in each block otherwise.
 */
export const removeZeroPads = (() => {
  const x = value();
  return rule({
    name: "remove-zero-pad",
    doc: "constant_pad_nd(x, all zeros) / pad(x, all zeros, any mode) ⇒ x",
    pattern: op(["aten.constant_pad_nd.default", "aten.pad.default"], { self: x }),
    captures: { x },
    rewrite: ({ x, root }, ctx) => {
      const pad = root.args.pad;
      if (pad?.kind !== "ints" || pad.value.some((p) => p !== 0)) return undefined;
      return sameType(x.type, root.out.type) ? ctx.replaceWith(x) : undefined;
    },
  });
})();

const ASSERTS = [
  "aten._assert_tensor_metadata.default",
  "aten._assert_scalar.default",
  "aten._assert_async.default",
  "aten._assert_async.msg",
  "aten.sym_constrain_range.default",
  "aten.sym_constrain_range_for_size.default",
  "aten._functional_assert_async.msg",
];

export const removeStaticAsserts = rule({
  name: "remove-static-assert",
  doc: "_assert_tensor_metadata(…) and other run-time checks of static facts ⇒ nothing",
  pattern: op(ASSERTS),
  rewrite: ({ root }, ctx) =>
    root.outputs.every((o) => ctx.graph.isUnused(o.name)) ? ctx.build().replace({}) : undefined,
});

export const evalNoOpRules = ruleSet(
  evalDropoutRules,
  removeCopies,
  removeSameTypeCasts,
  removeZeroPads,
  removeStaticAsserts,
);

export {
  removeEvalDropout,
  removeEvalInplaceDropout,
  removeEvalNativeDropout,
  removeZeroDropout,
} from "./eval-dropout.js";

export const removeEvalNoOps: Pass = rulePass(
  "remove-eval-no-ops",
  "drop dropout (eval), clone, contiguous, alias, detach, same-dtype casts and static asserts",
  evalNoOpRules,
);

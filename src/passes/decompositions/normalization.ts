// Normalizations in their core ATen form (the multi-output native_* ops); only the normalized result is
// used, so the statistics outputs the core ops add stay unused and are never computed by converters.
import { arg, pickArgs } from "../rewrite/args.js";
import { bool, int, op, value } from "../rewrite/pattern.js";
import { type Rule, rule, ruleSet } from "../rewrite/rule.js";

export const BATCH_NORM = "aten._native_batch_norm_legit_no_training.default";

/** Inference-mode batch norm in any overload, with running statistics, ⇒ the core no-training form. */
function toNoTrainingBatchNorm(name: string, opName: string): Rule {
  const mean = value();
  const variance = value();
  return rule({
    name,
    doc: `${opName.split(".")[1]}(x, γ, β, μ, σ², training=False, momentum, ε) ⇒ _native_batch_norm_legit_no_training(…)[0]`,
    pattern: op(opName, { running_mean: mean, running_var: variance, training: bool(false) }),
    captures: { mean, variance },
    rewrite: ({ root }, ctx) => {
      if (!root.outputs.slice(1).every((o) => ctx.graph.isUnused(o.name))) return undefined;
      const b = ctx.build();
      const [out] = b.nodeOutputs(
        BATCH_NORM,
        pickArgs(root.args, ["input", "weight", "bias", "running_mean", "running_var", "momentum", "eps"]),
      );
      return b.replace(out);
    },
  });
}

export const batchNormToCore = toNoTrainingBatchNorm("batch-norm-to-core", "aten.batch_norm.default");
export const nativeBatchNormToCore = toNoTrainingBatchNorm(
  "native-batch-norm-to-core",
  "aten.native_batch_norm.default",
);
export const legitBatchNormToCore = toNoTrainingBatchNorm(
  "legit-batch-norm-to-core",
  "aten._native_batch_norm_legit.default",
);

export const layerNormToCore = rule({
  name: "layer-norm-to-core",
  doc: "layer_norm(x, shape, γ, β, ε) ⇒ native_layer_norm(x, shape, γ, β, ε)[0]",
  pattern: op("aten.layer_norm.default"),
  rewrite: ({ root }, ctx) => {
    const b = ctx.build();
    const [out] = b.nodeOutputs(
      "aten.native_layer_norm.default",
      pickArgs(root.args, ["input", "normalized_shape", "weight", "bias", "eps"]),
    );
    return b.replace(out);
  },
});

const gx = value();
const groups = int();
export const groupNormToCore = rule({
  name: "group-norm-to-core",
  doc: "group_norm(x, G, γ, β, ε) ⇒ native_group_norm(x, γ, β, N, C, H·W, G, ε)[0]",
  pattern: op("aten.group_norm.default", { input: gx, num_groups: groups }),
  captures: { gx, groups },
  rewrite: ({ gx, groups, root }, ctx) => {
    const [n, c, ...rest] = gx.type.shape;
    const b = ctx.build();
    const [out] = b.nodeOutputs("aten.native_group_norm.default", {
      ...pickArgs(root.args, ["input", "weight", "bias"]),
      N: arg.int(n),
      C: arg.int(c),
      HxW: arg.int(rest.reduce((x, y) => x * y, 1)),
      group: arg.int(groups),
      eps: root.args.eps ?? arg.float(1e-5),
    });
    return b.replace(out);
  },
});

export const normalizationRules = ruleSet(
  batchNormToCore,
  nativeBatchNormToCore,
  legitBatchNormToCore,
  layerNormToCore,
  groupNormToCore,
);

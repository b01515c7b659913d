import fc from "fast-check";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { B, F, I, Is, NONE, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import type { TensorSpec } from "../harness.js";
import { type CaseSpec, spec } from "./types.js";

type Flavour = "batch_norm" | "no_training" | "legit" | "native";

/** Inference batch norm; `constant` makes every statistic a weight (the folded path), else graph inputs. */
function batchNormCase(op: OpName, flavour: Flavour, constant: boolean) {
  return fc
    .tuple(
      fc.integer({ min: 1, max: 4 }),
      shapeArb(0, 2, 3),
      fc.integer({ min: 1, max: 2 }),
      fc.boolean(),
      fc.boolean(),
    )
    .chain(([c, spatial, n, affineW, affineB]) =>
      fc
        .tuple(
          tensor([n, c, ...spatial]),
          tensor([c], "float32", {}, constant),
          tensor([c], "float32", {}, constant),
          tensor([c], "float32", {}, constant),
          tensor([c], "float32", { min: 0.1, max: 3 }, constant),
          fc.constantFrom(1e-5, 1e-3),
        )
        .map(([x, w, b, m, v, eps]) => {
          const tensors: Record<string, TensorSpec> = { x, m, v };
          if (affineW) tensors.w = w;
          if (affineB) tensors.b = b;
          const args: Record<string, Arg> = {
            input: T("x"),
            weight: affineW ? T("w") : NONE,
            bias: affineB ? T("b") : NONE,
            running_mean: T("m"),
            running_var: T("v"),
          };
          if (flavour !== "no_training") args.training = B(false);
          args.momentum = F(0.1);
          args.eps = F(eps);
          if (flavour === "batch_norm") args.cudnn_enabled = B(true);
          // The statistics outputs of the native variants are read, so their converters must make them.
          return opCase(op, args, tensors);
        }),
    );
}

const bn = (op: OpName, flavour: Flavour): CaseSpec[] => [
  spec(op, "batch-norm-folded-scale", batchNormCase(op, flavour, true), true),
  spec(op, "batch-norm-elementwise", batchNormCase(op, flavour, false), true),
];

/** No running statistics: normalized with the batch's own, in train or eval mode alike. */
function batchStatsCase(op: OpName, flavour: "batch_norm" | "native" | "no_stats") {
  return fc
    .tuple(
      fc.integer({ min: 1, max: 3 }),
      shapeArb(0, 2, 3),
      fc.integer({ min: 1, max: 3 }),
      fc.boolean(),
      fc.boolean(),
      fc.boolean(),
    )
    .chain(([c, spatial, n, hasW, hasB, training]) =>
      fc
        .tuple(
          tensor([n, c, ...spatial], "float32", { min: -4, max: 4 }),
          tensor([c]),
          tensor([c]),
          fc.constantFrom(1e-5, 0.1),
        )
        .map(([x, w, b, eps]) => {
          const tensors: Record<string, TensorSpec> = { x };
          if (hasW) tensors.w = w;
          if (hasB) tensors.b = b;
          const args: Record<string, Arg> = {
            input: T("x"),
            weight: hasW ? T("w") : NONE,
            bias: hasB ? T("b") : NONE,
          };
          if (flavour !== "no_stats") Object.assign(args, { running_mean: NONE, running_var: NONE });
          Object.assign(args, { training: B(training), momentum: F(0.1), eps: F(eps) });
          if (flavour === "batch_norm") args.cudnn_enabled = B(true);
          return opCase(op, args, tensors);
        }),
    );
}

function layerNormCase(op: OpName) {
  return fc
    .tuple(shapeArb(1, 4), fc.integer({ min: 1, max: 3 }), fc.boolean(), fc.boolean(), fc.boolean())
    .chain(([s, k0, hasW, hasB, constant]) => {
      const k = Math.min(k0, s.length);
      const norm = s.slice(s.length - k);
      return fc
        .tuple(
          tensor(s, "float32", { min: -4, max: 4 }),
          tensor(norm, "float32", {}, constant),
          tensor(norm, "float32", {}, constant),
          fc.constantFrom(1e-5, 0.1),
        )
        .map(([x, w, b, eps]) => {
          const tensors: Record<string, TensorSpec> = { x };
          if (hasW) tensors.w = w;
          if (hasB) tensors.b = b;
          return opCase(
            op,
            {
              input: T("x"),
              normalized_shape: Is(...norm),
              weight: hasW ? T("w") : NONE,
              bias: hasB ? T("b") : NONE,
              eps: F(eps),
            },
            tensors,
          );
        });
    });
}

function groupNormCase(op: OpName, native: boolean) {
  return fc
    .tuple(
      fc.integer({ min: 1, max: 2 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 2 }),
      shapeArb(0, 2, 3),
      fc.boolean(),
      fc.boolean(),
    )
    .chain(([n, g, cg, spatial, hasW, hasB]) => {
      const c = g * cg;
      return fc
        .tuple(tensor([n, c, ...spatial]), tensor([c]), tensor([c]), fc.constantFrom(1e-5, 0.1))
        .map(([x, w, b, eps]) => {
          const tensors: Record<string, TensorSpec> = { x };
          if (hasW) tensors.w = w;
          if (hasB) tensors.b = b;
          const hw = spatial.reduce((p, d) => p * d, 1);
          const args: Record<string, Arg> = native
            ? {
                input: T("x"),
                weight: hasW ? T("w") : NONE,
                bias: hasB ? T("b") : NONE,
                N: I(n),
                C: I(c),
                HxW: I(hw),
                group: I(g),
                eps: F(eps),
              }
            : {
                input: T("x"),
                num_groups: I(g),
                weight: hasW ? T("w") : NONE,
                bias: hasB ? T("b") : NONE,
                eps: F(eps),
              };
          return opCase(op, args, tensors);
        });
    });
}

export const NORMALIZATION_CASES: CaseSpec[] = [
  ...bn("aten.batch_norm.default", "batch_norm"),
  ...bn("aten._native_batch_norm_legit_no_training.default", "no_training"),
  ...bn("aten._native_batch_norm_legit.default", "legit"),
  ...bn("aten.native_batch_norm.default", "native"),
  spec(
    "aten.batch_norm.default",
    "batch-norm-batch-statistics",
    batchStatsCase("aten.batch_norm.default", "batch_norm"),
    true,
  ),
  spec(
    "aten.native_batch_norm.default",
    "batch-norm-batch-statistics",
    batchStatsCase("aten.native_batch_norm.default", "native"),
    true,
  ),
  spec(
    "aten._native_batch_norm_legit.no_stats",
    "batch-norm-batch-statistics",
    batchStatsCase("aten._native_batch_norm_legit.no_stats", "no_stats"),
    true,
  ),
  spec("aten.layer_norm.default", "layer-norm", layerNormCase("aten.layer_norm.default")),
  spec("aten.native_layer_norm.default", "layer-norm", layerNormCase("aten.native_layer_norm.default")),
  spec("aten.group_norm.default", "group-norm", groupNormCase("aten.group_norm.default", false)),
  spec("aten.native_group_norm.default", "group-norm", groupNormCase("aten.native_group_norm.default", true)),
];

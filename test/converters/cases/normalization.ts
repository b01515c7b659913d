import fc from "fast-check";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { B, F, I, Is, NONE, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import { inputScale, type OpCase, type TensorSpec } from "../harness.js";
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

/**
 * The error scale of batch statistics in fp32. The engine computes (x − mean)·rsqrt(var + eps)·w in fp32 layers,
 * so x − mean carries an error of a few ε·max|x| per channel, which rsqrt(var + eps)·|w| then amplifies: on a
 * nearly constant channel (var ≪ eps) the output is a small difference blown up by up to 1/√eps, and its fp32
 * error is far above ε times the output (seed -21653162: x = [-3.99994, -3.99993], eps 1e-5). The float64
 * reference has no such loss, so the tolerance is scaled by each channel's conditioning, max|x_c|·|w_c|/√(var_c + eps),
 * and never below the inputs' magnitude. Well-spread channels (var comparable to x²) get about the plain input
 * scale; only ill-conditioned ones get more.
 */
export function batchStatsScale(c: OpCase): number {
  const x = c.tensors.x;
  const eps = c.args.eps.kind === "float" ? c.args.eps.value : 0;
  const channels = x.shape[1] ?? 1;
  const inner = x.shape.slice(2).reduce((p, d) => p * d, 1);
  const n = x.shape[0] ?? 1;
  let scale = inputScale(c);
  for (let ch = 0; ch < channels; ch++) {
    const vals: number[] = [];
    for (let b = 0; b < n; b++)
      for (let i = 0; i < inner; i++) vals.push(x.data[(b * channels + ch) * inner + i]);
    if (vals.length === 0) continue;
    const mean = vals.reduce((p, v) => p + v, 0) / vals.length;
    const variance = vals.reduce((p, v) => p + (v - mean) ** 2, 0) / vals.length;
    const maxAbs = vals.reduce((p, v) => Math.max(p, Math.abs(v)), 0);
    const w = c.tensors.w ? Math.abs(c.tensors.w.data[ch]) : 1;
    scale = Math.max(scale, (maxAbs * w) / Math.sqrt(variance + eps));
  }
  return scale;
}

/** rms_norm over 1–3 trailing dims, with or without a weight, eps given or None (the dtype's epsilon). */
const rmsNormCase = fc
  .tuple(shapeArb(1, 4), fc.integer({ min: 1, max: 3 }), fc.boolean(), fc.boolean())
  .chain(([s, k0, hasW, constant]) => {
    const norm = s.slice(s.length - Math.min(k0, s.length));
    return fc
      .tuple(
        tensor(s, "float32", { min: -4, max: 4 }),
        tensor(norm, "float32", {}, constant),
        fc.constantFrom<number | null>(1e-5, 0.1, null),
      )
      .map(([x, w, eps]) =>
        opCase(
          "aten.rms_norm.default",
          {
            input: T("x"),
            normalized_shape: Is(...norm),
            weight: hasW ? T("w") : NONE,
            eps: eps === null ? NONE : F(eps),
          },
          hasW ? { x, w } : { x },
        ),
      );
  });

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
    batchStatsScale,
  ),
  spec(
    "aten.native_batch_norm.default",
    "batch-norm-batch-statistics",
    batchStatsCase("aten.native_batch_norm.default", "native"),
    batchStatsScale,
  ),
  spec(
    "aten._native_batch_norm_legit.no_stats",
    "batch-norm-batch-statistics",
    batchStatsCase("aten._native_batch_norm_legit.no_stats", "no_stats"),
    batchStatsScale,
  ),
  spec("aten.layer_norm.default", "layer-norm", layerNormCase("aten.layer_norm.default")),
  spec("aten.rms_norm.default", "rms-norm", rmsNormCase),
  spec("aten.native_layer_norm.default", "layer-norm", layerNormCase("aten.native_layer_norm.default")),
  spec("aten.group_norm.default", "group-norm", groupNormCase("aten.group_norm.default", false)),
  spec("aten.native_group_norm.default", "group-norm", groupNormCase("aten.native_group_norm.default", true)),
];

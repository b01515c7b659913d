// Global average pooling is a mean over the spatial dims (a reduction a fuser already handles); other
// adaptive pools, max pools and nearest upsampling take their core ATen names.
import { arg, pickArgs } from "../rewrite/args.js";
import { ints, op, optional, scalar, value } from "../rewrite/pattern.js";
import { rule, ruleSet } from "../rewrite/rule.js";

const ADAPTIVE = ["aten.adaptive_avg_pool2d.default", "aten._adaptive_avg_pool2d.default"];

const gx = value();
export const globalAvgPoolToMean = rule({
  name: "global-avg-pool-to-mean",
  doc: "adaptive_avg_pool2d(x, [1, 1]) ⇒ mean(x, [-2, -1], keepdim=True)",
  pattern: op(ADAPTIVE, { self: gx, output_size: ints([1, 1]) }),
  captures: { gx },
  rewrite: ({ gx, root }, ctx) => {
    const rank = gx.type.shape.length;
    return ctx.replaceWithNode(
      "aten.mean.dim",
      { self: arg.tensor(gx), dim: arg.ints([rank - 2, rank - 1]), keepdim: arg.bool(true), dtype: arg.none },
      root.out.type,
    );
  },
});

export const adaptiveAvgPoolToCore = rule({
  name: "adaptive-avg-pool-to-core",
  doc: "adaptive_avg_pool2d(x, size) ⇒ _adaptive_avg_pool2d(x, size)",
  pattern: op("aten.adaptive_avg_pool2d.default"),
  rewrite: ({ root }, ctx) =>
    ctx.replaceWithNode(
      "aten._adaptive_avg_pool2d.default",
      pickArgs(root.args, ["self", "output_size"]),
      root.out.type,
    ),
});

export const maxPoolWithIndicesToMaxPool = rule({
  name: "max-pool-with-indices-to-max-pool",
  doc: "max_pool2d_with_indices(x, …)[0] with unused indices ⇒ max_pool2d(x, …)",
  pattern: op("aten.max_pool2d_with_indices.default"),
  rewrite: ({ root }, ctx) =>
    ctx.graph.isUnused(root.outputs[1].name)
      ? ctx.replaceWithNode(
          "aten.max_pool2d.default",
          pickArgs(root.args, ["self", "kernel_size", "stride", "padding", "dilation", "ceil_mode"]),
          root.out.type,
        )
      : undefined,
});

const ux = value();
const scaleH = optional(scalar());
const scaleW = optional(scalar());
export const upsampleNearestToVec = rule({
  name: "upsample-nearest-to-vec",
  doc: "upsample_nearest2d(x, size, scales_h, scales_w) ⇒ upsample_nearest2d.vec(x, size | None, None | scales)",
  pattern: op("aten.upsample_nearest2d.default", { self: ux, scales_h: scaleH, scales_w: scaleW }),
  captures: { ux, scaleH, scaleW },
  rewrite: ({ ux, scaleH, scaleW, root }, ctx) => {
    // With scales PyTorch maps output to input positions by 1/scale, not by the size ratio: keep them.
    if ((scaleH === null) !== (scaleW === null)) return undefined;
    const bySize = scaleH === null || scaleW === null;
    return ctx.replaceWithNode(
      "aten.upsample_nearest2d.vec",
      {
        input: arg.tensor(ux),
        output_size: bySize ? arg.ints(root.out.type.shape.slice(-2)) : arg.none,
        scale_factors: bySize ? arg.none : arg.floats([scaleH, scaleW]),
      },
      root.out.type,
    );
  },
});

export const poolingRules = ruleSet(
  globalAvgPoolToMean,
  adaptiveAvgPoolToCore,
  maxPoolWithIndicesToMaxPool,
  upsampleNearestToVec,
);

import type { DType } from "../../ir/dtype.js";
import { type RmsNormArgs, rmsNormEps } from "../../ops/norm.js";
import { binary, unary } from "../impl/elementwise.js";
import { batchNormInference } from "../impl/normalization.js";
import { cast, fill, reshape, scalar } from "../impl/tensors.js";
import type { ConversionNet } from "../types.js";
import { type AnyCandidate, allOf, type ConverterSpec, converter, refuse, SUPPORTED } from "../types.js";
import { needsFloat } from "./common.js";
import { reduceAxes } from "./reduce.js";

interface BatchNorm {
  readonly input: string;
  readonly weight: string | null;
  readonly bias: string | null;
  readonly runningMean: string | null;
  readonly runningVar: string | null;
  readonly training: boolean;
  readonly eps: number;
}

function inferenceOnly(a: BatchNorm) {
  return () => {
    if (a.training)
      return refuse(
        "batch norm in training mode uses batch statistics; export the model in eval mode (model.eval())",
      );
    if (a.runningMean === null || a.runningVar === null)
      return refuse("batch norm without running statistics normalizes with batch statistics");
    return SUPPORTED;
  };
}

/** Extra outputs of the native variants: empty save_mean/save_invstd in inference, made only if read. */
function statsOutputs(node: { outputs: readonly string[] }, net: ConversionNet): (string | null)[] {
  return node.outputs.slice(1).map((v) => {
    if (!net.isUsed(v)) return null;
    const t = net.typeOf(v);
    return fill(net.net, t.dtype, t.shape, 0);
  });
}

function batchNorm(folded: boolean): ConverterSpec<BatchNorm> {
  return {
    name: folded ? "batch-norm-folded-scale" : "batch-norm-elementwise",
    priority: folded ? 10 : 0,
    notes: folded
      ? "constant statistics fold into one per-channel scale layer"
      : "statistics read at run time",
    supports: (_node, a, ctx) =>
      allOf(
        () => needsFloat(ctx.typeOf(a.input).dtype),
        inferenceOnly(a),
        () => {
          if (!folded) return SUPPORTED;
          for (const [what, v] of [
            ["running_mean", a.runningMean],
            ["running_var", a.runningVar],
            ["weight", a.weight],
            ["bias", a.bias],
          ] as const) {
            if (v !== null && !ctx.constantOf(v))
              return refuse(`${what} must be a constant to fold into a scale layer`);
          }
          return SUPPORTED;
        },
      ),
    convert: (node, a, net) => {
      const arg = (v: string | null) => (v === null ? null : folded ? net.constantOf(v)! : v);
      const y = batchNormInference(
        net.net,
        {
          input: net.input(a.input),
          weight: arg(a.weight),
          bias: arg(a.bias),
          mean: arg(a.runningMean)!,
          variance: arg(a.runningVar)!,
          eps: a.eps,
        },
        (t) => (typeof t === "string" ? net.input(t) : net.net.constant(t)),
      );
      return [y, ...statsOutputs(node, net)];
    },
  };
}

/**
 * Without running statistics, batch norm normalizes with the batch's own (biased) statistics over every axis
 * but the channel one. Nothing is updated, so this is deterministic and convertible in any mode.
 */
const batchStatistics: ConverterSpec<BatchNorm> = {
  name: "batch-norm-batch-statistics",
  notes: "no running statistics: normalizes with the batch's own",
  supports: (_node, a, ctx) =>
    allOf(
      () => needsFloat(ctx.typeOf(a.input).dtype),
      () =>
        a.runningMean === null && a.runningVar === null
          ? SUPPORTED
          : refuse("running statistics are given, so batch statistics are not used"),
      () =>
        ctx.typeOf(a.input).shape.length >= 2 ? SUPPORTED : refuse("batch norm needs an (N, C, …) input"),
    ),
  convert: (node, a, net) => {
    const t = net.typeOf(a.input);
    const x = net.input(a.input);
    const c = t.shape[1];
    const axes = t.shape.map((_, i) => i).filter((i) => i !== 1);
    const mean = reduceAxes(net.net, "mean", x, axes, true);
    const d = binary(net.net, "sub", x, mean);
    const variance = reduceAxes(net.net, "mean", binary(net.net, "mul", d, d), axes, true);
    const rstd = unary(net.net, "rsqrt", binary(net.net, "add", variance, scalar(net.net, t.dtype, a.eps)));
    let y = binary(net.net, "mul", d, rstd);
    const view = [c, ...t.shape.slice(2).map(() => 1)];
    if (a.weight !== null)
      y = binary(net.net, "mul", y, reshape(net.net, cast(net.net, net.input(a.weight), t.dtype), view));
    if (a.bias !== null)
      y = binary(net.net, "add", y, reshape(net.net, cast(net.net, net.input(a.bias), t.dtype), view));
    if (node.outputs.length === 1) return [y];
    const stat = (v: string, i: number) =>
      net.isUsed(node.outputs[i])
        ? cast(net.net, reshape(net.net, v, [c]), net.typeOf(node.outputs[i]).dtype)
        : null;
    return [y, stat(mean, 1), stat(rstd, 2)];
  },
};

interface LayerNorm {
  readonly input: string;
  readonly normalizedShape: readonly number[];
  readonly weight: string | null;
  readonly bias: string | null;
  readonly eps: number;
}

/** The model's scale/bias in the input dtype, or ones/zeros of `shape`. */
function affine(
  net: ConversionNet,
  v: string | null,
  dtype: DType,
  shape: readonly number[],
  value: number,
): string {
  return v === null ? fill(net.net, dtype, shape, value) : cast(net.net, net.input(v), dtype);
}

/** mean and 1/√(var + ε) over trailing `axes`, in the stats dtype, for native_* outputs that are read. */
function stats(net: ConversionNet, x: string, axes: number[], eps: number, dtype: DType): [string, string] {
  const xs = cast(net.net, x, dtype);
  const mean = reduceAxes(net.net, "mean", xs, axes, true);
  const d = binary(net.net, "sub", xs, mean);
  const v = reduceAxes(net.net, "mean", binary(net.net, "mul", d, d), axes, true);
  return [mean, unary(net.net, "rsqrt", binary(net.net, "add", v, scalar(net.net, dtype, eps)))];
}

const layerNorm: ConverterSpec<LayerNorm> = {
  name: "layer-norm",
  supports: (_node, a, ctx) =>
    allOf(
      () => needsFloat(ctx.typeOf(a.input).dtype),
      () => (a.normalizedShape.length > 0 ? SUPPORTED : refuse("normalized_shape is empty")),
    ),
  convert: (node, a, net) => {
    const t = net.typeOf(a.input);
    const x = net.input(a.input);
    const begin = t.shape.length - a.normalizedShape.length;
    const scale = affine(net, a.weight, t.dtype, a.normalizedShape, 1);
    const bias = affine(net, a.bias, t.dtype, a.normalizedShape, 0);
    const y = net.net.add({
      type: "normalization",
      kind: "layer",
      beginAxis: begin,
      epsilon: a.eps,
      inputs: [x, scale, bias],
    });
    if (node.outputs.length === 1) return [y];
    const used = node.outputs.slice(1).some((v) => net.isUsed(v));
    if (!used) return [y, null, null];
    const axes = [...Array(a.normalizedShape.length).keys()].map((i) => begin + i);
    return [y, ...stats(net, x, axes, a.eps, net.typeOf(node.outputs[1]).dtype)];
  },
};

const rmsNorm: ConverterSpec<RmsNormArgs> = {
  name: "rms-norm",
  supports: (_node, a, ctx) => needsFloat(ctx.typeOf(a.input).dtype),
  convert: (_node, a, net) => {
    const t = net.typeOf(a.input);
    return [
      net.net.add({
        type: "normalization",
        kind: "rms",
        beginAxis: t.shape.length - a.normalizedShape.length,
        epsilon: rmsNormEps(a, t.dtype),
        inputs: [
          net.input(a.input),
          affine(net, a.weight, t.dtype, a.normalizedShape, 1),
          affine(net, null, t.dtype, a.normalizedShape, 0),
        ],
      }),
    ];
  },
};

interface GroupNorm {
  readonly input: string;
  readonly weight: string | null;
  readonly bias: string | null;
  readonly groups: number;
  readonly eps: number;
}

const groupNorm: ConverterSpec<GroupNorm> = {
  name: "group-norm",
  supports: (_node, a, ctx) =>
    allOf(
      () => needsFloat(ctx.typeOf(a.input).dtype),
      () =>
        ctx.typeOf(a.input).shape.length >= 2 ? SUPPORTED : refuse("group norm needs an (N, C, …) input"),
    ),
  convert: (node, a, net) => {
    const t = net.typeOf(a.input);
    const x = net.input(a.input);
    const c = t.shape[1];
    const scale = affine(net, a.weight, t.dtype, [c], 1);
    const bias = affine(net, a.bias, t.dtype, [c], 0);
    const y = net.net.add({
      type: "normalization",
      kind: "group",
      numGroups: a.groups,
      epsilon: a.eps,
      inputs: [x, scale, bias],
    });
    if (node.outputs.length === 1) return [y];
    if (!node.outputs.slice(1).some((v) => net.isUsed(v))) return [y, null, null];
    const n = t.shape[0];
    const grouped = reshape(net.net, x, [
      n,
      a.groups,
      t.shape.slice(1).reduce((p, d) => p * d, 1) / a.groups,
    ]);
    const [mean, rstd] = stats(net, grouped, [2], a.eps, net.typeOf(node.outputs[1]).dtype);
    return [y, reshape(net.net, mean, [n, a.groups]), reshape(net.net, rstd, [n, a.groups])];
  },
};

export const NORMALIZATION_CONVERTERS: readonly AnyCandidate[] = [
  ...(
    [
      "aten.batch_norm.default",
      "aten._native_batch_norm_legit_no_training.default",
      "aten._native_batch_norm_legit.default",
      "aten.native_batch_norm.default",
    ] as const
  ).flatMap((op) => [converter(op, batchNorm(true)), converter(op, batchNorm(false))]),
  converter("aten.batch_norm.default", batchStatistics),
  converter("aten.native_batch_norm.default", batchStatistics),
  converter("aten._native_batch_norm_legit.no_stats", batchStatistics),
  converter("aten.layer_norm.default", layerNorm),
  converter("aten.native_layer_norm.default", layerNorm),
  converter("aten.rms_norm.default", rmsNorm),
  converter("aten.group_norm.default", groupNorm),
  converter("aten.native_group_norm.default", groupNorm),
];

// Inference batch norm is a per-channel affine map, so it folds into the weights and bias of the
// convolution or linear layer that feeds it: one op fewer, and the conv keeps its epilogue free for fusion.
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../ir/tensor.js";
import { type Pass, rulePass } from "./pass.js";
import { arg } from "./rewrite/args.js";
import type { BoundNode, BoundWeight } from "./rewrite/pattern.js";
import { bool, int, op, optional, scalar, weight } from "./rewrite/pattern.js";
import type { RewriteContext } from "./rewrite/rule.js";
import { rule, ruleSet } from "./rewrite/rule.js";

export const BATCH_NORM = "aten._native_batch_norm_legit_no_training.default";

interface BatchNormParams {
  readonly gamma: BoundWeight | null;
  readonly beta: BoundWeight | null;
  readonly mean: BoundWeight;
  readonly variance: BoundWeight;
  readonly eps: number;
}

/** Per output channel: y = x·scale + shift. */
function affineOf(
  bn: BatchNormParams,
  channels: number,
): { scale: Float64Array; shift: Float64Array } | undefined {
  const read = (w: BoundWeight | null, fill: number) =>
    w ? toFloat64Array(w.weight.tensor) : new Float64Array(channels).fill(fill);
  const [gamma, beta, mean, variance] = [
    read(bn.gamma, 1),
    read(bn.beta, 0),
    read(bn.mean, 0),
    read(bn.variance, 1),
  ];
  if (![gamma, beta, mean, variance].every((a) => a.length === channels)) return undefined;
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = gamma[c] / Math.sqrt(variance[c] + bn.eps);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  return { scale, shift };
}

/** W·scale along the output-channel axis; `channelOf(i)` gives the output channel of flat element i. */
function scaleWeight(w: Tensor, scale: Float64Array, channelOf: (i: number) => number): Tensor {
  const data = toFloat64Array(w);
  const out = new Float64Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i] * scale[channelOf(i)];
  return tensorFromNumbers(w.dtype, w.shape, out);
}

/**
 * scaleWeight for weights whose output channel is the leading axis (conv, linear): one run of `perOut` elements
 * per channel. float32 straight from and to Float32Array (the product in double, rounded once on store: the same
 * bits as through a Float64Array and tensorFromNumbers), without a closure call per element: the weights of a whole
 * network pass through here on every compile and refit.
 */
function scaleLeading(w: Tensor, scale: Float64Array, perOut: number): Tensor {
  if (w.dtype !== "float32" || w.data.length !== scale.length * perOut)
    return scaleWeight(w, scale, (i) => Math.floor(i / perOut));
  const data = w.data as Float32Array;
  const out = new Float32Array(data.length);
  for (let c = 0, i = 0; c < scale.length; c++) {
    const s = scale[c];
    for (const end = i + perOut; i < end; i++) out[i] = data[i] * s;
  }
  return { dtype: w.dtype, shape: [...w.shape], data: out };
}

function foldedBias(
  bias: BoundWeight | null,
  affine: { scale: Float64Array; shift: Float64Array },
  dtype: Tensor["dtype"],
) {
  const b = bias ? toFloat64Array(bias.weight.tensor) : new Float64Array(affine.scale.length);
  return tensorFromNumbers(
    dtype,
    [b.length],
    b.map((v, c) => v * affine.scale[c] + affine.shift[c]),
  );
}

/** The batch norm's statistics outputs must be unused: only its normalized result is replaced. */
const onlyResultUsed = (root: BoundNode, ctx: RewriteContext) =>
  root.outputs.slice(1).every((o) => ctx.graph.isUnused(o.name));

function batchNormOf(input: ReturnType<typeof op>) {
  const gamma = optional(weight({ rank: 1 }));
  const beta = optional(weight({ rank: 1 }));
  const mean = weight({ rank: 1 });
  const variance = weight({ rank: 1 });
  const eps = scalar();
  const pattern = op(BATCH_NORM, {
    input,
    weight: gamma,
    bias: beta,
    running_mean: mean,
    running_var: variance,
    eps,
  });
  return { pattern, captures: { gamma, beta, mean, variance, eps } };
}

const convWeight = weight();
const convBias = optional(weight({ rank: 1 }));
const transposed = bool();
const groups = int();
const conv = op(
  "aten.convolution.default",
  { weight: convWeight, bias: convBias, transposed, groups },
  { singleUse: true },
);
const convBn = batchNormOf(conv);

export const foldBatchNormIntoConv = rule({
  name: "fold-batch-norm-into-conv",
  doc: "batch_norm(convolution(x, W, b)) ⇒ convolution(x, W·s, (b − μ)·s + β), s = γ/√(σ²+ε)",
  pattern: convBn.pattern,
  captures: { ...convBn.captures, conv, convWeight, convBias, transposed, groups },
  rewrite: (m, ctx) => {
    if (!onlyResultUsed(m.root, ctx)) return undefined;
    const w = m.convWeight.weight.tensor;
    const outChannels = m.conv.out.type.shape[1];
    const affine = affineOf(m, outChannels);
    if (!affine) return undefined;
    const perOut = w.shape.slice(1).reduce((a, b) => a * b, 1);
    // Non-transposed weights are [Cout, Cin/g, k…]; transposed ones [Cin, Cout/g, k…].
    const inner = w.shape.slice(2).reduce((a, b) => a * b, 1);
    const inPerGroup = w.shape[0] / m.groups;
    const outPerGroup = w.shape[1];
    const transposedChannel = (i: number) =>
      Math.floor(Math.floor(i / (outPerGroup * inner)) / inPerGroup) * outPerGroup +
      (Math.floor(i / inner) % outPerGroup);
    const b = ctx.build();
    const newWeight = b.weight(
      `${m.convWeight.name}_bn`,
      m.transposed ? scaleWeight(w, affine.scale, transposedChannel) : scaleLeading(w, affine.scale, perOut),
      `folded:${m.root.name}`,
    );
    const newBias = b.weight(
      `${m.root.name}_bias`,
      foldedBias(m.convBias, affine, m.conv.out.type.dtype),
      `folded:${m.root.name}`,
    );
    const out = b.node(
      "aten.convolution.default",
      { ...m.conv.args, weight: arg.tensor(newWeight), bias: arg.tensor(newBias) },
      m.root.out.type,
    );
    return b.replace(out);
  },
});

const linearWeight = weight({ rank: 2 });
const linearBias = optional(weight({ rank: 1 }));
const linear = op("aten.linear.default", { weight: linearWeight, bias: linearBias }, { singleUse: true });
const linearBn = batchNormOf(linear);

export const foldBatchNormIntoLinear = rule({
  name: "fold-batch-norm-into-linear",
  doc: "batch_norm(linear(x, W, b)) on [N, C] ⇒ linear(x, W·s, (b − μ)·s + β)",
  pattern: linearBn.pattern,
  captures: { ...linearBn.captures, linear, linearWeight, linearBias },
  rewrite: (m, ctx) => {
    if (!onlyResultUsed(m.root, ctx) || m.linear.out.type.shape.length !== 2) return undefined;
    const w = m.linearWeight.weight.tensor;
    const affine = affineOf(m, w.shape[0]);
    if (!affine) return undefined;
    const b = ctx.build();
    const k = w.shape[1];
    const newWeight = b.weight(`${m.linearWeight.name}_bn`, scaleLeading(w, affine.scale, k));
    const newBias = b.weight(
      `${m.root.name}_bias`,
      foldedBias(m.linearBias, affine, m.linear.out.type.dtype),
    );
    return b.replace(
      b.node(
        "aten.linear.default",
        { ...m.linear.args, weight: arg.tensor(newWeight), bias: arg.tensor(newBias) },
        m.root.out.type,
      ),
    );
  },
});

export const batchNormFoldRules = ruleSet(foldBatchNormIntoConv, foldBatchNormIntoLinear);

export const foldBatchNorm: Pass = rulePass(
  "fold-batch-norm",
  "fold inference batch norm into the convolution or linear layer before it",
  batchNormFoldRules,
);

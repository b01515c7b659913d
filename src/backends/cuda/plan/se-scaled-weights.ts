/**
 * Squeeze-excite's scale consumed by the 1×1 projection that reads it (default at batch ≥ SE_SCALED_MIN_BATCH;
 * `TORCHC_SE_SCALED_WEIGHTS=1` at any batch, `=0` never):
 *   conv1x1(x · s) with s [N, C, 1, 1]  =  per sample n, x_n [H·W, C] · (W ∘ s_n)ᵀ [C, Cout]
 * so the network computes the scaled weights Wₙ = W[Cout, C] · s[n, 1, C] (an element step writing N·Cout·C
 * values) and one batched matmul over the samples, instead of multiplying the whole activation (N·C·H·W values read
 * and written again) before the convolution. In the engine's channels-last layout the reshapes around the matmul
 * are views. The bias and a residual add after it are one element step for now: the scheduler gives epilogues to
 * flat matmuls only (fuse/schedule.ts), and this one has a batched B.
 *
 * Why: at batch 128 EfficientNet-B0's 16 SE multiplies read and write every depthwise output a second time
 * (~1 GB, ~0.35–0.45 ms on an H100; bench/NOTES.md session 14). Only where the scaled weights are at most half the
 * activation (Cout ≤ H·W / 2: stages 1–4 of EfficientNet-B0; stage 5, 112 channels over 196 pixels, and the 7×7
 * stages keep the multiply).
 * Measured (H100, session 15, bench transformers, one process each): EfficientNet-B0 b128 3.409 → 3.233 ms
 * (predicted −0.15…−0.25 ms), error against PyTorch fp32 unchanged (4.5e-3); b1 0.394 → 0.397 ms with four more
 * kernels, hence the batch threshold (nothing measured between 1 and 128).
 */
import { binary } from "../../../converters/impl/elementwise.js";
import { linear } from "../../../converters/impl/matmul.js";
import type { NetworkBuilder } from "../../../network/builder.js";
import type { ConvolutionLayer, ElementwiseLayer, Layer } from "../../../network/layers/index.js";
import type { Network } from "../../../network/network.js";
import { fromPixelRows, pixelRows, reshapedWeight, rewriteConvolutions } from "./rewrite-convolutions.js";

interface ScaledInput {
  readonly mul: ElementwiseLayer;
  /** The activation [N, C, H, W] and the scale [N, C, 1, 1]. */
  readonly x: string;
  readonly s: string;
}

/** The SE multiply feeding `conv` (its only reader), or why the convolution keeps its input as it is. */
export function seScaledInput(
  net: Network,
  conv: ConvolutionLayer,
  producer: ReadonlyMap<string, Layer>,
  readers: ReadonlyMap<string, number>,
  weightIsConstant: boolean,
): ScaledInput | string {
  const w = net.tensors[conv.inputs[1]].shape;
  if (w.length !== 4 || w[2] !== 1 || w[3] !== 1 || conv.groups !== 1)
    return "not a 1×1 convolution of one group";
  if (conv.stride.some((s) => s !== 1) || conv.padding.some((p) => p !== 0)) return "strided or padded";
  if (!weightIsConstant) return "the weight is not a constant";
  const input = conv.inputs[0];
  const mul = producer.get(input);
  if (mul?.type !== "elementwise" || mul.op !== "mul") return "its input is not a multiply";
  if (readers.get(input) !== 1 || net.outputs.includes(input)) return "the multiply has other readers";
  const shape = net.tensors[input].shape;
  if (shape.length !== 4 || net.tensors[input].dtype !== "float16") return "not a float16 4-D input";
  const [n, c, h, wd] = shape;
  const [a, b] = mul.inputs;
  const isScale = (t: string) => net.tensors[t].shape.join() === [n, c, 1, 1].join();
  const isFull = (t: string) => net.tensors[t].shape.join() === shape.join();
  const pair =
    isFull(a) && isScale(b) ? { x: a, s: b } : isFull(b) && isScale(a) ? { x: b, s: a } : undefined;
  if (!pair || pair.x === pair.s) return "not a per-sample channel scale";
  if (c % 8 !== 0 || w[0] % 8 !== 0) return "channels not a multiple of 8";
  if (w[0] * 2 > h * wd) return `scaled weights (${w[0]} × ${c} per sample) larger than half the activation`;
  return { mul, ...pair };
}

/** Default from this batch up: at batch 1 the rewrite gained nothing and added kernels. */
export const SE_SCALED_MIN_BATCH = 32;

/** The smallest batch the rewrite applies to: TORCHC_SE_SCALED_WEIGHTS=1 any, =0 none, else SE_SCALED_MIN_BATCH. */
export function seScaledMinBatch(env: Readonly<Record<string, string | undefined>> = process.env): number {
  const v = env.TORCHC_SE_SCALED_WEIGHTS;
  return v === "1" ? 1 : v === "0" ? Number.POSITIVE_INFINITY : SE_SCALED_MIN_BATCH;
}

/** The network with every eligible SE multiply + 1×1 convolution rewritten (the same network when off or none). */
export function seScaledWeights(net: Network): Network {
  const minBatch = seScaledMinBatch();
  if (minBatch === Number.POSITIVE_INFINITY) return net;
  const producer = new Map(net.layers.map((l) => [l.output, l] as const));
  const readers = new Map<string, number>();
  for (const l of net.layers) for (const t of new Set(l.inputs)) readers.set(t, (readers.get(t) ?? 0) + 1);
  const constants = new Set(net.layers.filter((l) => l.type === "constant").map((l) => l.output));
  const scaled = new Map<ConvolutionLayer, ScaledInput>();
  for (const l of net.layers) {
    if (l.type !== "convolution" || (net.tensors[l.inputs[0]].shape[0] ?? 0) < minBatch) continue;
    const found = seScaledInput(net, l, producer, readers, constants.has(l.inputs[1]));
    if (typeof found !== "string") scaled.set(l, found);
  }
  if (scaled.size === 0) return net;
  const muls = new Set([...scaled.values()].map((v) => v.mul));
  return rewriteConvolutions(
    net,
    (l): l is ConvolutionLayer => l.type === "convolution" && scaled.has(l),
    (b, conv, read) => scaledMatmul(b, net, conv, scaled.get(conv)!, read),
    (l) => l.type === "elementwise" && muls.has(l),
  );
}

function scaledMatmul(
  b: NetworkBuilder,
  net: Network,
  conv: ConvolutionLayer,
  input: ScaledInput,
  read: (t: string) => string,
): string {
  const [n, c, h, w] = net.tensors[input.x].shape;
  const cout = net.tensors[conv.inputs[1]].shape[0];
  // [Cout, C, 1, 1] and [1, Cout, C] are the same memory: the weight is not copied.
  const w3 = reshapedWeight(b, net, conv, [1, cout, c]);
  const s3 = b.add({
    type: "shuffle",
    inputs: [read(input.s)],
    firstTranspose: null,
    reshape: [n, 1, c],
    secondTranspose: null,
  });
  const scaledWeights = binary(b, "mul", w3, s3);
  const rows = pixelRows(b, read(input.x), true);
  const bias = conv.inputs[2] === undefined ? null : read(conv.inputs[2]);
  const y = linear(b, rows, scaledWeights, bias);
  return fromPixelRows(b, y, [n, h, w]);
}

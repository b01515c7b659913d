/**
 * An image stem over a few input channels (ResNet's 7×7 over RGB, EfficientNet's 3×3 at batch 128) gets its input
 * and weight padded with zero channels up to 8: cuDNN's channels-last fp16 tensor-core convolutions want C a
 * multiple of 8, and with C = 3 it picks slow kernels (H100, session 14: ResNet-50 b128's stem 0.31 ms, 3–5× its
 * floor; EfficientNet-B0 b128's 0.17 ms, ~4×; ResNet-50 b1's the slowest step at 21–29 µs). Zero channels add
 * nothing to any output. The pad joins the input's cast and relayout in one element kernel, so no step is added,
 * and the padded weight is a constant made here on the host (refit plans the new network again, so it follows).
 * Left alone: stems the direct kernel takes (fuse/pointwise-conv-rule.ts directConvShape), grouped, 1×1 and
 * non-fp16 convolutions (by the network's dtype: compile() converts the network to fp16 before planning), NCHW
 * plans and stems whose output is a network output. Opt-in (TORCHC_PAD_STEM_CHANNELS=1) until an H100 A/B
 * measures it.
 */
import { numel, type Tensor, tensorFromNumbers, toFloat64Array } from "../../../ir/tensor.js";
import type { NetworkBuilder } from "../../../network/builder.js";
import type { ConvolutionLayer, Layer } from "../../../network/layers/index.js";
import type { Network } from "../../../network/network.js";
import { directConvShape } from "../fuse/pointwise-conv-rule.js";
import { fp16ConstantConvRefusal, rewriteConvolutions } from "./rewrite-convolutions.js";

/** The channel count stems are padded to. */
export const STEM_CHANNELS = 8;

/** Why `layer` keeps its input channels, or null when they are padded. */
export function padStemRefusal(
  net: Network,
  layer: ConvolutionLayer,
  weightIsConstant: boolean,
): string | null {
  const common = fp16ConstantConvRefusal(net, layer, weightIsConstant);
  if (common) return common;
  const w = net.tensors[layer.inputs[1]];
  if (layer.groups !== 1) return "grouped";
  const [, cin, kh, kw] = w.shape;
  if (cin % STEM_CHANNELS === 0 || cin > STEM_CHANNELS) return `${cin} input channels`;
  if (kh * kw < 2) return "a 1×1 convolution";
  if (directConvShape(layer, w.shape, net.tensors[layer.output].shape))
    return "the direct stem kernel takes it";
  // an output keeps its declared NCHW layout, so cuDNN would run the convolution NCHW
  if (net.outputs.includes(layer.output)) return "its output is a network output";
  return null;
}

/** The network with every eligible stem's input channels padded (the same network when there is none). */
export function padStemChannels(net: Network, channelsLast: boolean): Network {
  // an NCHW convolution gains nothing from 8 channels, and would pay a pad step of its own
  if (process.env.TORCHC_PAD_STEM_CHANNELS !== "1" || !channelsLast) return net;
  const constants = new Map<string, Tensor>();
  for (const l of net.layers) if (l.type === "constant") constants.set(l.output, net.constants[l.weight]);
  const isStem = (l: Layer): l is ConvolutionLayer =>
    l.type === "convolution" && padStemRefusal(net, l, constants.has(l.inputs[1])) === null;
  if (!net.layers.some(isStem)) return net;
  return rewriteConvolutions(net, isStem, (b, conv, read) => paddedConv(b, conv, read, constants));
}

function paddedConv(
  b: NetworkBuilder,
  conv: ConvolutionLayer,
  read: (t: string) => string,
  constants: ReadonlyMap<string, Tensor>,
): string {
  const w = constants.get(conv.inputs[1]);
  if (!w) throw new Error(`padStemChannels: '${conv.name}' has no constant weight`);
  const [cout, cin, kh, kw] = w.shape;
  const x = b.add({
    type: "padding",
    inputs: [read(conv.inputs[0])],
    pre: [0, 0, 0, 0],
    post: [0, STEM_CHANNELS - cin, 0, 0],
    mode: "constant",
    value: 0,
  });
  const wp = b.constant(paddedWeight(w, [cout, cin, kh, kw]));
  const bias = conv.inputs[2];
  return b.copy(conv, bias === undefined ? [x, wp] : [x, wp, read(bias)]);
}

/** [Cout, Cin, kh, kw] → [Cout, 8, kh, kw], the added input channels all zero. */
export function paddedWeight(w: Tensor, [cout, cin, kh, kw]: readonly number[]): Tensor {
  const from = toFloat64Array(w);
  const k = kh * kw;
  const out = new Float64Array(numel([cout, STEM_CHANNELS, kh, kw]));
  for (let o = 0; o < cout; o++)
    out.set(from.subarray(o * cin * k, (o + 1) * cin * k), o * STEM_CHANNELS * k);
  return tensorFromNumbers(w.dtype, [cout, STEM_CHANNELS, kh, kw], out);
}

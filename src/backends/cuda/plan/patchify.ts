/**
 * A float16/bfloat16 patch-embedding convolution (kernel = stride, no padding, no dilation, one group, ≤ 4 input
 * channels: the image stems of ViT, DeiT, Swin and ConvNeXt) becomes a patchify shuffle and a matmul with a bias epilogue:
 *   x [B, C, H, W] → [B, H/p, p… ] → patches [B, (H/p)(W/q), C·p·q] → · Wᵀ [C·p·q, Cout] + b → [B, Cout, H/p, W/q].
 * Why: cuDNN runs these as general convolutions over 3-channel inputs, slowly (DeiT-tiny's 16×16/16 stem took
 * 0.07 ms of a 0.43 ms forward pass at batch 1 and 0.31 of 4.0 ms at batch 128 on the H200), while the shuffle
 * fuses with the input's cast into one element kernel and the matmul is a small cuBLASLt GEMM. The output's
 * transpose back to [B, Cout, …] is a layout, not a copy, and the usual flatten + transpose after a stem reads
 * the GEMM's rows directly.
 */
import { linear } from "../../../converters/impl/matmul.js";
import { isFloating } from "../../../ir/dtype.js";
import type { NetworkBuilder } from "../../../network/builder.js";
import type { CastLayer, ConvolutionLayer, Layer } from "../../../network/layers/index.js";
import type { Network } from "../../../network/network.js";
import {
  fp16ConstantConvRefusal,
  fromPixelRows,
  reshapedWeight,
  rewriteConvolutions,
} from "./rewrite-convolutions.js";

/** Input channels up to which a patch convolution is a GEMM (image stems); wider inputs stay with cuDNN. */
const MAX_CHANNELS = 4;

/** Why `layer` is not a patch embedding, or null when it is. */
export function patchifyRefusal(
  net: Network,
  layer: ConvolutionLayer,
  weightIsConstant: boolean,
): string | null {
  // float32 engines keep cuDNN: without a cast to fuse into, the patch copy would be one more pass over the image.
  // bfloat16 keeps its convolution too: the engine's cuBLASLt matmuls take float16 and float32 only
  // (matmulGeometry), so a bf16 patch GEMM would stop the build where the convolution compiles.
  const common = fp16ConstantConvRefusal(net, layer, weightIsConstant);
  if (common) return common;
  const x = net.tensors[layer.inputs[0]];
  const w = net.tensors[layer.inputs[1]];
  if (layer.groups !== 1) return "grouped";
  const [, cin, kh, kw] = w.shape;
  if (cin > MAX_CHANNELS) return `${cin} input channels (cuDNN takes more than ${MAX_CHANNELS})`;
  if (kh * kw < 2) return "a 1×1 convolution";
  if (layer.stride[0] !== kh || layer.stride[1] !== kw) return "stride differs from the kernel";
  if (layer.padding.some((p) => p !== 0) || layer.dilation.some((d) => d !== 1)) return "padded or dilated";
  if (x.shape[2] % kh !== 0 || x.shape[3] % kw !== 0) return "the image is not a whole number of patches";
  return null;
}

/** The network with every patch-embedding convolution rewritten (the same network when there is none). */
export function patchifyConvolutions(net: Network): Network {
  const constants = new Set(net.layers.filter((l) => l.type === "constant").map((l) => l.output));
  const isPatch = (l: Layer): l is ConvolutionLayer =>
    l.type === "convolution" && patchifyRefusal(net, l, constants.has(l.inputs[1])) === null;
  if (!net.layers.some(isPatch)) return net;
  const casts = castsInFront(net, isPatch);
  return rewriteConvolutions(
    net,
    isPatch,
    (b, conv, read) => patchMatmul(b, net, conv, read, casts.get(conv.inputs[0])),
    (l) => casts.has(l.output),
  );
}

/**
 * Casts whose only reader is a patch convolution (fp16 engines cast the float32 image first): the shuffle moves in
 * front of them, so the cast and the patch copy are one element kernel instead of a cast and a copy of a view.
 */
function castsInFront(net: Network, isPatch: (l: Layer) => boolean): Map<string, CastLayer> {
  const readers = new Map<string, Layer[]>();
  for (const l of net.layers)
    for (const i of new Set(l.inputs)) readers.set(i, [...(readers.get(i) ?? []), l]);
  const casts = new Map<string, CastLayer>();
  for (const l of net.layers) {
    if (l.type !== "cast" || net.outputs.includes(l.output)) continue;
    const r = readers.get(l.output) ?? [];
    if (
      r.length === 1 &&
      isPatch(r[0]) &&
      r[0].inputs[0] === l.output &&
      isFloating(net.tensors[l.inputs[0]].dtype)
    )
      casts.set(l.output, l);
  }
  return casts;
}

function patchMatmul(
  b: NetworkBuilder,
  net: Network,
  conv: ConvolutionLayer,
  read: (t: string) => string,
  cast: CastLayer | undefined,
): string {
  const [n, c, h, w] = net.tensors[conv.inputs[0]].shape;
  const [cout, , p, q] = net.tensors[conv.inputs[1]].shape;
  const [hp, wq] = [h / p, w / q];
  const patches = b.add({
    type: "shuffle",
    inputs: [read(cast ? cast.inputs[0] : conv.inputs[0])],
    firstTranspose: null,
    reshape: [n, c, hp, p, wq, q],
    secondTranspose: [0, 2, 4, 1, 3, 5],
  });
  const rows = b.add({
    type: "shuffle",
    inputs: [patches],
    firstTranspose: null,
    reshape: [n, hp * wq, c * p * q],
    secondTranspose: null,
  });
  const input = cast ? b.add({ type: "cast", inputs: [rows], to: cast.to }) : rows;
  // [Cout, C, p, q] and [Cout, C·p·q] are the same memory: the weight is not copied.
  const wc = reshapedWeight(b, net, conv, [cout, c * p * q]);
  const bias = conv.inputs[2] === undefined ? null : read(conv.inputs[2]);
  const y = linear(b, input, wc, bias);
  return fromPixelRows(b, y, [n, hp, wq]);
}

/**
 * float16 1×1 convolutions over many pixels with few input channels become matmuls (opt-in,
 * `TORCHC_CONV1X1_GEMM=1`): x [N, C, H, W] → rows [N·H·W, C] · Wᵀ [C, Cout] + b → [N, Cout, H, W]. In the engine's
 * channels-last layout both reshapes are views, so the convolution is one cuBLASLt GEMM with a bias epilogue.
 * Why it was tried: at batch 128 cuDNN runs EfficientNet-B0's expansion convolutions (Cin 16–40) at 2–3× their
 * bandwidth floor on an H100 (session 14: 16 → 96 channels at 112² 236 µs for ~360 MB, 24 → 144 at 56² 111 µs for
 * ~134 MB). Measured slower, so it stays opt-in: EfficientNet-B0 b128 3.733 ms against 3.407 (H100, session 14; the
 * five matmuls 0.505 ms, and the SiLU each needs as its own pass: cuBLASLt has no SiLU epilogue). Bounds: `TORCHC_CONV1X1_GEMM_MAX_CIN` (default 64) and
 * at least `TORCHC_CONV1X1_GEMM_MIN_ROWS` pixels (default 2^17: batch 1 keeps its convolutions).
 */
import { linear } from "../../../converters/impl/matmul.js";
import type { NetworkBuilder } from "../../../network/builder.js";
import type { ConvolutionLayer, Layer } from "../../../network/layers/index.js";
import type { Network } from "../../../network/network.js";
import { envNumber } from "../../../util/env-number.js";
import {
  fp16ConstantConvRefusal,
  fromPixelRows,
  pixelRows,
  reshapedWeight,
  rewriteConvolutions,
} from "./rewrite-convolutions.js";

export const CONV1X1_GEMM_MAX_CIN = 64;
export const CONV1X1_GEMM_MIN_ROWS = 1 << 17;

/** Why `layer` stays a convolution, or null when it becomes a matmul. */
export function pointwiseMatmulRefusal(
  net: Network,
  layer: ConvolutionLayer,
  weightIsConstant: boolean,
): string | null {
  const common = fp16ConstantConvRefusal(net, layer, weightIsConstant);
  if (common) return common;
  const x = net.tensors[layer.inputs[0]];
  const [cout, cin, kh, kw] = net.tensors[layer.inputs[1]].shape;
  if (layer.groups !== 1 || kh !== 1 || kw !== 1) return "not a 1×1 convolution of one group";
  if (layer.stride.some((s) => s !== 1) || layer.padding.some((p) => p !== 0)) return "strided or padded";
  if (cin % 8 !== 0 || cout % 8 !== 0) return "channels not a multiple of 8";
  if (cin > envNumber("TORCHC_CONV1X1_GEMM_MAX_CIN", CONV1X1_GEMM_MAX_CIN)) return `${cin} input channels`;
  const [n, , h, wd] = x.shape;
  if (n * h * wd < envNumber("TORCHC_CONV1X1_GEMM_MIN_ROWS", CONV1X1_GEMM_MIN_ROWS)) return "few pixels";
  return null;
}

/** The network with its eligible 1×1 convolutions rewritten (the same network when off or when there is none). */
export function pointwiseConvolutionsAsMatmuls(net: Network): Network {
  if (process.env.TORCHC_CONV1X1_GEMM !== "1") return net;
  const constants = new Set(net.layers.filter((l) => l.type === "constant").map((l) => l.output));
  const eligible = (l: Layer): l is ConvolutionLayer =>
    l.type === "convolution" && pointwiseMatmulRefusal(net, l, constants.has(l.inputs[1])) === null;
  if (!net.layers.some(eligible)) return net;
  return rewriteConvolutions(net, eligible, (b, conv, read) => pointwiseMatmul(b, net, conv, read));
}

function pointwiseMatmul(
  b: NetworkBuilder,
  net: Network,
  conv: ConvolutionLayer,
  read: (t: string) => string,
): string {
  const [n, cin, h, w] = net.tensors[conv.inputs[0]].shape;
  const cout = net.tensors[conv.inputs[1]].shape[0];
  const rows = pixelRows(b, read(conv.inputs[0]), false);
  // [Cout, Cin, 1, 1] and [Cout, Cin] are the same memory: the weight is not copied.
  const wc = reshapedWeight(b, net, conv, [cout, cin]);
  const bias = conv.inputs[2] === undefined ? null : read(conv.inputs[2]);
  const y = linear(b, rows, wc, bias);
  return fromPixelRows(b, y, [n, h, w]);
}

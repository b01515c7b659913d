/**
 * Which 1×1 convolutions run as generated kernels (codegen/pointwise-conv.ts) instead of cuDNN: stride 1, no
 * padding, channels-last input in the plan's storage type, constant weights and bias, and few enough
 * multiply-adds that cuDNN's fixed cost per call outweighs its tensor cores (EfficientNet-B0's expand and project
 * convolutions at batch 1 are 2–20 M; ResNet-50's are 13–51 M). The input may be a squeeze-excite scale
 * x·s[n, c] that nothing else reads, computed as the kernel loads it. Opt-in (TORCHC_POINTWISE_CONV=1) since the H100
 * run of session 9 found cuDNN faster at batch 1 and tiny_resnet wrong in fp16 with it on;
 * TORCHC_POINTWISE_MAX_MACS moves the size bound and TORCHC_POINTWISE_MAX_CIN bounds the input channels (A/B
 * knobs). At batch 128 these CUDA-core kernels lose badly (H100, session 14, EfficientNet-B0: 16 → 96 at 112² 810 µs
 * against cuDNN's 236; the model 4.669 ms with Cin ≤ 64 against 3.407).
 */

import type { Layer, LayerOf } from "../../../network/layers/index.js";
import { envNumber } from "../../../util/env-number.js";
import { smallGemmSupports } from "../codegen/gemm-small.js";
import { channelsLast, layoutKey } from "../plan/layout.js";
import type { TensorInfo } from "../plan/tensors.js";
import type { RowsScheduleView } from "./rows-fusion.js";

/** The default bound on N·H·W·Cin·Cout. */
export const POINTWISE_MAX_MACS = 24_000_000;

export interface PointwisePlan {
  /** The squeeze-excite multiply read in place: its element group is dropped from the schedule. */
  readonly scale?: { readonly input: string; readonly by: string; readonly layer: Layer };
}

function channelsLastPlain(i: TensorInfo, storage: string): boolean {
  return (
    i.shape.length === 4 &&
    i.storage === storage &&
    i.viewOf === undefined &&
    i.strides === undefined &&
    layoutKey(i.shape, i.layout) === layoutKey(i.shape, channelsLast(4))
  );
}

/** The squeeze-excite multiply feeding `x`, when the kernel can compute it in place of a step of its own. */
function scaleOf(v: RowsScheduleView, conv: Layer, x: string, storage: string): PointwisePlan["scale"] {
  const mul = v.producer(x);
  if (mul?.type !== "elementwise" || mul.op !== "mul" || v.isOutputish(x)) return undefined;
  const readers = v.readers(x);
  if (readers.length !== 1 || readers[0] !== conv) return undefined;
  const group = v.group(x);
  if (!group || group.root !== x || group.layers.length !== 1) return undefined;
  const [n, c] = v.info(x).shape;
  for (const [input, by] of [mul.inputs, [mul.inputs[1], mul.inputs[0]]]) {
    const bi = v.info(by);
    if (input === by || !channelsLastPlain(v.info(input), storage)) continue;
    if (v.info(input).shape.join() !== v.info(x).shape.join()) continue;
    if (bi.shape.join() !== [n, c, 1, 1].join() || bi.strides !== undefined) continue;
    return { input, by, layer: mul };
  }
  return undefined;
}

/**
 * A 1×1 convolution of one group, unstrided, unpadded and undilated, whose constant weights (in `storage`, identity
 * layout) only it reads and whose bias, if any, is constant: what both generated 1×1 paths require.
 */
function plainOneByOne(v: RowsScheduleView, layer: LayerOf<"convolution">, storage: string): boolean {
  const [, w, b] = layer.inputs;
  const wi = v.info(w);
  const ws = wi.shape;
  if (layer.groups !== 1 || ws.length !== 4 || ws[2] !== 1 || ws[3] !== 1) return false;
  if (!layer.stride.every((s) => s === 1) || !layer.padding.every((p) => p === 0)) return false;
  if (!layer.dilation.every((d) => d === 1)) return false;
  if (v.producer(w)?.type !== "constant" || v.consumers(w).length !== 1) return false;
  if (b !== undefined && v.producer(b)?.type !== "constant") return false;
  return wi.storage === storage && wi.layout.join() === "0,1,2,3";
}

export function pointwiseConvPlan(
  v: RowsScheduleView,
  layer: LayerOf<"convolution">,
  storage: string,
): PointwisePlan | undefined {
  if (process.env.TORCHC_POINTWISE_CONV !== "1") return undefined;
  if (storage !== "float16" && storage !== "float32") return undefined;
  // The kernel reads the weights as [Cin][Cout]: a constant another convolution also reads keeps its layout.
  if (!plainOneByOne(v, layer, storage)) return undefined;
  const [x, w] = layer.inputs;
  const ws = v.info(w).shape;
  const xi = v.info(x);
  if (xi.shape.length !== 4) return undefined;
  const [n, cin, h, wd] = xi.shape;
  if (n * h * wd * cin * ws[0] > envNumber("TORCHC_POINTWISE_MAX_MACS", POINTWISE_MAX_MACS)) return undefined;
  if (cin > envNumber("TORCHC_POINTWISE_MAX_CIN", Number.POSITIVE_INFINITY)) return undefined;
  const scale = scaleOf(v, layer, x, storage);
  if (!scale && !channelsLastPlain(xi, storage)) return undefined;
  return scale ? { scale } : {};
}

/** Input channels up to which, and pixels from which, a 1×1 convolution may run as the tensor-core GEMM. */
export const POINTWISE_GEMM_MAX_CIN = 64;
export const POINTWISE_GEMM_MIN_PIXELS = 1 << 16;

/**
 * Whether `layer` may run as the tensor-core small GEMM (ConvStep engine "gemm", codegen/pointwise-gemm.ts; opt-in
 * TORCHC_POINTWISE_TC=1): float16, a plain 1×1 convolution of one group, constant weights read by it alone in
 * their [Cout, Cin] layout, a dense channels-last input, Cin ≤ 64 and Cout multiples of 8, ≥ 2¹⁶ pixels
 * (EfficientNet-B0 at batch 128 down to 28² maps; never at batch 1). TORCHC_POINTWISE_TC_MIN_PIXELS moves the bound.
 * Measured slower (H100, session 15): EfficientNet-B0 b128 3.814 ms against 3.409 with cuDNN; its six
 * convolutions 1.063 ms against cuDNN's ~0.66.
 */
export function pointwiseGemmEligible(
  v: RowsScheduleView,
  layer: LayerOf<"convolution">,
  storage: string,
): boolean {
  if (process.env.TORCHC_POINTWISE_TC !== "1" || storage !== "float16") return false;
  if (!plainOneByOne(v, layer, storage)) return false;
  const [x, w] = layer.inputs;
  const ws = v.info(w).shape;
  const xi = v.info(x);
  if (!denseChannelsLast(xi, storage)) return false;
  const [n, cin, h, wd] = xi.shape;
  if (cin % 8 !== 0 || ws[0] % 8 !== 0 || cin > POINTWISE_GEMM_MAX_CIN) return false;
  if (n * h * wd < envNumber("TORCHC_POINTWISE_TC_MIN_PIXELS", POINTWISE_GEMM_MIN_PIXELS)) return false;
  // the kernel's own limits (int indexing), so that a refusal falls back to cuDNN instead of failing the build
  const problem = {
    M: n * h * wd,
    N: ws[0],
    K: cin,
    bias: false,
    activation: "none",
    residual: false,
  } as const;
  return smallGemmSupports(problem, storage) === undefined;
}

/**
 * Memory the tensor-core GEMM can read or write as dense [N·H·W, C] rows: channels-last, no strides or offset of
 * its own. A reshape view qualifies (its pointer resolves to its storage root), unlike for the pointwise kernel.
 */
export function denseChannelsLast(i: TensorInfo, storage: string): boolean {
  return (
    i.shape.length === 4 &&
    i.storage === storage &&
    i.strides === undefined &&
    (i.offset ?? 0) === 0 &&
    layoutKey(i.shape, i.layout) === layoutKey(i.shape, channelsLast(4))
  );
}

/** The default bound on a direct convolution's multiply-adds (EfficientNet-B0's stem at batch 1: 10.8 M). */
export const DIRECT_STEM_MAX_MACS = 16_000_000;

/**
 * A small convolution over a few input channels (an image stem: 3×3, 3 → 32) as an element kernel's direct loop
 * instead of cuDNN: the kernel reads the network's float32 NCHW input as it is, so the cast and relayout step in
 * front of cuDNN disappears, and the activation after it joins the same kernel. TORCHC_DIRECT_STEM=0 keeps cuDNN.
 */
export function preferDirectConv(v: RowsScheduleView, layer: LayerOf<"convolution">): boolean {
  return directConvShape(layer, v.info(layer.inputs[1]).shape, v.info(layer.output).shape);
}

/** preferDirectConv on shapes alone: the weight's [Cout, Cin, kh, kw] and the output's shape. */
export function directConvShape(
  layer: LayerOf<"convolution">,
  ws: readonly number[],
  out: readonly number[],
): boolean {
  if (process.env.TORCHC_DIRECT_STEM === "0" || layer.groups !== 1) return false;
  if (ws.length !== 4 || (ws[2] === 1 && ws[3] === 1) || ws[1] > 4) return false;
  const macs = out.reduce((a, d) => a * d, 1) * ws[1] * ws[2] * ws[3];
  return macs <= envNumber("TORCHC_DIRECT_STEM_MAX_MACS", DIRECT_STEM_MAX_MACS);
}

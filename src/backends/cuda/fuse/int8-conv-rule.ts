/**
 * Which dequantize layers int8 convolutions can absorb (TORCHC_QUANT_KERNELS=1): a per-tensor
 * dequantize(quantize(x)) to int8 with zero point 0, read only by 2-d, one-group convolutions as their input,
 * with input and output channels in multiples of 4, on maps larger than 1×1.
 * The scheduler then leaves the dequantize out: the element kernel that quantizes stores the int8 values and
 * each convolution reads them (one byte per value instead of a float write and read). A convolution the library
 * then refuses in int8 gets the dequantize as an element step of its own, just before it.
 *
 * Zero point 0 because cuDNN pads with int8 zeros: they must mean 0.0, as the float convolution's padding does.
 */
import type { Layer } from "../../../network/layers/index.js";
import { samePerTensorQuantization } from "../../../network/layers/quantize.js";
import type { RowsScheduleView } from "./rows-fusion.js";
import type { Int8ConvInput } from "./steps.js";

function int8Reader(v: RowsScheduleView, r: Layer, t: string): boolean {
  if (r.type !== "convolution" || r.inputs[0] !== t || r.inputs[1] === t || r.inputs[2] === t) return false;
  const w = v.info(r.inputs[1]).shape;
  // int8 NHWC reads channels as 4-byte vectors (device/conv-int8.ts): an image stem's 3 channels stay float
  const vectors = w[0] % 4 === 0 && v.info(t).shape[1] % 4 === 0;
  // 1×1 maps (squeeze-excite) are the generated gemv kernels' (launch-bound, not arithmetic-bound)
  const [, , h, wd] = v.info(r.output).shape;
  const map = h * wd > 1;
  return r.groups === 1 && w.length === 4 && vectors && map && v.producer(r.inputs[1])?.type === "constant";
}

/** The int8 input of every dequantize output the scheduler may leave to its convolutions. */
export function int8ConvInputs(v: RowsScheduleView, layers: readonly Layer[]): Map<string, Int8ConvInput> {
  const out = new Map<string, Int8ConvInput>();
  for (const dq of layers) {
    if (dq.type !== "dequantize") continue;
    const q = v.producer(dq.inputs[0]);
    if (
      q?.type !== "quantize" ||
      q.dtype !== "int8" ||
      !samePerTensorQuantization(q, dq) ||
      q.zeroPoint[0] !== 0
    )
      continue;
    // cuDNN saturates to int8's whole range: a narrower one (a [-127, 127] grid) would not be kept
    if (q.qmin !== -128 || q.qmax !== 127) continue;
    if (v.isOutputish(dq.output) || v.isOutputish(q.output)) continue;
    const readers = v.consumers(dq.output);
    if (readers.length === 0 || readers.some((r) => !int8Reader(v, r, dq.output))) continue;
    out.set(dq.output, { quantize: q, dequantize: dq });
  }
  return out;
}

/**
 * One quantized convolution on the device (issue 14), the conv counterpart of quantized-linear.ts: quantize the
 * fp32/fp16 NHWC input per tensor (matmul-int8.ts's kernel, the linear's arithmetic), then cuDNN's int8 graph
 * (device/conv-int8.ts): int32 accumulation, y = act(f32(acc) · alpha[k] + bias'[k]) in fp32 or fp16, or in int8
 * with a requantize scale. alpha[k] = f32(f32(sX) · f32(sW[k])) (int8Alpha) and bias' the bias with the zero
 * point folded in (int8Bias), as torchc.quantized_convolution's reference (src/ops/quantized-layers.ts).
 * Weights come in PyTorch's KCRS order and are stored KRSC. Every argument is checked before anything is
 * allocated; a cuDNN refusal is returned as a reason.
 */
import type { Cudnn } from "../device/conv.js";
import { ACTIVATION_MODE, type ConvGraphStage } from "../device/conv-graph.js";
import {
  type Int8ConvPlan,
  type Int8ConvSpec,
  int8ConvRefusal,
  tryBuildInt8ConvPlan,
} from "../device/conv-int8.js";
import type { ConvActivation } from "../device/conv-shape.js";
import { KernelArgs, launch, type ParamType } from "../device/launch.js";
import { DeviceBuffer } from "../device/memory.js";
import { buildKernels } from "../device/module.js";
import type { Stream } from "../device/stream.js";
import { checkDevice, DeviceArgumentError, type DeviceMemory } from "../device/validate.js";
import {
  QUANT_BLOCK,
  QUANT_KERNEL,
  QUANT_KERNEL_NAMES,
  type QuantIoDType,
  quantGrid,
  quantKernelSource,
} from "./matmul-int8.js";
import { int8Alpha, int8Bias } from "./quantized-linear.js";

export interface QuantizedConvSpec {
  readonly n: number;
  readonly c: number;
  readonly h: number;
  readonly w: number;
  /** Output channels. */
  readonly k: number;
  readonly r: number;
  readonly s: number;
  readonly stride?: number | readonly [number, number];
  /** Symmetric [h, w]. */
  readonly padding?: number | readonly [number, number];
  readonly dilation?: number | readonly [number, number];
  /** The float input's and output's type (NHWC). */
  readonly dtype: QuantIoDType;
  /** The activation's per-tensor scale. */
  readonly inputScale: number;
  readonly inputZeroPoint?: number;
  /** The activation's integer range: default [-128, 127]; [0, 255] for uint8 (stored minus 128). */
  readonly qmin?: number;
  readonly qmax?: number;
  /** [K, C, R, S] symmetric int8, as PyTorch stores it. */
  readonly weight: Int8Array;
  /** Per output channel ([K]) or per tensor ([1]). */
  readonly weightScales: Float32Array;
  /** [K] float32, or null. */
  readonly bias?: Float32Array | null;
  /** After the bias; default none. */
  readonly activation?: ConvActivation;
  /**
   * Requantize: y is int8, y = cuDNN's int8 conversion of act(acc · alpha[k] / sY + bias'[k] / sY). Only with
   * no activation or relu (act(v) / sY = act(v / sY) needs a positively homogeneous act).
   */
  readonly outputScale?: number;
}

const DIM_MAX = 2 ** 31 - 1;

function pairOf(v: number | readonly [number, number] | undefined, dflt: number): readonly [number, number] {
  if (v === undefined) return [dflt, dflt];
  return typeof v === "number" ? [v, v] : v;
}

/** The integer stored for q is q − offset: 128 for uint8 ranges (the convolution's int8 holds them). */
function storedOffset(spec: QuantizedConvSpec): number {
  return (spec.qmax ?? 127) > 127 ? 128 : 0;
}

/** Why `spec` cannot run as a cuDNN int8 convolution (before cuDNN is asked), or null. Pure. */
export function quantizedConvRefusal(spec: QuantizedConvSpec): string | null {
  const { k, c, r, s } = spec;
  if (spec.dtype !== "float32" && spec.dtype !== "float16")
    return `input type ${spec.dtype} (float32 or float16)`;
  for (const [name, v] of Object.entries({ n: spec.n, c, h: spec.h, w: spec.w, k, r, s }))
    if (!Number.isInteger(v) || v < 1 || v > DIM_MAX) return `${name} = ${v} is not a positive 32-bit size`;
  if (!(spec.inputScale > 0) || !Number.isFinite(spec.inputScale))
    return `input scale ${spec.inputScale} is not a positive finite number`;
  if (spec.weight.length !== k * c * r * s)
    return `weight holds ${spec.weight.length} values, [${k}, ${c}, ${r}, ${s}] needs ${k * c * r * s}`;
  const ws = spec.weightScales;
  if (ws.length !== 1 && ws.length !== k) return `${ws.length} weight scales for ${k} output channels`;
  if (ws.some((v) => !(v > 0) || !Number.isFinite(v)))
    return "a weight scale is not a positive finite number";
  if (spec.bias && spec.bias.length !== k) return `bias holds ${spec.bias.length} values for ${k} outputs`;
  const qmin = spec.qmin ?? -128;
  const qmax = spec.qmax ?? 127;
  if (!Number.isInteger(qmin) || !Number.isInteger(qmax) || qmin > qmax)
    return `activation range [${qmin}, ${qmax}] is not an integer range`;
  if (!(qmin >= -128 && qmax <= 127) && !(qmin >= 0 && qmax <= 255))
    return `activation range [${qmin}, ${qmax}] does not fit int8 or uint8`;
  const zp = spec.inputZeroPoint ?? 0;
  if (!Number.isInteger(zp)) return `input zero point ${zp} is not an integer`;
  // cuDNN pads with stored zeros, which mean (0 + offset − zp) · sX: only 0.0 when the zero point is the
  // offset (0 for int8 ranges, 128 for uint8); otherwise the zero point is folded into the bias, which is
  // exact only where no padding is read
  const pad = pairOf(spec.padding, 0);
  if (pad.some((p) => p > 0) && zp !== storedOffset(spec))
    return `input zero point ${zp} with padding ${pad.join("×")}: the int8 padding zeros must mean 0.0 (zero point ${storedOffset(spec)} for this range)`;
  const act = spec.activation ?? "none";
  if (act !== "none" && !(act in ACTIVATION_MODE))
    return `activation ${act} (cuDNN fuses ${Object.keys(ACTIVATION_MODE).join(", ")})`;
  if (spec.outputScale !== undefined) {
    if (!(spec.outputScale > 0) || !Number.isFinite(spec.outputScale))
      return `output scale ${spec.outputScale} is not a positive finite number`;
    if (act !== "none" && act !== "relu")
      return `activation ${act} with an int8 output (requantizing needs act(v) / sY = act(v / sY): none or relu)`;
  }
  return int8ConvRefusal(planSpec(spec, convScales(spec)));
}

/** PyTorch's [K, C, R, S] weight as [K, R, S, C] (the NHWC convolution's KRSC). */
export function krscWeight(w: Int8Array, k: number, c: number, r: number, s: number): Int8Array {
  if (w.length !== k * c * r * s)
    throw new DeviceArgumentError(`weight holds ${w.length} values, not ${k * c * r * s}`);
  const out = new Int8Array(w.length);
  for (let o = 0; o < k; o++)
    for (let i = 0; i < c; i++)
      for (let y = 0; y < r; y++)
        for (let x = 0; x < s; x++) out[((o * r + y) * s + x) * c + i] = w[((o * c + i) * r + y) * s + x];
  return out;
}

/**
 * The graph's per-channel scale and bias: alpha[k] and bias'[k] (zero point folded in), divided by sY for an
 * int8 output (f32(alpha / sY), f32(bias' / sY)); the bias is null when there is none to add.
 */
export function convScales(spec: QuantizedConvSpec): { scale: Float32Array; bias: Float32Array | null } {
  const { k, c, r, s } = spec;
  const alpha = int8Alpha(spec.inputScale, spec.weightScales, k);
  // int8Bias sums each output channel's weights, contiguous in KCRS as in a linear layer's [N, K] rows
  const bias = int8Bias(
    {
      kind: "int8",
      m: 1,
      inFeatures: c * r * s,
      outFeatures: k,
      dtype: spec.dtype,
      inputScale: spec.inputScale,
      inputZeroPoint: spec.inputZeroPoint,
      qmin: spec.qmin,
      qmax: spec.qmax,
      weight: spec.weight,
      weightScales: spec.weightScales,
      bias: spec.bias ?? null,
    },
    alpha,
  );
  const sY = spec.outputScale;
  if (sY === undefined) return { scale: alpha, bias: bias ? Float32Array.from(bias) : null };
  return {
    scale: Float32Array.from(alpha, (a) => a / sY),
    bias: bias ? Float32Array.from(bias, (b) => b / sY) : null,
  };
}

/** The device plan's spec for the layer (`scales`: the graph's per-channel scale, checked there). */
function planSpec(
  spec: QuantizedConvSpec,
  scales: { scale: Float32Array; bias: Float32Array | null },
): Int8ConvSpec {
  const act = spec.activation ?? "none";
  const epilogue: ConvGraphStage[] = act === "none" ? [] : [{ kind: "act", fn: act }];
  return {
    layout: "NHWC",
    n: spec.n,
    c: spec.c,
    h: spec.h,
    w: spec.w,
    k: spec.k,
    r: spec.r,
    s: spec.s,
    stride: spec.stride,
    padding: spec.padding,
    dilation: spec.dilation,
    output: spec.outputScale !== undefined ? "int8" : spec.dtype,
    bias: scales.bias !== null,
    epilogue,
    scales: scales.scale,
  };
}

export type QuantizedConvBuild =
  | { readonly ok: true; readonly layer: QuantizedConv }
  | { readonly ok: false; readonly reason: string };

const ELEMENT_BYTES: Readonly<Record<QuantIoDType, number>> = { float32: 4, float16: 2 };
const INT8_QUANTIZE_PARAMS: readonly ParamType[] = ["ptr", "ptr", "f32", "i32", "i32", "i32", "i32", "i64"];

interface ConvBuffers {
  readonly wq: DeviceBuffer;
  readonly xq: DeviceBuffer;
  readonly scale: DeviceBuffer;
  readonly bias: DeviceBuffer | null;
}

export class QuantizedConv {
  private destroyed = false;
  private readonly args: KernelArgs;

  private constructor(
    readonly spec: QuantizedConvSpec,
    readonly plan: Int8ConvPlan,
    private readonly quantize: ReturnType<
      typeof buildKernels<(typeof QUANT_KERNEL_NAMES)[number]>
    >["kernels"],
    private readonly buffers: ConvBuffers,
  ) {
    this.args = new KernelArgs(INT8_QUANTIZE_PARAMS);
  }

  /** cuDNN's global index of the chosen engine, when it could be read. */
  get engineIndex(): number | undefined {
    return this.plan.engineIndex;
  }

  /** y's type: the spec's dtype, or int8 with an output scale. */
  get output(): "int8" | QuantIoDType {
    return this.plan.geometry.output;
  }

  /** Bytes of the int8 NHWC input runInt8 reads. */
  get int8InputBytes(): number {
    return this.plan.geometry.x.bytes;
  }

  get outputBytes(): number {
    return this.plan.geometry.y.bytes;
  }

  /**
   * Plans the layer on `cudnn` (its refusal comes back as the reason), uploads the KRSC weight, scale and bias
   * and compiles the quantize kernel (cached per process).
   */
  static create(cudnn: Cudnn, spec: QuantizedConvSpec): QuantizedConvBuild {
    const why = quantizedConvRefusal(spec);
    if (why) return { ok: false, reason: why };
    const scales = convScales(spec);
    const built = tryBuildInt8ConvPlan(cudnn, planSpec(spec, scales));
    if (!built.ok) return { ok: false, reason: built.reason };
    const plan = built.plan;
    const owned: DeviceBuffer[] = [];
    const own = (b: DeviceBuffer) => {
      owned.push(b);
      return b;
    };
    try {
      const buffers: ConvBuffers = {
        wq: own(DeviceBuffer.from(krscWeight(spec.weight, spec.k, spec.c, spec.r, spec.s))),
        xq: own(DeviceBuffer.alloc(plan.geometry.x.bytes)),
        scale: own(DeviceBuffer.from(scales.scale)),
        bias: scales.bias ? own(DeviceBuffer.from(scales.bias)) : null,
      };
      const { kernels } = buildKernels(quantKernelSource(), QUANT_KERNEL_NAMES, { name: "torchc_quant" });
      return { ok: true, layer: new QuantizedConv(spec, plan, kernels, buffers) };
    } catch (e) {
      plan.destroy();
      for (const b of owned) b.free();
      throw e;
    }
  }

  /** y = the layer on x (NHWC of the spec's dtype), on `stream`: quantize into the layer's scratch, then runInt8. */
  run(x: DeviceMemory, y: DeviceMemory, stream: Stream | null): void {
    if (this.destroyed) throw new DeviceArgumentError("the quantized convolution has been destroyed");
    const s = this.spec;
    const total = this.plan.geometry.x.bytes;
    const xin = checkDevice("x", x, total * ELEMENT_BYTES[s.dtype]);
    // before the quantize writes the scratch, so a bad y leaves nothing half done
    this.plan.pointers(this.io(this.buffers.xq, y));
    const a = this.args;
    const values = [
      xin,
      this.buffers.xq.ptr,
      Math.fround(1 / s.inputScale),
      s.inputZeroPoint ?? 0,
      s.qmin ?? -128,
      s.qmax ?? 127,
      storedOffset(s),
      total,
    ];
    for (let i = 0; i < values.length; i++) a.set(i, values[i]);
    launch(
      this.quantize[QUANT_KERNEL.int8(s.dtype)],
      { grid: quantGrid(total), block: QUANT_BLOCK, stream, programmatic: false },
      a,
    );
    this.runInt8(this.buffers.xq, y, stream);
  }

  /** y = the layer on an already-quantized int8 NHWC input (stored q − offset, as run's quantize writes it). */
  runInt8(xq: DeviceMemory, y: DeviceMemory, stream: Stream | null): void {
    if (this.destroyed) throw new DeviceArgumentError("the quantized convolution has been destroyed");
    this.plan.execute(this.io(xq, y), stream);
  }

  private io(xq: DeviceMemory, y: DeviceMemory) {
    const b = this.buffers;
    return { x: xq, w: b.wq, scale: b.scale, bias: b.bias, y };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.plan.destroy();
    const b = this.buffers;
    for (const buf of [b.wq, b.xq, b.scale, b.bias]) buf?.free();
    this.args.free();
  }
}

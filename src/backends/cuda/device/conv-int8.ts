/**
 * A cuDNN int8 convolution plan (issue 14), the conv counterpart of blaslt-quant.ts: NHWC int8 x and KRSC
 * int8 w, int32 accumulation, y = epilogue(f32(acc) · scale[k] (+ bias[k])) in int8, fp16 or fp32, one
 * graph (conv-graph.ts with `quant`, after cudnn-frontend's run_conv_scale_bias_relu_int8) and the shared
 * engine chooser (cudnn-engines.ts). What cuDNN cannot run is refused here first, with the rule
 * (int8ConvRefusal, pure); what cuDNN refuses anyway comes back as CudnnError with its status and message.
 * Every size and alignment is checked before a pointer reaches cuDNN.
 */
import { CudnnError } from "../../../ffi/status.js";
import { aligned16, type Cudnn, GraphPlan, type GraphPlanParts, planGraph } from "./conv.js";
import type { ConvGraphStage, Int8ConvGraphSpec, Int8ConvOutput } from "./conv-graph.js";
import { type ConvGeometry, convGeometry, type Dims4 } from "./conv-shape.js";
import type { HeuristicMode } from "./cudnn-engines.js";
import type { Stream } from "./stream.js";
import { DeviceArgumentError, type DeviceMemory, fail } from "./validate.js";

export interface Int8ConvSpec {
  /** Only NHWC (x NHWC, w KRSC, y NHWC): cuDNN's int8 kernels read channels last. Default NHWC. */
  readonly layout?: "NHWC" | "NCHW";
  readonly n: number;
  readonly c: number;
  readonly h: number;
  readonly w: number;
  /** Output channels. */
  readonly k: number;
  readonly r: number;
  readonly s: number;
  readonly stride?: number | readonly [number, number];
  /** Symmetric [h, w], or [top, left, bottom, right]. */
  readonly padding?: number | readonly [number, number] | readonly [number, number, number, number];
  readonly dilation?: number | readonly [number, number];
  readonly groups?: number;
  /** y's type. */
  readonly output: Int8ConvOutput;
  /** Adds a float32 bias [K] after the scale. */
  readonly bias?: boolean;
  /** Stages after the bias (activations, channel/tensor operands: see conv-graph.ts for their types). */
  readonly epilogue?: readonly ConvGraphStage[];
  /** The per-channel scale's host values, when known: checked (length K, finite, positive). */
  readonly scales?: ArrayLike<number>;
}

/** Why `spec` is not an int8 cuDNN convolution torchc builds, or null. Pure. */
export function int8ConvRefusal(spec: Int8ConvSpec): string | null {
  if ((spec.layout ?? "NHWC") !== "NHWC")
    return `${spec.layout} layout (cuDNN's int8 convolutions are NHWC: channels last)`;
  if ((spec.groups ?? 1) !== 1) return `${spec.groups} groups (int8 convolutions here have one group)`;
  if (!["int8", "float16", "float32"].includes(spec.output))
    return `output type ${String(spec.output)} (int8, float16 or float32)`;
  let g: ConvGeometry;
  try {
    g = geometryOf(spec);
  } catch (e) {
    if (e instanceof DeviceArgumentError) return e.message;
    throw e;
  }
  // int8 NHWC kernels read channels as 4-byte vectors (int8x4, the dp4a / IMMA granularity); IMMA tensor-core
  // engines may also want C and K multiples of 16 (16-byte rows): cuDNN then refuses or picks a slower engine
  const c = g.x.dims[1];
  const k = g.y.dims[1];
  if (c % 4 !== 0) return `input channels ${c} are not a multiple of 4 (int8 NHWC reads 4-channel vectors)`;
  if (k % 4 !== 0) return `output channels ${k} are not a multiple of 4 (int8 NHWC reads 4-channel vectors)`;
  if (spec.scales !== undefined) {
    if (spec.scales.length !== k) return `${spec.scales.length} scales for ${k} output channels`;
    for (let i = 0; i < k; i++) {
      const v = spec.scales[i];
      if (!(v > 0) || !Number.isFinite(v)) return `scale[${i}] = ${v} is not a positive finite number`;
    }
  }
  return null;
}

/** The float geometry of the same convolution (dims, strides, output size); bytes are recomputed below. */
function geometryOf(spec: Int8ConvSpec): ConvGeometry {
  return convGeometry({ ...spec, layout: "NHWC", dtype: "float32", bias: spec.bias, activation: "none" });
}

const OUT_BYTES: Readonly<Record<Int8ConvOutput, number>> = { int8: 1, float16: 2, float32: 4 };

export interface Int8Tensor {
  readonly dims: Dims4;
  readonly strides: Dims4;
  readonly bytes: number;
}

/** Every operand's dims, strides and size. Operands: float32 when y is int8, else y's type (conv-graph.ts). */
export interface Int8ConvGeometry {
  readonly output: Int8ConvOutput;
  readonly stride: readonly [number, number];
  readonly prePadding: readonly [number, number];
  readonly postPadding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly bias: boolean;
  readonly epilogue: readonly ConvGraphStage[];
  readonly outH: number;
  readonly outW: number;
  /** int8 NHWC. */
  readonly x: Int8Tensor;
  /** int8 KRSC (logical [K, C, R, S]). */
  readonly w: Int8Tensor;
  /** float32 [1, K, 1, 1]: the scale's and the bias's. */
  readonly channel: Int8Tensor;
  readonly y: Int8Tensor;
  /** Bytes of each epilogue stage's operand, in epilogue order (0 for activations). */
  readonly extraBytes: readonly number[];
}

/** Validates `spec` (throws DeviceArgumentError with int8ConvRefusal's reason) and sizes every operand. */
export function int8ConvGeometry(spec: Int8ConvSpec): Int8ConvGeometry {
  const why = int8ConvRefusal(spec);
  if (why) fail(`int8 convolution: ${why}`);
  const g = geometryOf(spec);
  const count = (d: Dims4) => d[0] * d[1] * d[2] * d[3];
  const ob = OUT_BYTES[spec.output];
  const operandBytes = spec.output === "int8" ? 4 : ob;
  const epilogue = spec.epilogue ?? [];
  const k = g.y.dims[1];
  return {
    output: spec.output,
    stride: g.stride,
    prePadding: g.prePadding,
    postPadding: g.postPadding,
    dilation: g.dilation,
    bias: spec.bias === true,
    epilogue,
    outH: g.outH,
    outW: g.outW,
    x: { dims: g.x.dims, strides: g.x.strides, bytes: count(g.x.dims) },
    w: { dims: g.w.dims, strides: g.w.strides, bytes: count(g.w.dims) },
    channel: { dims: g.b.dims, strides: g.b.strides, bytes: k * 4 },
    y: { dims: g.y.dims, strides: g.y.strides, bytes: count(g.y.dims) * ob },
    extraBytes: epilogue.map((st) =>
      st.kind === "tensor" ? count(g.y.dims) * operandBytes : st.kind === "channel" ? k * operandBytes : 0,
    ),
  };
}

/** The conv-graph.ts description of a validated geometry. */
export function int8ConvGraphSpec(g: Int8ConvGeometry): Int8ConvGraphSpec {
  return {
    quant: { output: g.output },
    x: g.x,
    w: g.w,
    y: g.y,
    channel: g.channel,
    stride: g.stride,
    prePadding: g.prePadding,
    postPadding: g.postPadding,
    dilation: g.dilation,
    bias: g.bias,
    epilogue: g.epilogue,
  };
}

export interface Int8ConvIO {
  /** int8 NHWC. */
  readonly x: DeviceMemory;
  /** int8 KRSC. */
  readonly w: DeviceMemory;
  /** float32 [K]. */
  readonly scale: DeviceMemory;
  /** float32 [K]; required when the plan adds a bias. */
  readonly bias?: DeviceMemory | null;
  readonly y: DeviceMemory;
  /** One operand per channel/tensor epilogue stage, in epilogue order. */
  readonly extra?: readonly DeviceMemory[];
}

export class Int8ConvPlan extends GraphPlan {
  constructor(
    cudnn: Cudnn,
    readonly geometry: Int8ConvGeometry,
    /** Variant-pack order: x, w, scale, [bias,] y, operands (conv-graph.ts). */
    parts: GraphPlanParts,
  ) {
    super(cudnn, parts, "int8 convolution plan");
  }

  /** The data pointers in variant-pack order, each checked for size and 16-byte alignment. */
  pointers(io: Int8ConvIO): bigint[] {
    this.checkLive();
    const g = this.geometry;
    const ptrs = [aligned16("x", io.x, g.x.bytes), aligned16("w", io.w, g.w.bytes)];
    ptrs.push(aligned16("scale", io.scale, g.channel.bytes));
    if (g.bias) {
      if (io.bias === undefined || io.bias === null) fail("this plan adds a bias: pass io.bias");
      ptrs.push(aligned16("bias", io.bias, g.channel.bytes));
    }
    ptrs.push(aligned16("y", io.y, g.y.bytes));
    const operands = g.extraBytes.flatMap((b, i) => (b > 0 ? [{ b, i }] : []));
    const extra = io.extra ?? [];
    if (extra.length !== operands.length)
      fail(`this plan reads ${operands.length} epilogue operands, got ${extra.length}`);
    for (const [j, { b, i }] of operands.entries())
      ptrs.push(aligned16(`extra[${j}] (stage ${i})`, extra[j], b));
    return ptrs;
  }

  /** Runs the convolution on `stream`. */
  execute(io: Int8ConvIO, stream?: Stream | null): void {
    this.run(this.pointers(io), stream);
  }
}

export function describeInt8Conv(g: Int8ConvGeometry): string {
  const [n, c, h, w] = g.x.dims;
  const [k, , r, s] = g.w.dims;
  const stages = g.epilogue.map((st) => (st.kind === "act" ? st.fn : `${st.kind} ${st.op}`));
  return (
    `int8 NHWC x[${n},${c},${h},${w}] w[${k},${c},${r},${s}] → ${g.output} stride ${g.stride} ` +
    `pad ${g.prePadding}/${g.postPadding} dil ${g.dilation} bias ${g.bias} epilogue [${stages.join(", ")}]`
  );
}

/**
 * Builds the int8 plan. Throws DeviceArgumentError for what int8ConvRefusal refuses and CudnnError (cuDNN's
 * status and message) when cuDNN refuses the graph or has no engine for it.
 */
export function buildInt8ConvPlan(
  cudnn: Cudnn,
  spec: Int8ConvSpec,
  opts: { heuristic?: HeuristicMode } = {},
): Int8ConvPlan {
  const g = int8ConvGeometry(spec);
  const what = () => `buildInt8ConvPlan(${describeInt8Conv(g)})`;
  return new Int8ConvPlan(cudnn, g, planGraph(cudnn, int8ConvGraphSpec(g), opts.heuristic, what));
}

export type Int8ConvBuild =
  | { readonly ok: true; readonly plan: Int8ConvPlan }
  | { readonly ok: false; readonly reason: string };

/** buildInt8ConvPlan with its refusals (the checks' or cuDNN's, status and message) returned as a reason. */
export function tryBuildInt8ConvPlan(
  cudnn: Cudnn,
  spec: Int8ConvSpec,
  opts: { heuristic?: HeuristicMode } = {},
): Int8ConvBuild {
  try {
    return { ok: true, plan: buildInt8ConvPlan(cudnn, spec, opts) };
  } catch (e) {
    if (e instanceof CudnnError || e instanceof DeviceArgumentError) return { ok: false, reason: e.message };
    throw e;
  }
}

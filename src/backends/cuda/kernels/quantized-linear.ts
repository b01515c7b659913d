/**
 * One quantized nn.Linear on the device: quantize the fp32/fp16 input (matmul-int8.ts), run the int8 or fp8
 * cuBLASLt plan (device/blaslt-quant.ts), then whatever the plan left to do (the int32 epilogue or a bias add).
 * It owns its weight, scales, bias and scratch buffers. The arithmetic is the reference's
 * (src/ops/quantized-layers.ts for int8: alpha[n] = f32(sX · sW[n]); E4M3 with per-tensor or per-channel
 * weight scales for fp8), and
 * every argument is checked before a buffer is allocated.
 */
import { numberToFloat16Bits } from "../../../ir/half.js";
import { E4M3_MAX, e4m3Bits, e4m3Value } from "../../../ops/quantize-math.js";
import type { LtHandle } from "../device/blaslt-plan.js";
import {
  buildQuantLtPlan,
  destroyQuantLtPlan,
  launchQuantLtPlan,
  type QuantLtPlan,
  type QuantLtProblem,
  type QuantLtScales,
  type QuantLtVariant,
  quantLtRefusal,
  runQuantLtPlan,
} from "../device/blaslt-quant.js";
import { CudaContext } from "../device/context.js";
import { KernelArgs, launch, type ParamType } from "../device/launch.js";
import { DeviceBuffer } from "../device/memory.js";
import { buildKernels } from "../device/module.js";
import type { Stream } from "../device/stream.js";
import { checkDevice, type DeviceMemory, fail } from "../device/validate.js";
import {
  QUANT_BLOCK,
  QUANT_KERNEL,
  QUANT_KERNEL_NAMES,
  type QuantIoDType,
  quantGrid,
  quantKernelSource,
} from "./matmul-int8.js";

interface Common {
  /** Rows of the input (batch × tokens). */
  readonly m: number;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** The input's and output's type. */
  readonly dtype: QuantIoDType;
  /** The activation's per-tensor scale. */
  readonly inputScale: number;
  /** [outFeatures] float32, or null. */
  readonly bias?: Float32Array | null;
}

export interface Int8LinearSpec extends Common {
  readonly kind: "int8";
  readonly inputZeroPoint?: number;
  /** The activation's integer range: default [-128, 127]; [0, 255] for uint8. */
  readonly qmin?: number;
  readonly qmax?: number;
  /** [outFeatures, inFeatures] symmetric int8 weights. */
  readonly weight: Int8Array;
  /** Per output channel ([outFeatures]) or per tensor ([1]). */
  readonly weightScales: Float32Array;
  /** A ReLU after the bias (the engine fuses a following relu into the matmul step); default none. */
  readonly activation?: "none" | "relu";
}

export interface Fp8LinearSpec extends Common {
  readonly kind: "fp8";
  /** [outFeatures, inFeatures] E4M3 bytes (quantize-math.ts's e4m3Bits of w / weightScale[c]). */
  readonly weight: Uint8Array;
  /**
   * One per-tensor scale, or one per output channel ([outFeatures]: cuBLASLt's outer-vector scales; where
   * cuBLASLt refuses those, the weight is requantized per tensor on the host and the refusal kept).
   */
  readonly weightScale: number | Float32Array;
  readonly fastAccum?: boolean;
}

export type QuantizedLinearSpec = Int8LinearSpec | Fp8LinearSpec;

/** Why `spec` cannot run as a real int8/fp8 GEMM (before cuBLASLt is asked), or null. */
export function quantizedLinearRefusal(spec: QuantizedLinearSpec): string | null {
  const { inFeatures: k, outFeatures: n } = spec;
  if (spec.dtype !== "float32" && spec.dtype !== "float16")
    return `input type ${spec.dtype} (float32 or float16)`;
  if (!(spec.inputScale > 0) || !Number.isFinite(spec.inputScale))
    return `input scale ${spec.inputScale} is not a positive finite number`;
  if (spec.weight.length !== n * k)
    return `weight holds ${spec.weight.length} values, [${n}, ${k}] needs ${n * k}`;
  if (spec.bias && spec.bias.length !== n) return `bias holds ${spec.bias.length} values for ${n} outputs`;
  if (spec.kind === "fp8") {
    const ws = typeof spec.weightScale === "number" ? [spec.weightScale] : Array.from(spec.weightScale);
    if (ws.length !== 1 && ws.length !== n) return `${ws.length} fp8 weight scales for ${n} output channels`;
    if (ws.some((v) => !(v > 0) || !Number.isFinite(v)))
      return "an fp8 weight scale is not a positive finite number";
    return null;
  }
  const s = spec.weightScales;
  if (s.length !== 1 && s.length !== n) return `${s.length} weight scales for ${n} output channels`;
  if (s.some((v) => !(v > 0) || !Number.isFinite(v))) return "a weight scale is not a positive finite number";
  const qmin = spec.qmin ?? -128;
  const qmax = spec.qmax ?? 127;
  if (!(qmin >= -128 && qmax <= 127) && !(qmin >= 0 && qmax <= 255))
    return `activation range [${qmin}, ${qmax}] does not fit int8 or uint8`;
  return null;
}

/** alpha[n] = f32(f32(sX) · f32(sW[n])), the reference's per-channel factor (quantized-layers.ts). */
export function int8Alpha(inputScale: number, weightScales: Float32Array, n: number): Float32Array {
  const f = Math.fround;
  return Float32Array.from({ length: n }, (_, c) =>
    f(f(inputScale) * f(weightScales[weightScales.length === 1 ? 0 : c])),
  );
}

/**
 * The bias the GEMM adds: the model's bias plus the zero-point correction alpha[n] · (offset − zp) · Σₖ w[n,k]
 * (the kernel stores q − offset, the layer means q − zp), or null when both are absent.
 */
export function int8Bias(spec: Int8LinearSpec, alpha: Float32Array): Float32Array | null {
  const offset = (spec.qmax ?? 127) > 127 ? 128 : 0;
  const shift = offset - (spec.inputZeroPoint ?? 0);
  if (shift === 0) return spec.bias ?? null;
  const { inFeatures: k, outFeatures: n } = spec;
  return Float32Array.from({ length: n }, (_, c) => {
    let sum = 0;
    for (let i = c * k; i < (c + 1) * k; i++) sum += spec.weight[i];
    return (spec.bias?.[c] ?? 0) + alpha[c] * shift * sum;
  });
}

/** Whether an fp8 layer's weight has one scale per output channel. */
function perChannel(spec: Fp8LinearSpec): boolean {
  return typeof spec.weightScale !== "number" && spec.weightScale.length > 1;
}

/** The cuBLASLt problem of a layer. */
function problemOf(spec: QuantizedLinearSpec): QuantLtProblem {
  const common = { m: spec.m, n: spec.outFeatures, k: spec.inFeatures, out: spec.dtype };
  if (spec.kind === "fp8")
    return {
      kind: "fp8",
      ...common,
      bias: !!spec.bias,
      fastAccum: spec.fastAccum,
      fp8Scales: perChannel(spec) ? "channel" : "tensor",
    };
  const alpha = int8Alpha(spec.inputScale, spec.weightScales, spec.outFeatures);
  return { kind: "int8", ...common, bias: int8Bias(spec, alpha) !== null, relu: spec.activation === "relu" };
}

/** A per-channel fp8 layer requantized to one weight scale (max |w| / 448): rounds each weight a second time. */
export function fp8PerTensor(spec: Fp8LinearSpec): Fp8LinearSpec {
  const ws = spec.weightScale as Float32Array;
  const k = spec.inFeatures;
  const values = Float64Array.from(spec.weight, (b, i) => e4m3Value(b) * ws[Math.floor(i / k)]);
  let amax = 0;
  for (const v of values) amax = Math.max(amax, Math.abs(v));
  const scale = Math.fround(amax > 0 ? amax / E4M3_MAX : 1);
  return { ...spec, weight: Uint8Array.from(values, (v) => e4m3Bits(v / scale)), weightScale: scale };
}

export type QuantizedLinearBuild =
  | { readonly ok: true; readonly layer: QuantizedLinear }
  | { readonly ok: false; readonly reason: string };

const ELEMENT_BYTES: Readonly<Record<QuantIoDType, number>> = { float32: 4, float16: 2 };

/** Each kernel's parameter types (read when its KernelArgs is first made), shared rather than rebuilt per run. */
const INT8_QUANTIZE_PARAMS: readonly ParamType[] = ["ptr", "ptr", "f32", "i32", "i32", "i32", "i32", "i64"];
const FP8_QUANTIZE_PARAMS: readonly ParamType[] = ["ptr", "ptr", "f32", "i64"];
const INT32_EPILOGUE_PARAMS: readonly ParamType[] = ["ptr", "ptr", "ptr", "ptr", "i32", "i32", "i64"];
const ADD_BIAS_PARAMS: readonly ParamType[] = ["ptr", "ptr", "i32", "i64"];

/** A layer's device operands, made before its plan (the plan's descriptor points at the scales and bias). */
interface LayerBuffers {
  wq: DeviceBuffer;
  xq: DeviceBuffer;
  alpha: DeviceBuffer | null;
  /** float32 [N]: int8 plans and torchc's bias-add kernel. */
  bias: DeviceBuffer | null;
  /** fp16 [N]: an fp8 bias epilogue with an fp16 output (cuBLASLt's fp8 bias has the output's type). */
  biasHalf: DeviceBuffer | null;
  /** int8-int32 plans: the int32 result [M, N]. */
  acc: DeviceBuffer | null;
  /** fp8: the weight's scales (1 or N) and the input's (1, or M for outer-vector scales), each its own buffer. */
  weightScale: DeviceBuffer | null;
  inputScale: DeviceBuffer | null;
}

function uploadOperands(s: QuantizedLinearSpec, owned: DeviceBuffer[]): LayerBuffers {
  const own = (b: DeviceBuffer) => {
    owned.push(b);
    return b;
  };
  const n = s.outFeatures;
  const b: LayerBuffers = {
    wq: own(DeviceBuffer.from(s.weight)),
    xq: own(DeviceBuffer.alloc(s.m * s.inFeatures)),
    alpha: null,
    bias: null,
    biasHalf: null,
    acc: null,
    weightScale: null,
    inputScale: null,
  };
  if (s.kind === "int8") {
    const a = int8Alpha(s.inputScale, s.weightScales, n);
    b.alpha = own(DeviceBuffer.from(a));
    const bias = int8Bias(s, a);
    if (bias) b.bias = own(DeviceBuffer.from(bias));
    return b;
  }
  // Separate allocations, so every scale pointer is 256-byte aligned: a scale 4 bytes into a shared buffer
  // was one of the two differences from the NVIDIA fp8 sample when H100's cublasLtMatmul refused the plan.
  const ws = typeof s.weightScale === "number" ? Float32Array.of(s.weightScale) : s.weightScale;
  b.weightScale = own(DeviceBuffer.from(ws));
  b.inputScale = own(DeviceBuffer.from(new Float32Array(perChannel(s) ? s.m : 1).fill(s.inputScale)));
  if (s.bias) {
    b.bias = own(DeviceBuffer.from(s.bias));
    if (s.dtype === "float16")
      b.biasHalf = own(DeviceBuffer.from(Uint16Array.from(s.bias, numberToFloat16Bits)));
  }
  return b;
}

/** The descriptor pointers of `variant` over `b`. */
function pointersOf(
  kind: QuantizedLinearSpec["kind"],
  variant: QuantLtVariant,
  b: LayerBuffers,
): QuantLtScales {
  const epilogueBias = variant.endsWith("-bias") ? (kind === "fp8" ? b.biasHalf : b.bias) : null;
  return { bias: epilogueBias?.ptr, weightScale: b.weightScale?.ptr, inputScale: b.inputScale?.ptr };
}

/**
 * cuBLASLt's status for one run of `plan` on the layer's operands into a scratch output (the input scratch
 * holds whatever it holds: only whether cublasLtMatmul accepts the call matters), on the legacy stream, then
 * synchronized before the scratch is freed.
 */
function trialRun(
  handle: LtHandle,
  plan: QuantLtPlan,
  s: QuantizedLinearSpec,
  b: LayerBuffers,
  workspace: DeviceMemory | null,
): number {
  const bytes = plan.dType === "int32" || plan.dType === "float32" ? 4 : 2;
  const d = DeviceBuffer.alloc(s.m * s.outFeatures * bytes);
  try {
    return launchQuantLtPlan(
      handle,
      plan,
      { xq: b.xq.ptr, wq: b.wq.ptr, d: d.ptr, alpha: b.alpha?.ptr, workspace: workspace?.ptr ?? null },
      null,
    );
  } finally {
    CudaContext.current().synchronize();
    d.free();
  }
}

export interface QuantizedLinearOptions {
  /**
   * Run each candidate plan once at creation (on scratch output, then synchronize), so an algorithm that
   * cublasLtMatmul refuses is skipped for the next one and a variant no algorithm of which runs is refused.
   * Default: on for fp8 (an H100 refused fp8 plans only at cublasLtMatmul), off for int8 (its plans ran as the
   * heuristic promised, and the engine may create a second instance's int8 layer while a stream captures).
   */
  readonly probe?: boolean;
}

export class QuantizedLinear {
  private destroyed = false;

  private constructor(
    private readonly handle: LtHandle,
    readonly spec: QuantizedLinearSpec,
    readonly plan: QuantLtPlan,
    private readonly kernels: ReturnType<typeof buildKernels<(typeof QUANT_KERNEL_NAMES)[number]>>["kernels"],
    private readonly workspace: DeviceMemory | null,
    private readonly refusedBefore: readonly string[],
    private readonly buffers: LayerBuffers,
    private readonly owned: DeviceBuffer[],
  ) {}

  /** Which cuBLASLt variant runs. */
  get variant(): QuantLtVariant {
    return this.plan.variant;
  }

  /** The variants refused before it, with cuBLASLt's reasons (per-channel fp8 scales included). */
  get refused(): readonly string[] {
    return [...this.refusedBefore, ...this.plan.refused];
  }

  /**
   * Plans the layer on `handle` (workspace: device scratch shared by the caller, `workspace.bytes` the most a
   * plan may use), uploads its weight and scales first (the plan's descriptor points at them before cuBLASLt's
   * heuristic is asked), and compiles the quantize kernels (cached per process).
   */
  static create(
    handle: LtHandle,
    spec: QuantizedLinearSpec,
    workspace: DeviceMemory | null,
    options: QuantizedLinearOptions = {},
  ): QuantizedLinearBuild {
    const why = quantizedLinearRefusal(spec) ?? quantLtRefusal(problemOf(spec));
    if (why) return { ok: false, reason: why };
    const maxWorkspace = workspace?.bytes ?? 0;
    const probe = options.probe ?? spec.kind === "fp8";
    const attempt = (s: QuantizedLinearSpec) => {
      const owned: DeviceBuffer[] = [];
      try {
        const buffers = uploadOperands(s, owned);
        const built = buildQuantLtPlan(handle, problemOf(s), maxWorkspace, {
          pointers: (v) => pointersOf(s.kind, v, buffers),
          probe: probe ? (plan) => trialRun(handle, plan, s, buffers, workspace) : undefined,
        });
        if (!built.ok) for (const b of owned) b.free();
        return { built, buffers, owned };
      } catch (e) {
        for (const b of owned) b.free();
        throw e;
      }
    };
    let used = spec;
    let a = attempt(spec);
    const refusedBefore: string[] = [];
    if (!a.built.ok && spec.kind === "fp8" && perChannel(spec)) {
      refusedBefore.push(`per-channel fp8 scales: ${a.built.reason}`);
      used = fp8PerTensor(spec);
      a = attempt(used);
    }
    if (!a.built.ok) return { ok: false, reason: [...refusedBefore, a.built.reason].join("; ") };
    const plan = a.built.plan;
    try {
      if (plan.dType === "int32") a.buffers.acc = DeviceBuffer.alloc(used.m * used.outFeatures * 4);
      if (a.buffers.acc) a.owned.push(a.buffers.acc);
      const { kernels } = buildKernels(quantKernelSource(), QUANT_KERNEL_NAMES, { name: "torchc_quant" });
      const layer = new QuantizedLinear(
        handle,
        used,
        plan,
        kernels,
        workspace,
        refusedBefore,
        a.buffers,
        a.owned,
      );
      return { ok: true, layer };
    } catch (e) {
      destroyQuantLtPlan(plan);
      for (const b of a.owned) b.free();
      throw e;
    }
  }

  /** out[M, outFeatures] = the layer applied to x[M, inFeatures] (both of the spec's dtype), on `stream`. */
  run(x: DeviceMemory, out: DeviceMemory, stream: Stream | null): void {
    if (this.destroyed) throw new Error("the quantized linear layer has been destroyed");
    const s = this.spec;
    const es = ELEMENT_BYTES[s.dtype];
    const xin = checkDevice("x", x, s.m * s.inFeatures * es);
    const y = checkDevice("out", out, s.m * s.outFeatures * es);
    // cuBLASLt's heuristics assume 256-byte aligned operands (its default MIN_ALIGNMENT preferences)
    if (!this.buffers.acc && y % 256n !== 0n)
      fail(`out must be 256-byte aligned for cuBLASLt, got 0x${y.toString(16)}`);
    const b = this.buffers;
    const total = s.m * s.inFeatures;
    if (s.kind === "int8") {
      const offset = (s.qmax ?? 127) > 127 ? 128 : 0;
      this.launch(
        QUANT_KERNEL.int8(s.dtype),
        total,
        INT8_QUANTIZE_PARAMS,
        [
          xin,
          b.xq.ptr,
          Math.fround(1 / s.inputScale),
          s.inputZeroPoint ?? 0,
          s.qmin ?? -128,
          s.qmax ?? 127,
          offset,
          total,
        ],
        stream,
      );
    } else {
      this.launch(
        QUANT_KERNEL.fp8(s.dtype),
        total,
        FP8_QUANTIZE_PARAMS,
        [xin, b.xq.ptr, Math.fround(1 / s.inputScale), total],
        stream,
      );
    }
    const d = b.acc ? b.acc.ptr : y;
    runQuantLtPlan(
      this.handle,
      this.plan,
      { xq: b.xq.ptr, wq: b.wq.ptr, d, alpha: b.alpha?.ptr, workspace: this.workspace?.ptr ?? null },
      stream,
    );
    const outs = s.m * s.outFeatures;
    if (this.plan.post.scale) {
      this.launch(
        QUANT_KERNEL.int32Epilogue(s.dtype),
        outs,
        INT32_EPILOGUE_PARAMS,
        [
          d,
          y,
          (b.alpha as DeviceBuffer).ptr,
          b.bias ? b.bias.ptr : 0n,
          s.kind === "int8" && s.activation === "relu" ? 1 : 0,
          s.outFeatures,
          outs,
        ],
        stream,
      );
    } else if (this.plan.post.bias) {
      this.launch(
        QUANT_KERNEL.addBias(s.dtype),
        outs,
        ADD_BIAS_PARAMS,
        [y, (b.bias as DeviceBuffer).ptr, s.outFeatures, outs],
        stream,
      );
    }
  }

  private readonly args = new Map<string, KernelArgs>();

  private launch(
    name: (typeof QUANT_KERNEL_NAMES)[number],
    n: number,
    types: readonly ParamType[],
    values: (number | bigint)[],
    stream: Stream | null,
  ): void {
    let a = this.args.get(name);
    if (!a) {
      a = new KernelArgs(types);
      this.args.set(name, a);
    }
    for (let i = 0; i < values.length; i++) a.set(i, values[i]);
    launch(this.kernels[name], { grid: quantGrid(n), block: QUANT_BLOCK, stream, programmatic: false }, a);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    destroyQuantLtPlan(this.plan);
    for (const b of this.owned) b.free();
    for (const a of this.args.values()) a.free();
  }
}

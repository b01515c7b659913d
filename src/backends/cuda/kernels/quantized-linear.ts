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
  bindQuantLtPlan,
  buildQuantLtPlan,
  destroyQuantLtPlan,
  type QuantLtPlan,
  type QuantLtProblem,
  type QuantLtVariant,
  runQuantLtPlan,
} from "../device/blaslt-quant.js";
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

export class QuantizedLinear {
  private readonly owned: DeviceBuffer[] = [];
  private destroyed = false;

  private constructor(
    private readonly handle: LtHandle,
    readonly spec: QuantizedLinearSpec,
    readonly plan: QuantLtPlan,
    private readonly kernels: ReturnType<typeof buildKernels<(typeof QUANT_KERNEL_NAMES)[number]>>["kernels"],
    private readonly workspace: DeviceMemory | null,
    private readonly refusedBefore: readonly string[],
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
   * plan may use), uploads its weight and scales, and compiles the quantize kernels (cached per process).
   */
  static create(
    handle: LtHandle,
    spec: QuantizedLinearSpec,
    workspace: DeviceMemory | null,
  ): QuantizedLinearBuild {
    const why = quantizedLinearRefusal(spec);
    if (why) return { ok: false, reason: why };
    const maxWorkspace = workspace?.bytes ?? 0;
    let built = buildQuantLtPlan(handle, problemOf(spec), maxWorkspace);
    let used = spec;
    const refusedBefore: string[] = [];
    if (!built.ok && spec.kind === "fp8" && perChannel(spec)) {
      refusedBefore.push(`per-channel fp8 scales: ${built.reason}`);
      used = fp8PerTensor(spec);
      built = buildQuantLtPlan(handle, problemOf(used), maxWorkspace);
    }
    if (!built.ok) return { ok: false, reason: [...refusedBefore, built.reason].join("; ") };
    const { kernels } = buildKernels(quantKernelSource(), QUANT_KERNEL_NAMES, { name: "torchc_quant" });
    const layer = new QuantizedLinear(handle, used, built.plan, kernels, workspace, refusedBefore);
    try {
      layer.upload();
    } catch (e) {
      layer.destroy();
      throw e;
    }
    return { ok: true, layer };
  }

  private buffers!: {
    wq: DeviceBuffer;
    xq: DeviceBuffer;
    alpha: DeviceBuffer | null;
    bias: DeviceBuffer | null;
    acc: DeviceBuffer | null;
    scales: DeviceBuffer | null;
  };

  private own(b: DeviceBuffer): DeviceBuffer {
    this.owned.push(b);
    return b;
  }

  private upload(): void {
    const s = this.spec;
    const n = s.outFeatures;
    const wq = this.own(DeviceBuffer.from(s.weight));
    const xq = this.own(DeviceBuffer.alloc(s.m * s.inFeatures));
    let alpha: DeviceBuffer | null = null;
    let bias: DeviceBuffer | null = null;
    let acc: DeviceBuffer | null = null;
    let scales: DeviceBuffer | null = null;
    if (s.kind === "int8") {
      const a = int8Alpha(s.inputScale, s.weightScales, n);
      alpha = this.own(DeviceBuffer.from(a));
      const b = int8Bias(s, a);
      if (b) bias = this.own(DeviceBuffer.from(b));
      if (this.plan.dType === "int32") acc = this.own(DeviceBuffer.alloc(s.m * n * 4));
    } else {
      // scalars [sW, sX], or for outer-vector scales [sW[0..N), sX repeated for each of the M rows]
      const ws = typeof s.weightScale === "number" ? Float32Array.of(s.weightScale) : s.weightScale;
      const all = new Float32Array(ws.length + (perChannel(s) ? s.m : 1)).fill(s.inputScale);
      all.set(ws);
      scales = this.own(DeviceBuffer.from(all));
      if (s.bias) {
        // the fp8 bias epilogue reads the output's type; the bias-add kernel reads float32
        const inEpilogue = this.plan.variant.endsWith("-bias") && s.dtype === "float16";
        bias = this.own(
          DeviceBuffer.from(inEpilogue ? Uint16Array.from(s.bias, numberToFloat16Bits) : s.bias),
        );
      }
    }
    this.buffers = { wq, xq, alpha, bias, acc, scales };
    bindQuantLtPlan(this.plan, {
      alpha: alpha?.ptr,
      bias: bias?.ptr,
      weightScale: scales?.ptr,
      inputScale: scales && s.kind === "fp8" ? scales.ptr + 4n * BigInt(perChannel(s) ? n : 1) : undefined,
    });
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
        ["ptr", "ptr", "f32", "i32", "i32", "i32", "i32", "i64"],
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
        ["ptr", "ptr", "f32", "i64"],
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
        ["ptr", "ptr", "ptr", "ptr", "i32", "i32", "i64"],
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
        ["ptr", "ptr", "i32", "i64"],
        [y, (b.bias as DeviceBuffer).ptr, s.outFeatures, outs],
        stream,
      );
    }
  }

  private readonly args = new Map<string, KernelArgs>();

  private launch(
    name: (typeof QUANT_KERNEL_NAMES)[number],
    n: number,
    types: ParamType[],
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

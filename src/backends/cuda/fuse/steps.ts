/**
 * The schedule: what runs, in order. Each step is one kernel (or one library call, or nothing for views):
 * element groups (fused pointwise / data movement / windowed layers, codegen/element.ts), cuDNN convolutions
 * with their fused epilogue, cuBLASLt matmuls with bias/activation epilogues, cooperative reductions,
 * softmax, normalization and attention kernels, and copies.
 */
import type { Layer, LayerOf } from "../../../network/layers/index.js";
import type { ElementGroup } from "../codegen/element.js";
import { type AttentionKernelChoice, describeAttentionChoice } from "../codegen/flash-attention.js";

import type { ConvActivationKind } from "../device/conv-shape.js";

export type { ConvActivationKind };

/** One pointwise op applied to the convolution's result inside cuDNN's fused graph. */
export type ConvEpilogueOp =
  | { readonly kind: "act"; readonly fn: ConvActivationKind }
  /** y = y (op) t, t a tensor of y's shape, dtype and layout. */
  | { readonly kind: "tensor"; readonly op: "add" | "mul"; readonly tensor: string }
  /** y = y (op) v[c], per output channel. */
  | { readonly kind: "channel"; readonly op: "add" | "mul"; readonly values: Float64Array };

export interface ConvStep {
  readonly kind: "conv";
  readonly layer: LayerOf<"convolution">;
  /** The input as the convolution reads it (after any relayout). */
  readonly x: string;
  readonly epilogue: readonly ConvEpilogueOp[];
  /** Layers the epilogue absorbed. */
  readonly fused: readonly Layer[];
  /** Where cuDNN writes (the last fused layer's output, or a staging tensor). */
  readonly output: string;
  readonly layout: "NHWC" | "NCHW";
  /**
   * cuDNN; a generated warp-per-output kernel for 1×1 convolutions on 1×1 maps (gemv); or a generated kernel for
   * small 1×1 convolutions on larger maps (pointwise, codegen/pointwise-conv.ts); or the tensor-core small GEMM for
   * 1×1 convolutions with few input channels on many pixels (gemm, codegen/pointwise-gemm.ts).
   */
  readonly engine: "cudnn" | "gemv" | "pointwise" | "gemm";
  /**
   * pointwise only: the input is `input`·`by` (squeeze-excite's scale, by of shape [N, C, 1, 1]), computed as the
   * kernel loads it; `layer` is that multiply, which then has no step of its own.
   */
  readonly scale?: { readonly input: string; readonly by: string; readonly layer: Layer };
  /**
   * gemv only: a second 1×1 convolution that reads this step's output and nothing else does (squeeze-excite's
   * reduce and expand convolutions). Both run in one kernel (codegen/excite.ts); this step's output then stays in
   * shared memory and is never stored.
   */
  readonly next?: ConvStep;
  /**
   * gemv only: `x` is a spatial mean that no step stores; its producer's kernel wrote per-tile channel sums
   * instead (ElementGroup.channelSums), and this kernel reads x[n, c] as Σ_tiles partials[n, tile, c] / count.
   */
  readonly xMean?: SpatialMeanSource;
  /**
   * cudnn only: an int8 convolution. Its input was dequantize(quantize(x)); the step absorbed the dequantize
   * and `x` holds quantize's int8 output (the element kernel that quantizes stores it), so the activation is
   * read as int8 and never stored in float (schedule.ts, ScheduleOptions.int8Convs).
   */
  readonly int8?: Int8ConvInput;
  /**
   * int8 steps only: the step ends in the next layer's quantize (the last of `fused`, not an epilogue op) and
   * writes its int8 output: the graph's scale, bias and channel additions are divided by its scale (exact for the
   * epilogues allowed: per-channel add/mul and ReLU), and cuDNN converts to int8.
   */
  readonly quantizeOutput?: LayerOf<"quantize">;
}

/** The quantize → dequantize pair an int8 convolution step reads through. */
export interface Int8ConvInput {
  readonly quantize: LayerOf<"quantize">;
  readonly dequantize: LayerOf<"dequantize">;
}

/** A spatial mean read from its producer's per-tile channel sums (codegen/channel-sums.ts). */
export interface SpatialMeanSource {
  /** fp32 [N, tiles, C]. */
  readonly partials: string;
  readonly tiles: number;
  /** Pixels per sample (H·W): the mean's divisor. */
  readonly count: number;
  /** The mean (a reduce or adaptive pooling layer), which has no step of its own. */
  readonly layer: Layer;
}

export interface MatmulStep {
  readonly kind: "matmul";
  readonly layer: LayerOf<"matmul">;
  readonly a: string;
  readonly b: string;
  /** Constant [N] added to every row (cuBLASLt BIAS epilogue). */
  readonly bias?: string;
  readonly activation: "none" | "relu" | "gelu";
  /**
   * A tensor of the output's shape (identity layout) added last: a block's residual, as cuBLASLt's beta·C
   * (schedule.ts matmulEpilogue: by default for outputs of 2^20+ elements; only without an activation, which
   * cuBLASLt would apply after C).
   */
  readonly residual?: string;
  readonly fused: readonly Layer[];
  readonly output: string;
}

/**
 * Pointwise layers a rows kernel computes around its own layer, so they need no kernel of their own: the
 * prologue makes the row's input from loaded tensors at the same coordinates (a pre-norm residual add, casts),
 * the epilogue maps the result on its way to memory (casts).
 */
export interface RowsFusion {
  /** Members in topological order; the last one's output is the layer's input. */
  readonly prologue: readonly Layer[];
  /** Prologue outputs read elsewhere (the residual sum): stored by the kernel at the input's coordinates. */
  readonly stores: readonly string[];
  /** A chain after the layer's output; the last one's output is what the kernel stores. */
  readonly epilogue: readonly Layer[];
}

export interface NormalizationStep extends Partial<RowsFusion> {
  readonly kind: "normalization";
  readonly layer: LayerOf<"normalization">;
}

export interface SoftmaxStep extends Partial<RowsFusion> {
  readonly kind: "softmax";
  readonly layer: LayerOf<"softmax">;
}

/** Rows kernels that take in element layers around them. */
export type FusedRowsStep = NormalizationStep | SoftmaxStep;

export type Step =
  | { readonly kind: "element"; readonly group: ElementGroup }
  | { readonly kind: "reduce"; readonly layer: LayerOf<"reduce"> | LayerOf<"adaptive_pooling"> }
  | SoftmaxStep
  | NormalizationStep
  | {
      readonly kind: "attention";
      readonly layer: LayerOf<"attention">;
      /** The tensor-core flash kernel or the row-wise one (codegen/flash-attention.ts says which and why). */
      readonly choice: AttentionKernelChoice;
    }
  | ConvStep
  | MatmulStep;

/** Tensors a step reads. */
export function stepReads(s: Step): string[] {
  switch (s.kind) {
    case "element": {
      const inside = new Set(s.group.layers.map((l) => l.output));
      return [...new Set(s.group.layers.flatMap((l) => l.inputs).filter((t) => !inside.has(t)))];
    }
    case "conv": {
      const extra = s.epilogue.flatMap((o) => (o.kind === "tensor" ? [o.tensor] : []));
      const x = s.scale ? [s.scale.input, s.scale.by] : [s.xMean ? s.xMean.partials : s.x];
      const own = [...x, ...s.layer.inputs.slice(1), ...extra];
      return s.next ? [...own, ...stepReads(s.next).filter((t) => t !== s.output)] : own;
    }
    case "matmul":
      return [s.a, s.b, ...(s.bias ? [s.bias] : []), ...(s.residual ? [s.residual] : [])];
    case "normalization":
    case "softmax": {
      const layers = stepLayers(s);
      const inside = new Set(layers.map((l) => l.output));
      return [...new Set(layers.flatMap((l) => l.inputs).filter((t) => !inside.has(t)))];
    }
    default:
      return [...s.layer.inputs];
  }
}

/** The tensor a rows step stores last: its layer's output or its epilogue's. */
export function rowsOutput(s: FusedRowsStep): string {
  return s.epilogue?.length ? s.epilogue[s.epilogue.length - 1].output : s.layer.output;
}

/** Every layer a step computes, in order. */
export function stepLayers(s: Step): readonly Layer[] {
  switch (s.kind) {
    case "element":
      return s.group.layers;
    case "conv":
      return [
        ...(s.xMean ? [s.xMean.layer] : []),
        ...(s.scale ? [s.scale.layer] : []),
        ...(s.int8 ? [s.int8.dequantize] : []),
        s.layer,
        ...s.fused,
        ...(s.next ? stepLayers(s.next) : []),
      ];
    case "matmul":
      return [s.layer, ...s.fused];
    case "normalization":
    case "softmax":
      return [...(s.prologue ?? []), s.layer, ...(s.epilogue ?? [])];
    default:
      return [s.layer];
  }
}

/** Tensors a step writes. */
export function stepWrites(s: Step): string[] {
  switch (s.kind) {
    case "element":
      return s.group.channelSums ? [...s.group.outputs, s.group.channelSums.partials] : [...s.group.outputs];
    case "conv":
      return [s.next ? s.next.output : s.output];
    case "matmul":
      return [s.output];
    case "normalization":
    case "softmax":
      return [...(s.stores ?? []), rowsOutput(s)];
    default:
      return [s.layer.output];
  }
}

/** Whether the step's GELU epilogue stands for the graph's exact (erf) GELU. */
export const geluFromErf = (s: MatmulStep): boolean =>
  s.fused.some((l) => l.type === "activation" && l.fn.kind === "gelu_erf");

/**
 * Where the engine computes something other than the graph's exact function, one line per kind, for the compile
 * report: today only exact GELU run as cuBLASLt's tanh form in matmul epilogues (fuse/schedule.ts geluEpilogue).
 */
export function approximations(
  steps: readonly Step[],
  exact: (s: MatmulStep) => boolean = () => false,
): string[] {
  // `exact`: steps whose kernel computes the erf form (the generated small GEMM)
  const gelu = steps.filter((s) => s.kind === "matmul" && geluFromErf(s) && !exact(s)).length;
  return gelu > 0
    ? [
        `exact GELU as cuBLASLt's tanh form in ${gelu} matmul epilogue${gelu === 1 ? "" : "s"} (they differ by at most 4.7e-4; TORCHC_GELU_EPILOGUE=0 keeps exact GELU)`,
      ]
    : [];
}

export function describeStep(s: Step): string {
  switch (s.kind) {
    case "element":
      return `element[${s.group.layers.map((l) => l.type).join("+")}] → ${s.group.outputs.join(", ")}${s.group.channelSums ? ` +Σ ${s.group.channelSums.partials}` : ""}`;
    case "conv":
      return `conv${s.engine === "gemv" ? (s.xMean ? "(gemv) ←Σ" : "(gemv)") : s.engine === "pointwise" ? (s.scale ? "(pointwise, scaled input)" : "(pointwise)") : s.engine === "gemm" ? "(tensor-core GEMM)" : s.int8 ? (s.quantizeOutput ? "(int8 → int8)" : "(int8)") : ""} ${s.layout}${s.epilogue.length ? ` +${s.epilogue.map((o) => (o.kind === "act" ? o.fn : `${o.kind}-${o.op}`)).join("+")}` : ""} → ${s.output}${s.next ? ` ⇒ ${describeStep(s.next)}` : ""}`;
    case "matmul":
      return `matmul${s.bias ? "+bias" : ""}${s.activation !== "none" ? `+${s.activation}${geluFromErf(s) ? "(tanh for erf)" : ""}` : ""}${s.residual ? "+residual" : ""} → ${s.output}`;
    case "normalization":
    case "softmax": {
      const pro = s.prologue?.length ? `[${s.prologue.map((l) => l.type).join("+")}]+` : "";
      const epi = s.epilogue?.length ? `+[${s.epilogue.map((l) => l.type).join("+")}]` : "";
      const own = s.kind === "normalization" ? "norm" : "softmax";
      return `${s.kind}${pro || epi ? ` ${pro}${own}${epi}` : ""} → ${stepWrites(s).join(", ")}`;
    }
    case "attention":
      return `attention(${describeAttentionChoice(s.choice)}) → ${s.layer.output}`;
    default:
      return `${s.kind} → ${s.layer.output}`;
  }
}

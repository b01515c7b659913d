/**
 * 2:4 structured sparsity, the part that needs no GPU: which matmul weights are exactly 2:4 sparse along the
 * reduction axis (at most two non-zeros in every group of four consecutive K values, zeros exact), whether
 * cuSPARSELt can run each such layer (precision, layout, shape) and, if not, why; when the GPU or the library
 * cannot run sparse at all; and the compile report's lines. The build step that times sparse against dense is
 * ./sparse-select.ts.
 */
import { TorchcError } from "../../errors.js";
import { type Tensor, toFloat64Array } from "../../ir/tensor.js";
import type { Network } from "../../network/network.js";
import {
  type SparseLinearProblem,
  sparseActivationRefusal,
  sparseShapeRefusal,
} from "./device/sparselt-plan.js";
import type { ConvEpilogueOp, ConvStep, MatmulStep } from "./fuse/steps.js";
import type { MatmulGeometry } from "./kernels/matmul-cublaslt.js";
import { storageRoot, type TensorInfo } from "./plan/tensors.js";

/** `compile(model, { sparseWeights })`: true needs sparse to be possible (else compiling fails); "prefer" does not. */
export type SparseWeightsMode = true | "prefer";

/** What the builder is told: the mode, and why sparse is impossible on this machine, if it is. */
export interface SparseWeightsSetting {
  readonly mode: SparseWeightsMode;
  readonly unavailable?: string;
}

/** Where a weight breaks the 2:4 pattern, or null when every group of four along K has at most two non-zeros. */
export function first24Violation(
  values: ArrayLike<number>,
  rows: number,
  k: number,
): { row: number; column: number; nonzeros: number } | null {
  if (k % 4 !== 0) return { row: 0, column: k - (k % 4), nonzeros: -1 };
  for (let r = 0; r < rows; r++) {
    const base = r * k;
    for (let c = 0; c < k; c += 4) {
      let nz = 0;
      for (let i = 0; i < 4; i++) if (values[base + c + i] !== 0) nz++;
      if (nz > 2) return { row: r, column: c, nonzeros: nz };
    }
  }
  return null;
}

/** True when `values` ([rows, k] row-major) is 2:4 sparse along k with exact zeros. */
export function is24Sparse(values: ArrayLike<number>, rows: number, k: number): boolean {
  return first24Violation(values, rows, k) === null;
}

/** A layer whose constant weight is 2:4 sparse along K: runnable by cuSPARSELt (problem) or not (reason). */
export type SparseCandidate =
  | {
      readonly runnable: true;
      readonly step: MatmulStep;
      readonly problem: SparseLinearProblem;
      /** The weight [N,K] and bias [N] as the network holds them (any float dtype). */
      readonly weight: Tensor;
      readonly bias?: Tensor;
    }
  | {
      readonly runnable: false;
      readonly step: MatmulStep | ConvStep;
      readonly shape: string;
      readonly reason: string;
    };

/** The constant tensor behind `tensor` (through views), or undefined when it is computed. */
export function constantBehind(
  net: Network,
  infos: ReadonlyMap<string, TensorInfo>,
  tensor: string,
): Tensor | undefined {
  const root = storageRoot(infos, tensor);
  const layer = net.layers.find((l) => l.output === root);
  if (layer?.type !== "constant") return undefined;
  const t = net.constants[layer.weight];
  // A view that reshapes or permutes the constant is read differently from the stored order: not handled.
  return root === tensor ? t : undefined;
}

const shapeText = (g: { m: number; n: number; k: number }) => `M=${g.m} N=${g.n} K=${g.k}`;

/**
 * A matmul step's sparse candidacy. Undefined when the weight is not a constant or not 2:4 sparse along K
 * (such layers are not sparse-eligible and the report only counts them).
 */
export function sparseCandidate(
  step: MatmulStep,
  net: Network,
  infos: ReadonlyMap<string, TensorInfo>,
  geometry: MatmulGeometry | string,
): SparseCandidate | undefined {
  const weight = constantBehind(net, infos, step.b);
  if (weight?.shape.length !== 2) return undefined;
  // nn.Linear's weight is [N,K] (read transposed); a [K,N] constant is sparse along its rows' axis instead.
  const nk = step.layer.transposeB;
  const [rows, cols] = weight.shape;
  const k = nk ? cols : rows;
  const values = toFloat64Array(weight);
  const sparse = nk
    ? is24Sparse(values, rows, cols)
    : is24Sparse(transpose2d(values, rows, cols), cols, rows);
  if (!sparse) return undefined;
  const refuse = (shape: string, reason: string): SparseCandidate => ({
    runnable: false,
    step,
    shape,
    reason,
  });
  if (typeof geometry === "string") return refuse(`K=${k}`, `matmul layout: ${geometry}`);
  const shape = shapeText(geometry);
  if (geometry.dtype !== "float16")
    return refuse(
      shape,
      `precision ${geometry.dtype === "float32" ? "fp32" : geometry.dtype}: sparse needs fp16/bf16/int8 (cuSPARSELt's fp32 kernels need 1:2 sparsity, not 2:4); compile with enabledPrecisions ["fp16"]`,
    );
  if (geometry.batch !== 1) return refuse(shape, `batched matmul (${geometry.batch} batches)`);
  if (!geometry.bT || !nk)
    return refuse(shape, "weight stored [K,N]; only nn.Linear's [N,K] layout runs sparse");
  if (geometry.aT) return refuse(shape, "input stored transposed ([K,M])");
  const problem: SparseLinearProblem = {
    dtype: "float16",
    m: geometry.m,
    n: geometry.n,
    k: geometry.k,
    bias: step.bias !== undefined,
    activation: step.activation,
  };
  const misaligned = sparseShapeRefusal(problem);
  if (misaligned) return refuse(shape, misaligned);
  const activation = sparseActivationRefusal(problem);
  if (activation) return refuse(shape, activation);
  const bias = step.bias ? constantBehind(net, infos, step.bias) : undefined;
  if (step.bias && !bias) return refuse(shape, "bias is not a constant");
  return { runnable: true, step, problem, weight, bias };
}

/** A 1×1 convolution cuSPARSELt runs as one GEMM over the channels-last map: y[M, Cout] = act(x[M, Cin]·Wᵀ + …). */
export interface SparseConvCandidate {
  readonly runnable: true;
  readonly conv: true;
  readonly step: ConvStep;
  /** M = N·H·W pixels, N = Cout, K = Cin; the residual is cuSPARSELt's C. */
  readonly problem: SparseLinearProblem;
  /** The weight [Cout, Cin, 1, 1] as the network holds it (the same bytes as [Cout, Cin]). */
  readonly weight: Tensor;
  /** The convolution's bias plus the epilogue's per-channel additions, when there is any. */
  readonly bias?: Float64Array;
  /** The tensor the epilogue adds (a residual of y's shape and layout). */
  readonly residual?: string;
}

export type SparseConvCandidacy =
  | SparseConvCandidate
  | { readonly runnable: false; readonly step: ConvStep; readonly shape: string; readonly reason: string };

/** What cuSPARSELt's epilogue (D = act(A·B + β·C + bias)) makes of a convolution's fused ops, or why it cannot. */
export function sparseConvEpilogue(
  ops: readonly ConvEpilogueOp[],
): { channelAdds: Float64Array[]; residual?: string; activation: "none" | "relu" } | string {
  const channelAdds: Float64Array[] = [];
  let residual: string | undefined;
  let activation: "none" | "relu" = "none";
  for (const op of ops) {
    if (activation !== "none") return `a ${describeOp(op)} after the activation (cuSPARSELt applies it last)`;
    if (op.kind === "act") {
      if (op.fn !== "relu") return `${op.fn} epilogue: cuSPARSELt fuses only ReLU for fp16`;
      activation = "relu";
    } else if (op.op === "mul") return `a ${describeOp(op)} in the epilogue (cuSPARSELt only adds)`;
    else if (op.kind === "channel") channelAdds.push(op.values);
    else if (residual !== undefined) return "two tensor additions in the epilogue (cuSPARSELt adds one C)";
    else residual = op.tensor;
  }
  return residual === undefined ? { channelAdds, activation } : { channelAdds, residual, activation };
}

function describeOp(op: ConvEpilogueOp): string {
  if (op.kind === "act") return `${op.fn} activation`;
  return `${op.kind === "channel" ? "per-channel" : "tensor"} ${op.op === "add" ? "addition" : "multiplication"}`;
}

/**
 * A convolution whose constant weight [Cout, Cin, kh, kw] is 2:4 sparse along Cin at each kernel position (the
 * K order of a channels-last implicit GEMM). A cuDNN 1×1 convolution with stride 1 and no padding over fp16
 * channels-last memory is a GEMM, and runs sparse when its epilogue is cuSPARSELt's; every other one is reported
 * as eligible but dense, with the reason. Undefined when the weight is not a constant or not 2:4.
 */
export function sparseConvCandidate(
  step: ConvStep,
  net: Network,
  infos: ReadonlyMap<string, TensorInfo>,
): SparseConvCandidacy | undefined {
  const weight = constantBehind(net, infos, step.layer.inputs[1]);
  if (weight?.shape.length !== 4) return undefined;
  const [cout, cin, kh, kw] = weight.shape;
  const v = toFloat64Array(weight);
  const perm = new Float64Array(v.length);
  for (let o = 0; o < cout; o++)
    for (let c = 0; c < cin; c++)
      for (let i = 0; i < kh * kw; i++) perm[(o * kh * kw + i) * cin + c] = v[(o * cin + c) * kh * kw + i];
  if (!is24Sparse(perm, cout * kh * kw, cin)) return undefined;
  const refuse = (reason: string, shape = `Cout=${cout} Cin=${cin} ${kh}×${kw}`): SparseConvCandidacy => ({
    runnable: false,
    step,
    shape,
    reason,
  });
  if (kh !== 1 || kw !== 1)
    return refuse(
      `${kh}×${kw} convolution: runs on cuDNN (no sparse path for convolutions; im2col not attempted)`,
    );
  if (step.engine !== "cudnn")
    return refuse(
      `1×1 convolution: runs as a generated kernel (${step.engine}); only cuDNN's are offered to cuSPARSELt`,
    );
  const l = step.layer;
  const why = conv1x1Refusal(step, infos);
  if (why) return refuse(why);
  const epilogue = sparseConvEpilogue(step.epilogue);
  if (typeof epilogue === "string") return refuse(epilogue);
  const [n, , oh, ow] = infos.get(step.output)!.shape;
  const problem: SparseLinearProblem = {
    dtype: "float16",
    m: n * oh * ow,
    n: cout,
    k: cin,
    bias: l.inputs[2] !== undefined || epilogue.channelAdds.length > 0,
    activation: epilogue.activation,
    ...(epilogue.residual !== undefined ? { residual: true } : {}),
  };
  const shape = `1×1 conv ${shapeText(problem)}`;
  const misaligned = sparseShapeRefusal(problem);
  if (misaligned) return refuse(misaligned, shape);
  let bias: Float64Array | undefined;
  if (problem.bias) {
    const own = l.inputs[2] === undefined ? undefined : constantBehind(net, infos, l.inputs[2]);
    if (l.inputs[2] !== undefined && !own) return refuse("bias is not a constant", shape);
    bias = own ? toFloat64Array(own) : new Float64Array(cout);
    for (const add of epilogue.channelAdds) for (let c = 0; c < cout; c++) bias[c] += add[c];
  }
  return { runnable: true, conv: true, step, problem, weight, bias, residual: epilogue.residual };
}

/** Why a 1×1 convolution is not one channels-last fp16 GEMM over its map, or undefined. */
function conv1x1Refusal(step: ConvStep, infos: ReadonlyMap<string, TensorInfo>): string | undefined {
  const l = step.layer;
  if (step.int8) return "int8 convolution: sparse int8 is not built";
  if (step.scale || step.next || step.xMean) return "1×1 convolution fused with its neighbours";
  if (l.groups !== 1) return `grouped convolution (${l.groups} groups)`;
  if (l.stride.some((s) => s !== 1))
    return `stride ${l.stride.join("×")}: a strided 1×1 convolution is not one GEMM over the map`;
  if (l.padding.some((p) => p !== 0)) return `padding ${l.padding.join("×")}`;
  if (step.layout !== "NHWC")
    return "NCHW memory: the GEMM needs channels-last activations (fp16 engines are channels-last)";
  const dtypes = [step.x, step.output].map((t) => infos.get(t)!.storage);
  if (dtypes.some((d) => d !== "float16"))
    return `precision ${dtypes.join("/")}: sparse needs fp16 (cuSPARSELt's fp32 kernels need 1:2 sparsity, not 2:4); compile with enabledPrecisions ["fp16"]`;
  return undefined;
}

function transpose2d(v: Float64Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(v.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = v[r * cols + c];
  return out;
}

// ------------------------------------------------------------------------------------------ availability

/** Sparse tensor cores came with Ampere. */
export const MIN_SPARSE_COMPUTE_CAPABILITY = 8;

/** Why this GPU cannot run 2:4 sparse matmuls, or undefined. */
export function gpuSparseRefusal(name: string, cc: readonly [number, number]): string | undefined {
  if (cc[0] >= MIN_SPARSE_COMPUTE_CAPABILITY) return undefined;
  return `GPU '${name}' (sm_${cc[0]}${cc[1]}) has no sparse tensor cores: 2:4 sparsity needs compute capability ${MIN_SPARSE_COMPUTE_CAPABILITY}.0 or newer`;
}

/**
 * The builder's setting for `sparseWeights`, or undefined when it is off. `unavailable` is the first reason
 * sparse cannot run here (GPU, then library); with `true` that reason fails the compile, in one line.
 */
export function sparseWeightsSetting(
  option: boolean | "prefer" | undefined,
  unavailable: () => string | undefined,
): SparseWeightsSetting | undefined {
  if (option === undefined || option === false) return undefined;
  const why = unavailable();
  if (why === undefined) return { mode: option };
  if (option === true)
    throw new TorchcError(
      `sparseWeights: ${why}; pass sparseWeights: "prefer" (--sparse-weights=prefer) to compile dense instead`,
      "sparse.unavailable",
    );
  return { mode: option, unavailable: why };
}

// ------------------------------------------------------------------------------------------ report

/** One sparse-eligible layer and what it ran as. */
export interface SparseLayerReport {
  readonly layer: string;
  readonly shape: string;
  readonly ran: "sparse" | "dense";
  /** Why it ran dense. */
  readonly reason?: string;
  /** GPU time per call of each, when both were timed. */
  readonly sparseMs?: number;
  readonly denseMs?: number;
  /** cuSPARSELt's algorithm configuration (id of count), when it ran sparse. */
  readonly algorithm?: string;
}

export interface SparseSummary {
  readonly mode: SparseWeightsMode;
  /** Why nothing could run sparse on this machine ("prefer" only). */
  readonly unavailable?: string;
  /** Matmuls and convolutions with a constant weight that were checked for 2:4 sparsity. */
  readonly weightsChecked: number;
  /** Every layer whose weight is 2:4 sparse along K, in schedule order. */
  readonly layers: readonly SparseLayerReport[];
}

const ms = (v: number) => `${v.toFixed(4)} ms`;

/** The compile report's lines: a headline, then every sparse-eligible layer and how it ran. */
export function formatSparseSummary(s: SparseSummary): string[] {
  const ran = s.layers.filter((l) => l.ran === "sparse");
  const eligible = s.layers.length;
  const head =
    `sparse weights (2:4, cuSPARSELt, ${s.mode === true ? "required" : "preferred"}): ` +
    `${ran.length} of ${eligible} sparse-eligible layer${eligible === 1 ? "" : "s"} ran sparse` +
    ` (${s.weightsChecked} linear and convolution weight${s.weightsChecked === 1 ? "" : "s"} checked)` +
    (s.unavailable ? `; not available here: ${s.unavailable}` : "");
  const lines = s.layers.map((l) => {
    if (l.ran === "sparse") {
      const gain = l.sparseMs && l.denseMs ? `, ${(l.denseMs / l.sparseMs).toFixed(2)}× faster` : "";
      const timed =
        l.sparseMs !== undefined && l.denseMs !== undefined
          ? ` (${ms(l.sparseMs)} vs dense ${ms(l.denseMs)}${gain})`
          : "";
      return `  sparse: '${l.layer}' ${l.shape}${timed}${l.algorithm ? `, algorithm ${l.algorithm}` : ""}`;
    }
    return `  dense:  '${l.layer}' ${l.shape}: ${l.reason ?? "unknown"}`;
  });
  return [head, ...lines];
}

/** `timing lost` wording, with both times and the dense library (cuBLASLt for linears, cuDNN for convolutions). */
export function timingLost(sparseMs: number, denseMs: number, dense = "cuBLASLt"): string {
  return `timing lost: sparse ${ms(sparseMs)} vs dense ${dense} ${ms(denseMs)}`;
}

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
import type { ConvStep, MatmulStep } from "./fuse/steps.js";
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

/**
 * A convolution whose constant weight [Cout, Cin, kh, kw] is 2:4 sparse along Cin at each kernel position (the
 * K order of a channels-last implicit GEMM): reported as eligible but dense, since only linear layers run
 * sparse. Undefined when the weight is not a constant or not 2:4.
 */
export function sparseConvRefusal(
  step: ConvStep,
  net: Network,
  infos: ReadonlyMap<string, TensorInfo>,
): { readonly layer: string; readonly shape: string; readonly reason: string } | undefined {
  const weight = constantBehind(net, infos, step.layer.inputs[1]);
  if (weight?.shape.length !== 4) return undefined;
  const [cout, cin, kh, kw] = weight.shape;
  const v = toFloat64Array(weight);
  const perm = new Float64Array(v.length);
  for (let o = 0; o < cout; o++)
    for (let c = 0; c < cin; c++)
      for (let i = 0; i < kh * kw; i++) perm[(o * kh * kw + i) * cin + c] = v[(o * cin + c) * kh * kw + i];
  if (!is24Sparse(perm, cout * kh * kw, cin)) return undefined;
  const oneByOne = kh === 1 && kw === 1;
  return {
    layer: step.layer.name,
    shape: `Cout=${cout} Cin=${cin} ${kh}×${kw}`,
    reason: oneByOne
      ? `1×1 convolution: runs ${step.engine === "cudnn" ? "on cuDNN" : "as a generated kernel"} (1×1 convolutions as sparse GEMMs are not built yet)`
      : `${kh}×${kw} convolution: runs on cuDNN (no sparse path for convolutions; im2col not attempted)`,
  };
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

/** `timing lost` wording, with both times. */
export function timingLost(sparseMs: number, denseMs: number): string {
  return `timing lost: sparse ${ms(sparseMs)} vs dense cuBLASLt ${ms(denseMs)}`;
}

/**
 * Batched row-major matmul through cuBLASLt with the column-major recipe of device/matmul-layout.ts:
 * Y[b] = op(A[b])·op(B[b]) (+ row bias, relu / tanh-gelu), fp16 with fp32 accumulation or fp32 (TF32 only
 * when asked). Operands may be stored transposed (their last two axes swapped in memory), and a batch
 * operand may be broadcast (batch stride 0). When B has no batch and A is row-major, A's batch axes fold into M.
 */
import { numel } from "../../../ir/tensor.js";
import {
  buildLtPlan,
  destroyLtPlan,
  epilogueFor,
  type LtActivation,
  type LtHandle,
  type LtPlan,
  type LtProblem,
  runLtPlan,
  setLtBias,
} from "../device/blaslt-plan.js";
import type { Stream } from "../device/stream.js";
import type { MatmulStep } from "../fuse/steps.js";
import type { TensorInfo } from "../plan/tensors.js";

export interface MatmulGeometry {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  /** A stored as [K, M] row-major (else [M, K]). */
  readonly aT: boolean;
  /** B stored as [N, K] row-major (else [K, N]). */
  readonly bT: boolean;
  readonly batch: number;
  readonly strideA: number;
  readonly strideB: number;
  readonly strideD: number;
  readonly dtype: "float16" | "float32";
}

function physicallyTransposed(info: TensorInfo): boolean {
  const r = info.shape.length;
  const last = info.layout.slice(r - 2);
  if (info.shape[r - 1] === 1 || info.shape[r - 2] === 1) return false;
  return last[0] === r - 1;
}

/** The cuBLASLt problem for a matmul step, or a reason it cannot be expressed. */
export function matmulGeometry(step: MatmulStep, info: (t: string) => TensorInfo): MatmulGeometry | string {
  const a = info(step.a);
  const b = info(step.b);
  const out = info(step.output);
  const dtype = a.storage;
  if ((dtype !== "float16" && dtype !== "float32") || b.storage !== dtype || out.storage !== dtype)
    return `dtypes ${a.storage}/${b.storage}/${out.storage}`;
  const ra = a.shape.length;
  const ro = out.shape.length;
  const m = out.shape[ro - 2];
  const n = out.shape[ro - 1];
  const k = step.layer.transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const aT = step.layer.transposeA !== physicallyTransposed(a);
  const bT = step.layer.transposeB !== physicallyTransposed(b);
  const outBatch = out.shape.slice(0, -2);
  const batch = numel(outBatch);
  const padded = (s: readonly number[]) => [...new Array<number>(outBatch.length - s.length).fill(1), ...s];
  const aBatch = padded(a.shape.slice(0, -2));
  const bBatch = padded(b.shape.slice(0, -2));
  const fits = (bs: number[]) => numel(bs) === 1 || bs.join() === outBatch.join();
  if (!fits(aBatch) || !fits(bBatch)) return `batch shapes [${aBatch}] and [${bBatch}] broadcast partially`;
  if (numel(bBatch) === 1 && !aT && batch > 1 && numel(aBatch) === batch) {
    return { m: m * batch, n, k, aT, bT, batch: 1, strideA: 0, strideB: 0, strideD: 0, dtype };
  }
  return {
    m,
    n,
    k,
    aT,
    bT,
    batch,
    strideA: numel(aBatch) === 1 ? 0 : m * k,
    strideB: numel(bBatch) === 1 ? 0 : k * n,
    strideD: m * n,
    dtype,
  };
}

export class LtMatmul {
  private readonly alpha = new Float32Array([1]);
  /** 1 while a residual is bound (D = A·B (+ bias) + C), else 0. */
  private readonly beta = new Float32Array([0]);
  private ptrs: { a: bigint; b: bigint; d: bigint; c?: bigint; ws: bigint } | undefined;
  private destroyed = false;

  constructor(
    private readonly handle: LtHandle,
    readonly geometry: MatmulGeometry,
    private readonly plan: LtPlan,
    readonly hasBias: boolean,
  ) {}

  get workspaceBytes(): number {
    return this.plan.workspaceBytes;
  }

  /** The cublasLtMatmulAlgo_t in use (what a saved package keeps). */
  get algo(): Uint8Array {
    return this.plan.algo;
  }

  /** `residual`: a tensor of D's shape and layout added to the product (a fused residual add), or none. */
  bind(
    a: bigint,
    b: bigint,
    d: bigint,
    bias: bigint | undefined,
    workspace: bigint,
    residual?: bigint,
  ): void {
    if (this.hasBias) setLtBias(this.plan, bias ?? 0n);
    this.beta[0] = residual === undefined ? 0 : 1;
    this.ptrs = { a, b, d, ws: workspace, ...(residual === undefined ? {} : { c: residual }) };
  }

  execute(stream: Stream): void {
    const p = this.ptrs;
    if (!p) throw new Error("matmul executed before bind()");
    const workspace = this.plan.workspaceBytes > 0 ? p.ws : null;
    runLtPlan(this.handle, this.plan, { ...p, alpha: this.alpha, beta: this.beta, workspace }, stream);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    destroyLtPlan(this.plan);
  }
}

export type LtMatmulBuild =
  | { readonly ok: true; readonly plan: LtMatmul }
  | { readonly ok: false; readonly reason: string };

/** Plans a matmul through the device layer, or says why cuBLASLt refused (its status and message). */
/** The cuBLASLt problem of a geometry and its epilogue. */
export function ltProblemOf(
  g: MatmulGeometry,
  epilogue: { bias: boolean; activation: LtActivation; residual?: true },
  allowTf32: boolean,
): LtProblem {
  return {
    ...g,
    transA: g.aT,
    transB: g.bT,
    epilogue: epilogueFor(epilogue.activation, epilogue.bias),
    tf32: allowTf32,
  };
}

export function buildLtMatmul(
  handle: LtHandle,
  g: MatmulGeometry,
  epilogue: { bias: boolean; activation: LtActivation; residual?: true },
  allowTf32: boolean,
  maxWorkspace: number,
  saved?: { readonly algo: Uint8Array; readonly workspaceBytes: number },
): LtMatmulBuild {
  try {
    const problem = ltProblemOf(g, epilogue, allowTf32);
    const plan = buildLtPlan(handle, problem, maxWorkspace, `${g.m}x${g.n}x${g.k} batch ${g.batch}`, saved);
    return { ok: true, plan: new LtMatmul(handle, g, plan, epilogue.bias) };
  } catch (e) {
    return { ok: false, reason: `cuBLASLt refused: ${e instanceof Error ? e.message : String(e)}` };
  }
}

export { createLtHandle, destroyLtHandle } from "../device/blaslt-plan.js";

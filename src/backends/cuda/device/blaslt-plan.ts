/**
 * One cuBLASLt plan: matmul descriptor (compute type, transposes, epilogue), the three column-major layouts
 * of matmul-layout.ts's recipe (strided-batched when batch > 1), and the first heuristic algorithm that fits
 * the workspace. Both BlasLt (blaslt.ts) and the engine's matmuls (kernels/matmul-cublaslt.ts) build and run
 * their plans here. Every failing call throws CublasError with cuBLASLt's status, so a refusal keeps its
 * reason.
 */
import {
  CUBLAS_COMPUTE,
  CUBLASLT,
  CUDA_R,
  EPILOGUE,
  HEURISTIC_RESULT,
  LAYOUT_ATTR,
  MATMUL_DESC,
  PREF_ATTR,
} from "../../../ffi/cublaslt.js";
import { CublasError, checkCublas } from "../../../ffi/status.js";
import type { OutNum, OutPtr, Ptr } from "../../../ffi/types.js";
import { type LtLayout, ltRecipe } from "./matmul-layout.js";
import { type Stream, streamHandle } from "./stream.js";
import { checkInt } from "./validate.js";

export type LtDType = "float16" | "bfloat16" | "float32";
export type LtActivation = "none" | "relu" | "gelu";

const DATA_TYPE: Readonly<Record<LtDType, number>> = {
  float16: CUDA_R.f16,
  bfloat16: CUDA_R.bf16,
  float32: CUDA_R.f32,
};
/** A cuBLASLt handle (cublasLtHandle_t). */
export type LtHandle = Ptr;

/** Algorithms asked of the heuristic (by default; the split-K timing, lt-timed-choice.ts, asks for more). */
export const REQUESTED_ALGOS = 8;

/** A row-major problem Y = op(A)·op(B) (see matmul-layout.ts), optionally strided-batched. */
export interface LtProblem {
  readonly dtype: LtDType;
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly transA: boolean;
  readonly transB: boolean;
  /** Batch count and element strides between batches (0: broadcast); batch 1 when absent. */
  readonly batch?: number;
  readonly strideA?: number;
  readonly strideB?: number;
  readonly strideD?: number;
  /** A cublasLtEpilogue_t (epilogueFor). */
  readonly epilogue: number;
  /** fp32 only: TF32 tensor cores. */
  readonly tf32: boolean;
}

export interface LtPlan {
  readonly desc: Ptr;
  readonly layouts: readonly [Ptr, Ptr, Ptr];
  readonly algo: Uint8Array;
  readonly workspaceBytes: number;
}

/** cuBLASLt's epilogue for an activation, with or without a row bias. */
export function epilogueFor(activation: LtActivation, bias: boolean): number {
  switch (activation) {
    case "none":
      return bias ? EPILOGUE.BIAS : EPILOGUE.DEFAULT;
    case "relu":
      return bias ? EPILOGUE.RELU_BIAS : EPILOGUE.RELU;
    case "gelu":
      return bias ? EPILOGUE.GELU_BIAS : EPILOGUE.GELU;
  }
}

/** The compute type: fp32 accumulation, with TF32 tensor cores only for fp32 when asked. */
export function computeTypeFor(dtype: LtDType, tf32: boolean): number {
  return dtype === "float32" && tf32 ? CUBLAS_COMPUTE.f32FastTf32 : CUBLAS_COMPUTE.f32;
}

export function createLtHandle(): Ptr {
  const out: OutPtr = [null];
  checkCublas("cublasLtCreate", CUBLASLT.fn.cublasLtCreate(out));
  return out[0];
}

export function destroyLtHandle(h: Ptr): void {
  checkCublas("cublasLtDestroy", CUBLASLT.fn.cublasLtDestroy(h));
}

function setDesc(desc: Ptr, attr: number, value: Int32Array | Uint32Array, what: string): void {
  checkCublas(
    `cublasLtMatmulDescSetAttribute(${what})`,
    CUBLASLT.fn.cublasLtMatmulDescSetAttribute(desc, attr, value, 4),
  );
}

function matrixLayout(p: LtProblem, l: LtLayout, stride: number, what: string, made: Ptr[]): Ptr {
  const f = CUBLASLT.fn;
  const out: OutPtr = [null];
  checkCublas(
    `cublasLtMatrixLayoutCreate(${what})`,
    f.cublasLtMatrixLayoutCreate(out, DATA_TYPE[p.dtype], l.rows, l.cols, l.ld),
  );
  made.push(out[0]);
  const batch = p.batch ?? 1;
  if (batch > 1) {
    checkCublas(
      `cublasLtMatrixLayoutSetAttribute(${what}.BATCH_COUNT)`,
      f.cublasLtMatrixLayoutSetAttribute(out[0], LAYOUT_ATTR.BATCH_COUNT, new Int32Array([batch]), 4),
    );
    const offset = new BigInt64Array([BigInt(stride)]);
    checkCublas(
      `cublasLtMatrixLayoutSetAttribute(${what}.STRIDED_BATCH_OFFSET)`,
      f.cublasLtMatrixLayoutSetAttribute(out[0], LAYOUT_ATTR.STRIDED_BATCH_OFFSET, offset, 8),
    );
  }
  return out[0];
}

/** One heuristic answer: the algorithm (64 bytes) and the workspace it needs. */
export interface LtAlgo {
  readonly algo: Uint8Array;
  readonly workspaceBytes: number;
}

/**
 * Every algorithm the heuristic returns (up to `requested`, best first) that succeeded and fits
 * `maxWorkspace`; throws CublasError when there is none. cuBLASLt documents that a heuristic answer does not
 * guarantee the matmul runs (cublasLtMatmulAlgoCheck: "will fail if e.g. buffers are not correctly aligned"),
 * so callers that can try a run (blaslt-quant.ts) walk the list.
 */
export function ltAlgoCandidates(
  handle: Ptr,
  desc: Ptr,
  layouts: readonly [Ptr, Ptr, Ptr],
  maxWorkspace: number,
  what: string,
  requested = REQUESTED_ALGOS,
): LtAlgo[] {
  checkInt("requested", requested, 1, 128);
  const f = CUBLASLT.fn;
  const pref: OutPtr = [null];
  try {
    checkCublas("cublasLtMatmulPreferenceCreate", f.cublasLtMatmulPreferenceCreate(pref));
    const ws = new BigUint64Array([BigInt(maxWorkspace)]);
    checkCublas(
      "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)",
      f.cublasLtMatmulPreferenceSetAttribute(pref[0], PREF_ATTR.MAX_WORKSPACE_BYTES, ws, 8),
    );
    const results = new Uint8Array(HEURISTIC_RESULT.size * requested);
    const returned: OutNum = [0];
    const [la, lb, ld] = layouts;
    checkCublas(
      `cublasLtMatmulAlgoGetHeuristic(${what})`,
      f.cublasLtMatmulAlgoGetHeuristic(handle, desc, la, lb, ld, ld, pref[0], requested, results, returned),
    );
    const view = new DataView(results.buffer);
    const out: LtAlgo[] = [];
    for (let i = 0; i < returned[0]; i++) {
      const base = i * HEURISTIC_RESULT.size;
      if (view.getInt32(base + HEURISTIC_RESULT.state, true) !== 0) continue;
      const workspaceBytes = Number(view.getBigUint64(base + HEURISTIC_RESULT.workspaceSize, true));
      if (workspaceBytes > maxWorkspace) continue;
      out.push({ algo: results.slice(base, base + HEURISTIC_RESULT.algoBytes), workspaceBytes });
    }
    if (out.length === 0)
      throw new CublasError(
        `cublasLtMatmulAlgoGetHeuristic(${what})`,
        15,
        `no usable algorithm among ${returned[0]} returned`,
      );
    return out;
  } finally {
    if (pref[0] !== null) f.cublasLtMatmulPreferenceDestroy(pref[0]);
  }
}

/** The first algorithm the heuristic returns that succeeded and fits `maxWorkspace`. */
export function pickLtAlgo(
  handle: Ptr,
  desc: Ptr,
  layouts: readonly [Ptr, Ptr, Ptr],
  maxWorkspace: number,
  what: string,
): LtAlgo {
  return ltAlgoCandidates(handle, desc, layouts, maxWorkspace, what)[0];
}

/** Plans `p` on `handle`; throws CublasError (status and reason) when cuBLASLt cannot. */
export function buildLtPlan(
  handle: Ptr,
  p: LtProblem,
  maxWorkspace: number,
  what: string,
  /**
   * An algorithm chosen earlier for the same problem (a saved package, the plan cache, a timed choice): no heuristic
   * query. Its 64 bytes carry its whole configuration, a split-K variant's (blaslt-splitk.ts) included.
   */
  saved?: { readonly algo: Uint8Array; readonly workspaceBytes: number },
): LtPlan {
  const f = CUBLASLT.fn;
  const recipe = ltRecipe(p);
  const descOut: OutPtr = [null];
  checkCublas(
    "cublasLtMatmulDescCreate",
    f.cublasLtMatmulDescCreate(descOut, computeTypeFor(p.dtype, p.tf32), CUDA_R.f32),
  );
  const desc = descOut[0];
  const made: Ptr[] = [];
  try {
    setDesc(desc, MATMUL_DESC.TRANSA, new Int32Array([recipe.transa]), "TRANSA");
    setDesc(desc, MATMUL_DESC.TRANSB, new Int32Array([recipe.transb]), "TRANSB");
    setDesc(desc, MATMUL_DESC.EPILOGUE, new Uint32Array([p.epilogue]), "EPILOGUE");
    const layouts = [
      matrixLayout(p, recipe.a, p.strideB ?? 0, "A", made),
      matrixLayout(p, recipe.b, p.strideA ?? 0, "B", made),
      matrixLayout(p, recipe.d, p.strideD ?? 0, "D", made),
    ] as const;
    return { desc, layouts, ...(saved ?? pickLtAlgo(handle, desc, layouts, maxWorkspace, what)) };
  } catch (e) {
    f.cublasLtMatmulDescDestroy(desc);
    for (const l of made) f.cublasLtMatrixLayoutDestroy(l);
    throw e;
  }
}

export function destroyLtPlan(plan: LtPlan): void {
  const f = CUBLASLT.fn;
  f.cublasLtMatmulDescDestroy(plan.desc);
  for (const l of plan.layouts) f.cublasLtMatrixLayoutDestroy(l);
}

/** Points the plan's bias epilogue at `bias` (`cell` is a reusable 1-element scratch). */
export function setLtBias(plan: LtPlan, bias: bigint, cell = new BigUint64Array(1)): void {
  cell[0] = bias;
  checkCublas(
    "cublasLtMatmulDescSetAttribute(BIAS_POINTER)",
    CUBLASLT.fn.cublasLtMatmulDescSetAttribute(plan.desc, MATMUL_DESC.BIAS_POINTER, cell, 8),
  );
}

export interface LtOperands {
  readonly a: bigint;
  readonly b: bigint;
  readonly d: bigint;
  readonly alpha: Float32Array;
  readonly beta: Float32Array;
  /** C, read when beta ≠ 0 (D's shape and layout; D itself when absent). */
  readonly c?: bigint;
  /** Null when the plan needs none. */
  readonly workspace: bigint | null;
}

/** Runs the plan: D = alpha·op(A)·op(B) + beta·C (+ epilogue), row-major, on `stream`. */
export function runLtPlan(
  handle: Ptr,
  plan: LtPlan,
  o: LtOperands,
  stream: Stream | null | undefined,
  what = "cublasLtMatmul",
): void {
  const [la, lb, ld] = plan.layouts;
  // cuBLASLt's A is the user's B, its B the user's A (Yᵀ = Bᵀ·Aᵀ in column-major terms; matmul-layout.ts).
  const rc = CUBLASLT.fn.cublasLtMatmul(
    handle,
    plan.desc,
    o.alpha,
    o.b,
    la,
    o.a,
    lb,
    o.beta,
    o.c ?? o.d,
    ld,
    o.d,
    ld,
    plan.algo,
    o.workspace,
    plan.workspaceBytes,
    streamHandle(stream),
  );
  if (rc !== 0) checkCublas(what, rc);
}

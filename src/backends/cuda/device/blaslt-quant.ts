/**
 * cuBLASLt plans for quantized nn.Linear layers (issue 14): int8 IMMA (int32 accumulation) and fp8 E4M3
 * (fp32 accumulation, Hopper). The row-major product Y[M,N] = Xq[M,K] · Wqᵀ (W stored [N,K]) is computed as
 * the column-major Yᵀ = op(A)·op(B) with cuBLASLt's A = W read transposed and its B = Xq (matmul-layout.ts),
 * which is exactly the "TN" form both int8 and fp8 kernels require. Problems are checked here, before any
 * descriptor is made, so a refusal names the rule that failed.
 *
 * cuBLASLt's documented int8 outputs are int32 (scale type int32) and int8 (scale fp32, optionally a per-row
 * alpha vector); int8 in with fp16/fp32 out is tried first and, where refused, the plan falls back to an int32
 * result that the caller scales per channel (kernels/matmul-int8.ts). Each plan says which variant it is and
 * why the earlier ones were refused.
 *
 * fp8 (cuBLASLt's fp8 rules: TN only, compute 32F, scale type 32F, C of D's type, 16-byte aligned operands):
 * a bias epilogue only for fp16/bf16 outputs (its type is the output's). For an fp32 output cuBLASLt's fp8
 * bias is bf16 (cublasLt.h, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE; PyTorch refuses a bias for fp32 scaled_mm
 * outright), which would round the model's bias, so torchc adds the fp32 bias itself.
 * On an H100 (cuBLASLt 13.1) fp8 plans were accepted by the heuristic and refused by cublasLtMatmul
 * (NOT_SUPPORTED). Three differences from what PyTorch's scaled_gemm does on that cuBLASLt are gone: C is now
 * a pointer other than D (fp8 refuses C = D or NULL, per PyTorch's comment), the scale and bias pointers are
 * set before the heuristic (cublasLt.h: it reads such pointers' values for the alignment it may assume), and
 * each scale has its own allocation (the input scale sat 4 bytes into the weight scale's buffer). Where the
 * caller can run the plan (QuantizedLinear's probe), each heuristic answer is tried until one runs.
 */
import {
  CUBLAS_COMPUTE,
  CUBLASLT,
  CUDA_R,
  EPILOGUE,
  MATMUL_DESC,
  MATRIX_SCALE,
  POINTER_MODE,
} from "../../../ffi/cublaslt.js";
import { CublasError, checkCublas, cublasStatusName } from "../../../ffi/status.js";
import type { OutPtr, Ptr } from "../../../ffi/types.js";
import { type LtHandle, ltAlgoCandidates } from "./blaslt-plan.js";
import { ltRecipe } from "./matmul-layout.js";
import { type Stream, streamHandle } from "./stream.js";

export type QuantKind = "int8" | "fp8";
export type QuantOutDType = "float16" | "bfloat16" | "float32";

/** nn.Linear on quantized operands: out[M,N] = scale · (Xq[M,K] · Wq[N,K]ᵀ) (+ bias[N]). */
export interface QuantLtProblem {
  readonly kind: QuantKind;
  /** Rows of X (batch × tokens). */
  readonly m: number;
  /** Output features (rows of W). */
  readonly n: number;
  /** Input features. */
  readonly k: number;
  readonly out: QuantOutDType;
  /** A bias over the output features (float32 for int8, the output type for fp8). */
  readonly bias: boolean;
  /** fp8 only: cuBLASLt's fast accumulation (partial sums never promoted to full fp32); default false. */
  readonly fastAccum?: boolean;
  /**
   * fp8 only: "channel" reads the weight's scales per output channel and the input's as a per-row vector
   * (cuBLASLt's outer-vector scale mode, cuBLASLt 12.9+ on Hopper); default "tensor" (one float each).
   */
  readonly fp8Scales?: "tensor" | "channel";
  /** int8 only: a ReLU after the bias, which only the int32 variant's epilogue kernel applies. */
  readonly relu?: boolean;
}

/**
 * How a plan computes:
 * - int8-vector-bias: D(out) = alpha[n]·acc + bias[n] in cuBLASLt (alpha a device vector, beta 0);
 * - int8-vector: the same without the bias epilogue (the caller adds the bias);
 * - int8-int32: D(int32) = acc; the caller applies alpha[n] and the bias;
 * - fp8-bias / fp8: D(out) = sW·sX·acc (+ bias[n]), sW and sX device floats;
 * - fp8-channel-bias / fp8-channel: the same with sW[n] and sX[m] device vectors (outer-vector scales).
 */
export type QuantLtVariant =
  | "int8-vector-bias"
  | "int8-vector"
  | "int8-int32"
  | "fp8-bias"
  | "fp8"
  | "fp8-channel-bias"
  | "fp8-channel";

/** What the caller must still do after cuBLASLt: scale by alpha[n], add the bias (or neither). */
export interface QuantLtPost {
  readonly scale: boolean;
  readonly bias: boolean;
}

export interface QuantLtPlan {
  readonly problem: QuantLtProblem;
  readonly variant: QuantLtVariant;
  readonly desc: Ptr;
  readonly layouts: readonly [Ptr, Ptr, Ptr];
  readonly algo: Uint8Array;
  readonly workspaceBytes: number;
  /** The type D holds: int32 for int8-int32, else the output type. */
  readonly dType: "int32" | QuantOutDType;
  readonly post: QuantLtPost;
  /** Variants cuBLASLt refused before this one, with its reason. */
  readonly refused: readonly string[];
}

const OUT_TYPE: Readonly<Record<QuantOutDType, number>> = {
  float16: CUDA_R.f16,
  bfloat16: CUDA_R.bf16,
  float32: CUDA_R.f32,
};
const INT_MAX = 2 ** 31 - 1;

/**
 * Why cuBLASLt cannot run `p`, or null. int8 IMMA with the regular (column) order needs the TN form (given),
 * K and N multiples of 4 (leading dimensions and rows of the transposed operand, 4-byte aligned); fp8 needs K
 * and N multiples of 16 (16-byte aligned leading dimensions) and an fp16/bf16/fp32 output.
 */
export function quantLtRefusal(p: QuantLtProblem): string | null {
  for (const [name, v] of [
    ["m", p.m],
    ["n", p.n],
    ["k", p.k],
  ] as const)
    if (!Number.isInteger(v) || v < 1 || v > INT_MAX) return `${name} = ${v} is not a positive 32-bit size`;
  if (!(p.out in OUT_TYPE)) return `output type ${p.out} (expected float16, bfloat16 or float32)`;
  if (p.kind === "int8") {
    if (p.k % 4 !== 0) return `int8 GEMM: in_features ${p.k} is not a multiple of 4`;
    if (p.n % 4 !== 0) return `int8 GEMM: out_features ${p.n} is not a multiple of 4`;
    return null;
  }
  if (p.kind === "fp8") {
    if (p.k % 16 !== 0) return `fp8 GEMM: in_features ${p.k} is not a multiple of 16`;
    if (p.n % 16 !== 0) return `fp8 GEMM: out_features ${p.n} is not a multiple of 16`;
    return null;
  }
  return `quantized kind ${String(p.kind)} (expected int8 or fp8)`;
}

/** The variants to try for `p`, best first. */
export function quantLtVariants(p: QuantLtProblem): QuantLtVariant[] {
  // fp8 with an fp32 output: cuBLASLt's bias would be bf16, so the bias is added in fp32 after the GEMM
  const fp8Bias = p.bias && p.out !== "float32";
  if (p.kind === "fp8" && p.fp8Scales === "channel")
    return fp8Bias ? ["fp8-channel-bias", "fp8-channel"] : ["fp8-channel"];
  if (p.kind === "fp8") return fp8Bias ? ["fp8-bias", "fp8"] : ["fp8"];
  if (p.relu) return ["int8-int32"];
  return p.bias ? ["int8-vector-bias", "int8-vector", "int8-int32"] : ["int8-vector", "int8-int32"];
}

function setDesc(desc: Ptr, attr: number, value: Int32Array | Uint32Array | Int8Array, what: string): void {
  checkCublas(
    `cublasLtMatmulDescSetAttribute(${what})`,
    CUBLASLT.fn.cublasLtMatmulDescSetAttribute(desc, attr, value, value.byteLength),
  );
}

interface VariantTypes {
  readonly compute: number;
  readonly scale: number;
  readonly ab: number;
  readonly d: number;
  readonly dType: "int32" | QuantOutDType;
  readonly pointerMode: number;
  readonly epilogue: number;
  /** fp8: cublasLtMatmulMatrixScale_t of both operands' scales. */
  readonly scaleMode: number;
  readonly post: QuantLtPost;
}

function variantTypes(p: QuantLtProblem, v: QuantLtVariant): VariantTypes {
  const out = OUT_TYPE[p.out];
  switch (v) {
    case "int8-vector-bias":
    case "int8-vector":
      return {
        compute: CUBLAS_COMPUTE.i32,
        scale: CUDA_R.f32,
        ab: CUDA_R.i8,
        d: out,
        dType: p.out,
        pointerMode: POINTER_MODE.ALPHA_DEVICE_VECTOR_BETA_ZERO,
        epilogue: v === "int8-vector-bias" ? EPILOGUE.BIAS : EPILOGUE.DEFAULT,
        scaleMode: MATRIX_SCALE.SCALAR_32F,
        post: { scale: false, bias: p.bias && v === "int8-vector" },
      };
    case "int8-int32":
      return {
        compute: CUBLAS_COMPUTE.i32,
        scale: CUDA_R.i32,
        ab: CUDA_R.i8,
        d: CUDA_R.i32,
        dType: "int32",
        pointerMode: POINTER_MODE.HOST,
        epilogue: EPILOGUE.DEFAULT,
        scaleMode: MATRIX_SCALE.SCALAR_32F,
        post: { scale: true, bias: p.bias },
      };
    case "fp8-bias":
    case "fp8":
    case "fp8-channel-bias":
    case "fp8-channel":
      return {
        compute: CUBLAS_COMPUTE.f32,
        scale: CUDA_R.f32,
        ab: CUDA_R.f8e4m3,
        d: out,
        dType: p.out,
        pointerMode: POINTER_MODE.HOST,
        epilogue: v.endsWith("-bias") ? EPILOGUE.BIAS : EPILOGUE.DEFAULT,
        scaleMode: v.startsWith("fp8-channel") ? MATRIX_SCALE.OUTER_VEC_32F : MATRIX_SCALE.SCALAR_32F,
        post: { scale: false, bias: p.bias && !v.endsWith("-bias") },
      };
  }
}

/**
 * What a caller that owns the buffers gives the plan builder: the pointers each variant's descriptor holds
 * (set before the heuristic), and a trial run of a candidate plan that answers cuBLASLt's status.
 */
export interface QuantLtBuildHooks {
  readonly pointers?: (variant: QuantLtVariant) => QuantLtScales;
  readonly probe?: (plan: QuantLtPlan) => number;
}

/** One variant's descriptor, layouts and algorithm; throws CublasError when cuBLASLt refuses it. */
function buildVariant(
  handle: LtHandle,
  p: QuantLtProblem,
  v: QuantLtVariant,
  maxWorkspace: number,
  refused: readonly string[],
  hooks: QuantLtBuildHooks,
): QuantLtPlan {
  const f = CUBLASLT.fn;
  const t = variantTypes(p, v);
  const recipe = ltRecipe({ m: p.m, n: p.n, k: p.k, transA: false, transB: true });
  const descOut: OutPtr = [null];
  checkCublas("cublasLtMatmulDescCreate", f.cublasLtMatmulDescCreate(descOut, t.compute, t.scale));
  const desc = descOut[0];
  const made: Ptr[] = [];
  try {
    setDesc(desc, MATMUL_DESC.TRANSA, new Int32Array([recipe.transa]), "TRANSA");
    setDesc(desc, MATMUL_DESC.TRANSB, new Int32Array([recipe.transb]), "TRANSB");
    if (t.pointerMode !== POINTER_MODE.HOST)
      setDesc(desc, MATMUL_DESC.POINTER_MODE, new Int32Array([t.pointerMode]), "POINTER_MODE");
    if (t.epilogue !== EPILOGUE.DEFAULT) {
      setDesc(desc, MATMUL_DESC.EPILOGUE, new Uint32Array([t.epilogue]), "EPILOGUE");
      // int8 biases are float32 (the alpha·acc sum is fp32); fp8 biases have the (fp16/bf16) output's type
      const biasType = p.kind === "int8" ? CUDA_R.f32 : OUT_TYPE[p.out];
      setDesc(desc, MATMUL_DESC.BIAS_DATA_TYPE, new Int32Array([biasType]), "BIAS_DATA_TYPE");
    }
    if (p.kind === "fp8")
      setDesc(desc, MATMUL_DESC.FAST_ACCUM, new Int8Array([p.fastAccum ? 1 : 0]), "FAST_ACCUM");
    if (t.scaleMode !== MATRIX_SCALE.SCALAR_32F) {
      setDesc(desc, MATMUL_DESC.A_SCALE_MODE, new Int32Array([t.scaleMode]), "A_SCALE_MODE");
      setDesc(desc, MATMUL_DESC.B_SCALE_MODE, new Int32Array([t.scaleMode]), "B_SCALE_MODE");
    }
    if (hooks.pointers) bindDesc(desc, p, v, hooks.pointers(v));
    const layout = (type: number, l: { rows: number; cols: number; ld: number }, what: string): Ptr => {
      const out: OutPtr = [null];
      checkCublas(
        `cublasLtMatrixLayoutCreate(${what})`,
        f.cublasLtMatrixLayoutCreate(out, type, l.rows, l.cols, l.ld),
      );
      made.push(out[0]);
      return out[0];
    };
    const layouts = [
      layout(t.ab, recipe.a, "A"),
      layout(t.ab, recipe.b, "B"),
      layout(t.d, recipe.d, "D"),
    ] as const;
    const what = `${v} ${p.m}x${p.n}x${p.k}`;
    const candidates = ltAlgoCandidates(handle, desc, layouts, maxWorkspace, what);
    const failed: string[] = [];
    let status = 0;
    for (const [i, c] of candidates.entries()) {
      const plan: QuantLtPlan = {
        problem: p,
        variant: v,
        desc,
        layouts,
        algo: c.algo,
        workspaceBytes: c.workspaceBytes,
        dType: t.dType,
        post: t.post,
        refused,
      };
      if (!hooks.probe) return plan;
      status = hooks.probe(plan);
      if (status === 0) return plan;
      failed.push(`algorithm ${i + 1} of ${candidates.length}: ${cublasStatusName(status)}`);
    }
    throw new CublasError(
      `cublasLtMatmul(${what}, trial run)`,
      status,
      `the heuristic's algorithms all refused to run (${failed.join(", ")})`,
    );
  } catch (e) {
    f.cublasLtMatmulDescDestroy(desc);
    for (const l of made) f.cublasLtMatrixLayoutDestroy(l);
    throw e;
  }
}

export type QuantLtBuild =
  | { readonly ok: true; readonly plan: QuantLtPlan }
  | { readonly ok: false; readonly reason: string };

/** The first variant of `p` cuBLASLt accepts, or why none can run (the rule that failed, or each refusal). */
export function buildQuantLtPlan(
  handle: LtHandle,
  p: QuantLtProblem,
  maxWorkspace: number,
  hooks: QuantLtBuildHooks = {},
): QuantLtBuild {
  const why = quantLtRefusal(p);
  if (why) return { ok: false, reason: why };
  const refused: string[] = [];
  for (const v of quantLtVariants(p)) {
    try {
      return { ok: true, plan: buildVariant(handle, p, v, maxWorkspace, [...refused], hooks) };
    } catch (e) {
      refused.push(`${v}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  return { ok: false, reason: `cuBLASLt refused every ${p.kind} variant (${refused.join("; ")})` };
}

export function destroyQuantLtPlan(plan: QuantLtPlan): void {
  const f = CUBLASLT.fn;
  f.cublasLtMatmulDescDestroy(plan.desc);
  for (const l of plan.layouts) f.cublasLtMatrixLayoutDestroy(l);
}

function setPointer(desc: Ptr, attr: number, ptr: bigint, what: string): void {
  checkCublas(
    `cublasLtMatmulDescSetAttribute(${what})`,
    CUBLASLT.fn.cublasLtMatmulDescSetAttribute(desc, attr, new BigUint64Array([ptr]), 8),
  );
}

/** The device pointers a plan reads besides its operands. */
export interface QuantLtScales {
  /** int8 vector variants: device float32 [N], alpha[n] = sX · sW[n]. */
  readonly alpha?: bigint;
  /**
   * fp8: device float32 scales of the weight (cuBLASLt's A) and the input (its B): scalars, or for the
   * channel variants vectors of N (one per output channel) and M (one per input row).
   */
  readonly weightScale?: bigint;
  readonly inputScale?: bigint;
  /** Bias variants: device [N] (float32 for int8, the output type for fp8). */
  readonly bias?: bigint;
}

function bindDesc(desc: Ptr, p: QuantLtProblem, v: QuantLtVariant, s: QuantLtScales): void {
  if (v.endsWith("-bias")) {
    if (!s.bias) throw new Error(`${v}: no bias buffer`);
    setPointer(desc, MATMUL_DESC.BIAS_POINTER, s.bias, "BIAS_POINTER");
  }
  if (p.kind === "fp8") {
    if (!s.weightScale || !s.inputScale) throw new Error("fp8 plan: weight and input scales are required");
    setPointer(desc, MATMUL_DESC.A_SCALE_POINTER, s.weightScale, "A_SCALE_POINTER");
    setPointer(desc, MATMUL_DESC.B_SCALE_POINTER, s.inputScale, "B_SCALE_POINTER");
  }
}

/**
 * Points the plan's descriptor at its scale and bias buffers (before running or capturing it). Plans built
 * with `hooks.pointers` are bound already; rebinding to other buffers should keep their alignment.
 */
export function bindQuantLtPlan(plan: QuantLtPlan, s: QuantLtScales): void {
  bindDesc(plan.desc, plan.problem, plan.variant, s);
}

const ONE_I32 = new Int32Array([1]);
const ZERO_I32 = new Int32Array([0]);
const ONE_F32 = new Float32Array([1]);
const ZERO_F32 = new Float32Array([0]);

export interface QuantLtOperands {
  readonly xq: bigint;
  readonly wq: bigint;
  readonly d: bigint;
  readonly alpha?: bigint;
  readonly workspace: bigint | null;
}

/** Enqueues the plan's cublasLtMatmul on `stream` and answers cuBLASLt's status (0: enqueued). */
export function launchQuantLtPlan(
  handle: LtHandle,
  plan: QuantLtPlan,
  o: QuantLtOperands,
  stream: Stream | null | undefined,
): number {
  const vector = plan.variant === "int8-vector" || plan.variant === "int8-vector-bias";
  if (vector && !o.alpha) throw new Error(`${plan.variant}: no alpha vector`);
  const int32 = plan.variant === "int8-int32";
  const alpha = vector ? (o.alpha as bigint) : int32 ? ONE_I32 : ONE_F32;
  const beta = int32 ? ZERO_I32 : ZERO_F32;
  const [la, lb, ld] = plan.layouts;
  // beta is 0, so C is never read. fp8: PyTorch's scaled_gemm (CUDABlas.cpp) passes the first operand as C,
  // noting "cublasLtMatmul requires a C pointer that is not result_ptr or nullptr" — the C = D this code passed
  // is the likeliest cause of the H100's NOT_SUPPORTED; int8 keeps C = D, which ran (as PyTorch's int8_gemm).
  const c = plan.problem.kind === "fp8" ? o.wq : o.d;
  return CUBLASLT.fn.cublasLtMatmul(
    handle,
    plan.desc,
    alpha,
    o.wq,
    la,
    o.xq,
    lb,
    beta,
    c,
    ld,
    o.d,
    ld,
    plan.algo,
    plan.workspaceBytes > 0 ? o.workspace : null,
    plan.workspaceBytes,
    streamHandle(stream),
  );
}

/** D = the plan's product of the quantized input xq [M,K] and weight wq [N,K], on `stream`. */
export function runQuantLtPlan(
  handle: LtHandle,
  plan: QuantLtPlan,
  o: QuantLtOperands,
  stream: Stream | null | undefined,
): void {
  const rc = launchQuantLtPlan(handle, plan, o, stream);
  if (rc !== 0)
    checkCublas(`cublasLtMatmul(${plan.variant} ${plan.problem.m}x${plan.problem.n}x${plan.problem.k})`, rc);
}

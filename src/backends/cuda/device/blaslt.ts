/**
 * cuBLASLt: row-major matmul and nn.Linear with fused bias / ReLU / GELU epilogues, fp16, bf16 or fp32
 * (fp32 accumulation). Descriptors, layouts and the chosen algorithm are cached per problem shape; the bias
 * pointer is set on each call. The GELU epilogue is cuBLASLt's tanh approximation.
 */
import {
  CUBLAS_COMPUTE,
  CUBLASLT,
  CUDA_R,
  EPILOGUE,
  HEURISTIC_RESULT,
  MATMUL_DESC,
  PREF_ATTR,
} from "../../../ffi/cublaslt.js";
import { CublasError, checkCublas } from "../../../ffi/status.js";
import type { OutNum, OutPtr, Ptr } from "../../../ffi/types.js";
import { CudaContext } from "./context.js";
import { type LtLayout, ltRecipe } from "./matmul-layout.js";
import { DeviceBuffer } from "./memory.js";
import { type Stream, streamHandle } from "./stream.js";
import { checkDevice, checkFinite, checkInt, checkOneOf, type DeviceMemory, fail } from "./validate.js";

export type LtDType = "float16" | "bfloat16" | "float32";
export type LtActivation = "none" | "relu" | "gelu";

const DTYPES: readonly LtDType[] = ["float16", "bfloat16", "float32"];
const ACTIVATIONS: readonly LtActivation[] = ["none", "relu", "gelu"];
const ELEMENT_BYTES: Readonly<Record<LtDType, number>> = { float16: 2, bfloat16: 2, float32: 4 };
const DATA_TYPE: Readonly<Record<LtDType, number>> = {
  float16: CUDA_R.f16,
  bfloat16: CUDA_R.bf16,
  float32: CUDA_R.f32,
};
const INT_MAX = 2 ** 31 - 1;

export interface MatmulArgs {
  /** Row-major [M,K], or [K,M] with transA. */
  a: DeviceMemory;
  /** Row-major [K,N], or [N,K] with transB. */
  b: DeviceMemory;
  /** Row-major [M,N]. */
  out: DeviceMemory;
  /** [N], added to every row of the output (same dtype as the output). */
  bias?: DeviceMemory | null;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  dtype: LtDType;
  activation?: LtActivation;
  /** out = alpha·(A·B) (+ bias); default 1. */
  alpha?: number;
  /** fp32 only: allow TF32 tensor cores (faster, ~1e-3 relative error). */
  allowTf32?: boolean;
  stream?: Stream | null;
}

export interface LinearArgs {
  /** Row-major [M, inFeatures]. */
  x: DeviceMemory;
  /** nn.Linear weight, row-major [outFeatures, inFeatures]. */
  weight: DeviceMemory;
  bias?: DeviceMemory | null;
  /** Row-major [M, outFeatures]. */
  out: DeviceMemory;
  /** Rows of x (batch × tokens). */
  m: number;
  inFeatures: number;
  outFeatures: number;
  dtype: LtDType;
  activation?: LtActivation;
  allowTf32?: boolean;
  stream?: Stream | null;
}

/** Argument names for messages: matmul's, or linear's. */
interface OperandNames {
  readonly a: string;
  readonly b: string;
  readonly n: string;
  readonly k: string;
}
const MATMUL_NAMES: OperandNames = { a: "a", b: "b", n: "n", k: "k" };
const LINEAR_NAMES: OperandNames = { a: "x", b: "weight", n: "outFeatures", k: "inFeatures" };

interface Plan {
  readonly desc: Ptr;
  readonly layouts: readonly [Ptr, Ptr, Ptr];
  readonly algo: Uint8Array;
  readonly workspaceBytes: number;
}

export class BlasLt {
  private readonly plans = new Map<string, Plan>();
  private readonly alpha = new Float32Array(1);
  private readonly beta = new Float32Array([0]);
  private readonly biasPtr = new BigUint64Array(1);
  private destroyed = false;

  private constructor(
    private readonly handle: Ptr,
    private readonly workspace: DeviceBuffer,
  ) {}

  /** A cuBLASLt handle with its own device workspace (default 32 MiB). */
  static create(opts: { workspaceBytes?: number } = {}): BlasLt {
    const workspaceBytes = checkInt("workspaceBytes", opts.workspaceBytes ?? 32 << 20, 1);
    CudaContext.current();
    const out: OutPtr = [null];
    checkCublas("cublasLtCreate", CUBLASLT.fn.cublasLtCreate(out));
    return new BlasLt(out[0], DeviceBuffer.alloc(workspaceBytes));
  }

  /** cuBLASLt's version number, e.g. 130100. */
  static version(): number {
    return CUBLASLT.fn.cublasLtGetVersion();
  }

  /** Cached plans (one per distinct problem). */
  get planCount(): number {
    return this.plans.size;
  }

  /** out = activation(alpha · op(A)·op(B) + bias), all row-major. */
  matmul(args: MatmulArgs): void {
    this.run(args, MATMUL_NAMES);
  }

  private run(args: MatmulArgs, names: OperandNames): void {
    if (this.destroyed) fail("the cuBLASLt handle has been destroyed");
    const dtype = checkOneOf("dtype", args.dtype, DTYPES);
    const activation = checkOneOf("activation", args.activation ?? "none", ACTIVATIONS);
    const m = checkInt("m", args.m, 1, INT_MAX);
    const n = checkInt(names.n, args.n, 1, INT_MAX);
    const k = checkInt(names.k, args.k, 1, INT_MAX);
    const transA = args.transA === true;
    const transB = args.transB === true;
    const tf32 = args.allowTf32 === true && dtype === "float32";
    const es = ELEMENT_BYTES[dtype];
    const a = checkDevice(names.a, args.a, m * k * es);
    const b = checkDevice(names.b, args.b, k * n * es);
    const out = checkDevice("out", args.out, m * n * es);
    const hasBias = args.bias !== undefined && args.bias !== null;
    const bias = hasBias ? checkDevice("bias", args.bias, n * es) : 0n;
    this.alpha[0] = checkFinite("alpha", args.alpha ?? 1);
    const epilogue = epilogueFor(activation, hasBias);
    const key = `${dtype}|${m}|${n}|${k}|${+transA}|${+transB}|${epilogue}|${+tf32}`;
    const plan =
      this.plans.get(key) ?? this.makePlan(key, { m, n, k, transA, transB }, dtype, epilogue, tf32);
    const f = CUBLASLT.fn;
    if (hasBias) {
      this.biasPtr[0] = bias;
      checkCublas(
        "cublasLtMatmulDescSetAttribute(BIAS_POINTER)",
        f.cublasLtMatmulDescSetAttribute(plan.desc, MATMUL_DESC.BIAS_POINTER, this.biasPtr, 8),
      );
    }
    const [la, lb, ld] = plan.layouts;
    // cuBLASLt's A is the user's B and its B the user's A (see matmul-layout.ts).
    const rc = f.cublasLtMatmul(
      this.handle,
      plan.desc,
      this.alpha,
      b,
      la,
      a,
      lb,
      this.beta,
      out,
      ld,
      out,
      ld,
      plan.algo,
      this.workspace.ptr,
      plan.workspaceBytes,
      streamHandle(args.stream),
    );
    if (rc !== 0) checkCublas(`cublasLtMatmul(${key})`, rc);
  }

  /** nn.Linear: out[M,outF] = activation(x[M,inF] · weightᵀ + bias). */
  linear(args: LinearArgs): void {
    this.run(
      {
        a: args.x,
        b: args.weight,
        out: args.out,
        bias: args.bias,
        m: args.m,
        n: args.outFeatures,
        k: args.inFeatures,
        transB: true,
        dtype: args.dtype,
        activation: args.activation,
        allowTf32: args.allowTf32,
        stream: args.stream,
      },
      LINEAR_NAMES,
    );
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const f = CUBLASLT.fn;
    for (const p of this.plans.values()) {
      f.cublasLtMatmulDescDestroy(p.desc);
      for (const l of p.layouts) f.cublasLtMatrixLayoutDestroy(l);
    }
    this.plans.clear();
    checkCublas("cublasLtDestroy", f.cublasLtDestroy(this.handle));
    this.workspace.free();
  }

  private makePlan(
    key: string,
    shape: { m: number; n: number; k: number; transA: boolean; transB: boolean },
    dtype: LtDType,
    epilogue: number,
    tf32: boolean,
  ): Plan {
    const f = CUBLASLT.fn;
    const recipe = ltRecipe(shape);
    const type = DATA_TYPE[dtype];
    const descOut: OutPtr = [null];
    const compute = tf32 ? CUBLAS_COMPUTE.f32FastTf32 : CUBLAS_COMPUTE.f32;
    checkCublas("cublasLtMatmulDescCreate", f.cublasLtMatmulDescCreate(descOut, compute, CUDA_R.f32));
    const desc = descOut[0];
    const made: Ptr[] = [];
    const pref: OutPtr = [null];
    try {
      const setDesc = (attr: number, value: Int32Array | Uint32Array, what: string) =>
        checkCublas(
          `cublasLtMatmulDescSetAttribute(${what})`,
          f.cublasLtMatmulDescSetAttribute(desc, attr, value, 4),
        );
      setDesc(MATMUL_DESC.TRANSA, new Int32Array([recipe.transa]), "TRANSA");
      setDesc(MATMUL_DESC.TRANSB, new Int32Array([recipe.transb]), "TRANSB");
      setDesc(MATMUL_DESC.EPILOGUE, new Uint32Array([epilogue]), "EPILOGUE");
      const layout = (l: LtLayout, what: string): Ptr => {
        const out: OutPtr = [null];
        checkCublas(
          `cublasLtMatrixLayoutCreate(${what})`,
          f.cublasLtMatrixLayoutCreate(out, type, l.rows, l.cols, l.ld),
        );
        made.push(out[0]);
        return out[0];
      };
      const la = layout(recipe.a, "A");
      const lb = layout(recipe.b, "B");
      const ld = layout(recipe.d, "D");
      checkCublas("cublasLtMatmulPreferenceCreate", f.cublasLtMatmulPreferenceCreate(pref));
      const ws = new BigUint64Array([BigInt(this.workspace.bytes)]);
      checkCublas(
        "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)",
        f.cublasLtMatmulPreferenceSetAttribute(pref[0], PREF_ATTR.MAX_WORKSPACE_BYTES, ws, 8),
      );
      const requested = 8;
      const results = new Uint8Array(HEURISTIC_RESULT.size * requested);
      const returned: OutNum = [0];
      checkCublas(
        `cublasLtMatmulAlgoGetHeuristic(${key})`,
        f.cublasLtMatmulAlgoGetHeuristic(
          this.handle,
          desc,
          la,
          lb,
          ld,
          ld,
          pref[0],
          requested,
          results,
          returned,
        ),
      );
      const view = new DataView(results.buffer);
      for (let i = 0; i < returned[0]; i++) {
        const base = i * HEURISTIC_RESULT.size;
        if (view.getInt32(base + HEURISTIC_RESULT.state, true) !== 0) continue;
        const workspaceBytes = Number(view.getBigUint64(base + HEURISTIC_RESULT.workspaceSize, true));
        if (workspaceBytes > this.workspace.bytes) continue;
        const algo = results.slice(base, base + HEURISTIC_RESULT.algoBytes);
        const plan: Plan = { desc, layouts: [la, lb, ld], algo, workspaceBytes };
        this.plans.set(key, plan);
        return plan;
      }
      throw new CublasError(
        `cublasLtMatmulAlgoGetHeuristic(${key})`,
        15,
        `no usable algorithm among ${returned[0]} returned`,
      );
    } catch (e) {
      f.cublasLtMatmulDescDestroy(desc);
      for (const l of made) f.cublasLtMatrixLayoutDestroy(l);
      throw e;
    } finally {
      if (pref[0] !== null) f.cublasLtMatmulPreferenceDestroy(pref[0]);
    }
  }
}

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

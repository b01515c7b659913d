/**
 * cuBLASLt: row-major matmul and nn.Linear with fused bias / ReLU / GELU epilogues, fp16, bf16 or fp32
 * (fp32 accumulation). Descriptors, layouts and the chosen algorithm are cached per problem shape; the bias
 * pointer is set on each call. The GELU epilogue is cuBLASLt's tanh approximation.
 */
import { CUBLASLT } from "../../../ffi/cublaslt.js";
import type { Ptr } from "../../../ffi/types.js";
import {
  buildLtPlan,
  createLtHandle,
  destroyLtHandle,
  destroyLtPlan,
  epilogueFor,
  type LtActivation,
  type LtDType,
  type LtPlan,
  runLtPlan,
  setLtBias,
} from "./blaslt-plan.js";
import { CudaContext } from "./context.js";
import { DeviceBuffer } from "./memory.js";
import type { Stream } from "./stream.js";
import { checkDevice, checkFinite, checkInt, checkOneOf, type DeviceMemory, fail } from "./validate.js";

export { epilogueFor, type LtActivation, type LtDType } from "./blaslt-plan.js";

const DTYPES: readonly LtDType[] = ["float16", "bfloat16", "float32"];
const ACTIVATIONS: readonly LtActivation[] = ["none", "relu", "gelu"];
const ELEMENT_BYTES: Readonly<Record<LtDType, number>> = { float16: 2, bfloat16: 2, float32: 4 };
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

export class BlasLt {
  private readonly plans = new Map<string, LtPlan>();
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
    return new BlasLt(createLtHandle(), DeviceBuffer.alloc(workspaceBytes));
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
      this.plans.get(key) ?? this.makePlan(key, { m, n, k, transA, transB, dtype, epilogue, tf32 });
    if (hasBias) setLtBias(plan, bias, this.biasPtr);
    const operands = { a, b, d: out, alpha: this.alpha, beta: this.beta, workspace: this.workspace.ptr };
    runLtPlan(this.handle, plan, operands, args.stream, `cublasLtMatmul(${key})`);
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
    for (const p of this.plans.values()) destroyLtPlan(p);
    this.plans.clear();
    destroyLtHandle(this.handle);
    this.workspace.free();
  }

  private makePlan(key: string, problem: Parameters<typeof buildLtPlan>[1]): LtPlan {
    const plan = buildLtPlan(this.handle, problem, this.workspace.bytes, key);
    this.plans.set(key, plan);
    return plan;
  }
}

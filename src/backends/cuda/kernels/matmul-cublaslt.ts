/**
 * Batched row-major matmul through cuBLASLt with the column-major recipe of device/matmul-layout.ts:
 * Y[b] = op(A[b])·op(B[b]) (+ row bias, relu / tanh-gelu), fp16 with fp32 accumulation or fp32 (TF32 only
 * when asked). Operands may be stored transposed (their last two axes swapped in memory), and a batch
 * operand may be broadcast (batch stride 0). When B has no batch and A is row-major, A's batch axes fold into M.
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
import { checkCublas } from "../../../ffi/status.js";
import type { OutNum, OutPtr, Ptr } from "../../../ffi/types.js";
import { numel } from "../../../ir/tensor.js";
import type { Stream } from "../device/stream.js";
import { streamHandle } from "../device/stream.js";
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
  private readonly beta = new Float32Array([0]);
  private ptrs: { a: bigint; b: bigint; d: bigint; ws: bigint } | undefined;
  private destroyed = false;

  constructor(
    private readonly handle: Ptr,
    readonly geometry: MatmulGeometry,
    private readonly desc: Ptr,
    private readonly layouts: [Ptr, Ptr, Ptr],
    private readonly algo: Uint8Array,
    readonly workspaceBytes: number,
    readonly hasBias: boolean,
  ) {}

  bind(a: bigint, b: bigint, d: bigint, bias: bigint | undefined, workspace: bigint): void {
    if (this.hasBias) {
      const p = new BigUint64Array([bias ?? 0n]);
      checkCublas(
        "cublasLtMatmulDescSetAttribute(BIAS_POINTER)",
        CUBLASLT.fn.cublasLtMatmulDescSetAttribute(this.desc, MATMUL_DESC.BIAS_POINTER, p, 8),
      );
    }
    this.ptrs = { a, b, d, ws: workspace };
  }

  execute(stream: Stream): void {
    const p = this.ptrs;
    if (!p) throw new Error("matmul executed before bind()");
    const [la, lb, ld] = this.layouts;
    // cuBLASLt's A is the user's B, its B the user's A (Yᵀ = Bᵀ·Aᵀ in column-major terms).
    const rc = CUBLASLT.fn.cublasLtMatmul(
      this.handle,
      this.desc,
      this.alpha,
      p.b,
      la,
      p.a,
      lb,
      this.beta,
      p.d,
      ld,
      p.d,
      ld,
      this.algo,
      this.workspaceBytes > 0 ? p.ws : null,
      this.workspaceBytes,
      streamHandle(stream),
    );
    if (rc !== 0) checkCublas("cublasLtMatmul", rc);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const f = CUBLASLT.fn;
    f.cublasLtMatmulDescDestroy(this.desc);
    for (const l of this.layouts) f.cublasLtMatrixLayoutDestroy(l);
  }
}

/** Plans a matmul; undefined when cuBLASLt offers no algorithm. */
export function buildLtMatmul(
  handle: Ptr,
  g: MatmulGeometry,
  epilogue: { bias: boolean; activation: "none" | "relu" | "gelu" },
  allowTf32: boolean,
  maxWorkspace: number,
): LtMatmul | undefined {
  const f = CUBLASLT.fn;
  const type = g.dtype === "float16" ? CUDA_R.f16 : CUDA_R.f32;
  const compute = g.dtype === "float32" && allowTf32 ? CUBLAS_COMPUTE.f32FastTf32 : CUBLAS_COMPUTE.f32;
  const descOut: OutPtr = [null];
  if (f.cublasLtMatmulDescCreate(descOut, compute, CUDA_R.f32) !== 0) return undefined;
  const desc = descOut[0];
  const made: Ptr[] = [];
  const pref: OutPtr = [null];
  const fail = () => {
    f.cublasLtMatmulDescDestroy(desc);
    for (const l of made) f.cublasLtMatrixLayoutDestroy(l);
    return undefined;
  };
  try {
    const set = (attr: number, v: Int32Array | Uint32Array) =>
      f.cublasLtMatmulDescSetAttribute(desc, attr, v, 4) === 0;
    let ep: number = EPILOGUE.DEFAULT;
    if (epilogue.activation === "relu") ep = epilogue.bias ? EPILOGUE.RELU_BIAS : EPILOGUE.RELU;
    else if (epilogue.activation === "gelu") ep = epilogue.bias ? EPILOGUE.GELU_BIAS : EPILOGUE.GELU;
    else if (epilogue.bias) ep = EPILOGUE.BIAS;
    if (
      !set(MATMUL_DESC.TRANSA, new Int32Array([g.bT ? 1 : 0])) ||
      !set(MATMUL_DESC.TRANSB, new Int32Array([g.aT ? 1 : 0])) ||
      !set(MATMUL_DESC.EPILOGUE, new Uint32Array([ep]))
    )
      return fail();
    const layout = (rows: number, cols: number, ld: number, stride: number): Ptr | undefined => {
      const out: OutPtr = [null];
      if (f.cublasLtMatrixLayoutCreate(out, type, rows, cols, ld) !== 0) return undefined;
      made.push(out[0]);
      if (g.batch > 1) {
        if (
          f.cublasLtMatrixLayoutSetAttribute(
            out[0],
            LAYOUT_ATTR.BATCH_COUNT,
            new Int32Array([g.batch]),
            4,
          ) !== 0
        )
          return undefined;
        if (
          f.cublasLtMatrixLayoutSetAttribute(
            out[0],
            LAYOUT_ATTR.STRIDED_BATCH_OFFSET,
            new BigInt64Array([BigInt(stride)]),
            8,
          ) !== 0
        )
          return undefined;
      }
      return out[0];
    };
    // Column-major views: user B (K×N row-major = N×K col-major) is cuBLASLt's A, user A is its B, D = Yᵀ (N×M).
    const la = g.bT ? layout(g.k, g.n, g.k, g.strideB) : layout(g.n, g.k, g.n, g.strideB);
    const lb = g.aT ? layout(g.m, g.k, g.m, g.strideA) : layout(g.k, g.m, g.k, g.strideA);
    const ld = layout(g.n, g.m, g.n, g.strideD);
    if (la === undefined || lb === undefined || ld === undefined) return fail();
    if (f.cublasLtMatmulPreferenceCreate(pref) !== 0) return fail();
    f.cublasLtMatmulPreferenceSetAttribute(
      pref[0],
      PREF_ATTR.MAX_WORKSPACE_BYTES,
      new BigUint64Array([BigInt(maxWorkspace)]),
      8,
    );
    const requested = 8;
    const results = new Uint8Array(HEURISTIC_RESULT.size * requested);
    const returned: OutNum = [0];
    if (
      f.cublasLtMatmulAlgoGetHeuristic(
        handle,
        desc,
        la,
        lb,
        ld,
        ld,
        pref[0],
        requested,
        results,
        returned,
      ) !== 0
    )
      return fail();
    const view = new DataView(results.buffer);
    for (let i = 0; i < returned[0]; i++) {
      const base = i * HEURISTIC_RESULT.size;
      if (view.getInt32(base + HEURISTIC_RESULT.state, true) !== 0) continue;
      const ws = Number(view.getBigUint64(base + HEURISTIC_RESULT.workspaceSize, true));
      if (ws > maxWorkspace) continue;
      return new LtMatmul(
        handle,
        g,
        desc,
        [la, lb, ld],
        results.slice(base, base + HEURISTIC_RESULT.algoBytes),
        ws,
        epilogue.bias,
      );
    }
    return fail();
  } catch {
    return fail();
  } finally {
    if (pref[0] !== null) f.cublasLtMatmulPreferenceDestroy(pref[0]);
  }
}

export function createLtHandle(): Ptr {
  const out: OutPtr = [null];
  checkCublas("cublasLtCreate", CUBLASLT.fn.cublasLtCreate(out));
  return out[0];
}

export function destroyLtHandle(h: Ptr): void {
  CUBLASLT.fn.cublasLtDestroy(h);
}

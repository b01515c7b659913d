/**
 * One cuSPARSELt plan for a linear layer with a 2:4-sparse weight: y[M,N] = act(x[M,K] · Wᵀ + bias), W the
 * nn.Linear weight [N,K] row-major, 2:4 sparse along K. cuSPARSELt computes D = act(op(A)·op(B) + bias) with
 * the structured operand A; PyTorch's own recipe (aten _cslt_sparse_mm with transpose_result) makes that y:
 * A = W (row-major [N,K]), B = xᵀ (x row-major [M,K] read with op T), D = yᵀ column-major [N,M] = y row-major.
 *
 * The weight is compressed once into device memory the plan owns (with its own copy of the bias, whose
 * address the plan is built with), and the algorithm is chosen by cusparseLtMatmulSearch, which times them.
 * Every shape rule, the activation and every operand's 16-byte alignment are checked before a pointer reaches
 * C; every failing call throws CusparseLtError.
 */
import {
  CUSPARSE_COMPUTE,
  CUSPARSE_OP,
  CUSPARSE_ORDER,
  CUSPARSELT,
  OPAQUE_ALIGNMENT,
  OPAQUE_BYTES,
  OPERAND_ALIGNMENT,
  SPARSELT_ALG_ATTR,
  SPARSELT_ALG_DEFAULT,
  SPARSELT_MATMUL_DESC,
  SPARSITY_50_PERCENT,
} from "../../../ffi/cusparselt.js";
import { koffi } from "../../../ffi/koffi.js";
import { CusparseLtError, checkCusparseLt } from "../../../ffi/status.js";
import type { OutNum } from "../../../ffi/types.js";
import { CudaContext } from "./context.js";
import { DeviceBuffer } from "./memory.js";
import { type Stream, streamHandle } from "./stream.js";

export type SparseDType = "float16" | "bfloat16";
export type SparseActivation = "none" | "relu" | "gelu";

/** `cudaDataType_t` of the operands. */
const DATA_TYPE: Readonly<Record<SparseDType, number>> = { float16: 2, bfloat16: 14 };
/** What every row count, column count and leading dimension must be a multiple of (cuSPARSELt's 2:4 rules). */
export const SPARSE_DIM_MULTIPLE: Readonly<Record<SparseDType, number>> = { float16: 16, bfloat16: 16 };
/** Byte alignment promised for every operand pointer (device buffers are 256-byte aligned); cuSPARSELt needs 16. */
const ALIGNMENT = OPERAND_ALIGNMENT;
/** cusparseComputeType's values changed in 0.5.2; 0.6 is the oldest release this was written against. */
export const MIN_CUSPARSELT_VERSION = 600;

export interface SparseLinearProblem {
  readonly dtype: SparseDType;
  /** Rows of x (tokens × batch). */
  readonly m: number;
  /** Output features (rows of W). */
  readonly n: number;
  /** Input features, the reduction axis (along which W is 2:4 sparse). */
  readonly k: number;
  readonly bias: boolean;
  readonly activation: SparseActivation;
  /**
   * y = act(x·Wᵀ + bias + r), r [M,N] row-major like y: cuSPARSELt's C operand with β = 1 (a residual the
   * convolution's epilogue adds before its activation). Absent for linear layers.
   */
  readonly residual?: boolean;
}

/** Why cuSPARSELt cannot take this shape, or undefined when it can. */
export function sparseShapeRefusal(p: SparseLinearProblem): string | undefined {
  const q = SPARSE_DIM_MULTIPLE[p.dtype];
  const bad = (["m", "n", "k"] as const).filter(
    (d) => !Number.isInteger(p[d]) || p[d] <= 0 || p[d] % q !== 0,
  );
  if (bad.length === 0) return undefined;
  const dims = bad.map((d) => `${d.toUpperCase()}=${p[d]}`).join(", ");
  return `shape not aligned: ${dims} not a multiple of ${q} (M=${p.m} N=${p.n} K=${p.k}; ${p.dtype} needs every dimension a multiple of ${q})`;
}

/**
 * Why cuSPARSELt cannot fuse this activation, or undefined. cuSPARSELt 0.8.1 has a GELU epilogue only for int8
 * and fp8 inputs (the library refuses it otherwise: "GeLU is only supported in the following types: A/B=INT8,
 * C/D=INT8, Compute=INT32; A/B=E4M3 ..."); ReLU and bias are fused for fp16/bf16.
 */
export function sparseActivationRefusal(p: SparseLinearProblem): string | undefined {
  if (p.activation !== "gelu") return undefined;
  return `GELU epilogue: cuSPARSELt fuses GELU only for int8/fp8 inputs, not ${p.dtype}`;
}

/** The first operand address that is not 16-byte aligned, named, or undefined (checked before any call). */
export function misalignedOperand(operands: Readonly<Record<string, bigint>>): string | undefined {
  for (const [name, p] of Object.entries(operands))
    if (p % BigInt(ALIGNMENT) !== 0n)
      return `cuSPARSELt needs ${ALIGNMENT}-byte aligned operands: ${name} at 0x${p.toString(16)}`;
  return undefined;
}

function checkAligned(operands: Readonly<Record<string, bigint>>): void {
  const why = misalignedOperand(operands);
  if (why) throw new Error(why);
}

// ------------------------------------------------------------------------------------------ handle

/** A cuSPARSELt handle in native memory (the library keeps its address). */
export class SparseLtHandle {
  private freed = false;

  private constructor(readonly ptr: bigint) {}

  /** Initializes cuSPARSELt on the current device; throws LibraryMissingError when it is not installed. */
  static create(): SparseLtHandle {
    const ptr = allocOpaque();
    try {
      checkCusparseLt("cusparseLtInit", CUSPARSELT.fn.cusparseLtInit(ptr));
    } catch (e) {
      koffi().free(ptr);
      throw e;
    }
    return new SparseLtHandle(ptr);
  }

  /** cuSPARSELt's version number, major·1000 + minor·100 + patch (0.8.1 → 801). */
  version(): number {
    const out: OutNum = [0];
    checkCusparseLt("cusparseLtGetVersion", CUSPARSELT.fn.cusparseLtGetVersion(this.ptr, out));
    return Number(out[0]);
  }

  destroy(): void {
    if (this.freed) return;
    this.freed = true;
    CUSPARSELT.fn.cusparseLtDestroy(this.ptr);
    koffi().free(this.ptr);
  }
}

function allocOpaque(): bigint {
  const k = koffi();
  const p = k.alloc("uint8_t", OPAQUE_BYTES) as unknown as bigint;
  if (p % BigInt(OPAQUE_ALIGNMENT) !== 0n) {
    k.free(p as never);
    throw new Error(
      `cuSPARSELt's opaque structs are alignas(${OPAQUE_ALIGNMENT}); calloc gave 0x${p.toString(16)}`,
    );
  }
  new Uint8Array(k.view(p as never, OPAQUE_BYTES)).fill(0);
  return p;
}

// ------------------------------------------------------------------------------------------ plan

export interface SparseLtPlan {
  readonly problem: SparseLinearProblem;
  /** The compressed weight (values and metadata), owned by the plan. */
  readonly compressed: DeviceBuffer;
  /** The plan's copy of the bias, when it has one. */
  readonly biasBuffer: DeviceBuffer | undefined;
  /** Bytes of workspace cusparseLtMatmul needs (after the search). */
  workspaceBytes: number;
  /** The algorithm configuration the search kept, and how many there were. */
  algorithm: { id: number; count: number; splitK: number };
  /** Opaque structs in native memory: A, B, C/D descriptors, the matmul descriptor, the selection, the plan. */
  readonly structs: {
    readonly a: bigint;
    readonly b: bigint;
    readonly d: bigint;
    readonly matmul: bigint;
    readonly alg: bigint;
    readonly plan: bigint;
  };
  destroyed: boolean;
}

export interface SparseLtWeights {
  /** The dense (2:4-pruned) weight [N,K] row-major in the problem's dtype, on the device (upload complete). */
  readonly weight: bigint;
  /** Bias values [N] in the problem's dtype, as bytes (the plan uploads its own copy). */
  readonly bias?: Uint8Array;
}

const one = new Float32Array([1]);
const zero = new Float32Array([0]);

function check(call: string, rc: number): void {
  checkCusparseLt(call, rc);
}

function describeOperands(handle: SparseLtHandle, p: SparseLinearProblem, s: SparseLtPlan["structs"]): void {
  const f = CUSPARSELT.fn;
  const type = DATA_TYPE[p.dtype];
  check(
    "cusparseLtStructuredDescriptorInit(W)",
    f.cusparseLtStructuredDescriptorInit(
      handle.ptr,
      s.a,
      p.n,
      p.k,
      p.k,
      ALIGNMENT,
      type,
      CUSPARSE_ORDER.ROW,
      SPARSITY_50_PERCENT,
    ),
  );
  check(
    "cusparseLtDenseDescriptorInit(x)",
    f.cusparseLtDenseDescriptorInit(handle.ptr, s.b, p.m, p.k, p.k, ALIGNMENT, type, CUSPARSE_ORDER.ROW),
  );
  check(
    "cusparseLtDenseDescriptorInit(y)",
    f.cusparseLtDenseDescriptorInit(handle.ptr, s.d, p.n, p.m, p.n, ALIGNMENT, type, CUSPARSE_ORDER.COL),
  );
  check(
    "cusparseLtMatmulDescriptorInit",
    f.cusparseLtMatmulDescriptorInit(
      handle.ptr,
      s.matmul,
      CUSPARSE_OP.N,
      CUSPARSE_OP.T,
      s.a,
      s.b,
      s.d,
      s.d,
      CUSPARSE_COMPUTE.f32,
    ),
  );
}

function setMatmulAttr(
  handle: SparseLtHandle,
  s: SparseLtPlan["structs"],
  attr: number,
  v: Int32Array | BigUint64Array,
  what: string,
): void {
  check(
    `cusparseLtMatmulDescSetAttribute(${what})`,
    CUSPARSELT.fn.cusparseLtMatmulDescSetAttribute(handle.ptr, s.matmul, attr, v, v.byteLength),
  );
}

function algAttr(handle: SparseLtHandle, plan: SparseLtPlan, attr: number, what: string): number {
  const v = new Int32Array(1);
  check(
    `cusparseLtMatmulAlgGetAttribute(${what})`,
    CUSPARSELT.fn.cusparseLtMatmulAlgGetAttribute(handle.ptr, plan.structs.alg, attr, v, 4),
  );
  return v[0];
}

function workspaceOf(handle: SparseLtHandle, plan: SparseLtPlan): number {
  const out: OutNum = [0];
  check(
    "cusparseLtMatmulGetWorkspace",
    CUSPARSELT.fn.cusparseLtMatmulGetWorkspace(handle.ptr, plan.structs.plan, out),
  );
  return Number(out[0]);
}

/** cuSPARSELt's own 2:4 check of the dense weight on the device (a second opinion on the host's). */
function pruneCheck(
  handle: SparseLtHandle,
  s: SparseLtPlan["structs"],
  weight: bigint,
  stream: Stream,
): void {
  const valid = DeviceBuffer.alloc(4);
  try {
    // Zeroed, as in NVIDIA's sample (a fresh cudaMalloc): the check kernel only writes the flag when it finds a
    // violation. Pre-filled with 0xff, every weight read as "not 2:4" on the H100 (session 5).
    valid.fill(0, { stream });
    check(
      "cusparseLtSpMMAPruneCheck",
      CUSPARSELT.fn.cusparseLtSpMMAPruneCheck(handle.ptr, s.matmul, weight, valid.ptr, streamHandle(stream)),
    );
    stream.synchronize();
    const v = valid.download(new Int32Array(1))[0];
    if (v !== 0)
      throw new CusparseLtError("cusparseLtSpMMAPruneCheck", 3, "the weight is not 2:4 sparse along K");
  } finally {
    valid.free();
  }
}

/** Compresses the weight into a buffer the plan owns. */
function compress(
  handle: SparseLtHandle,
  plan: SparseLtPlan["structs"],
  weight: bigint,
  stream: Stream,
): DeviceBuffer {
  const size: OutNum = [0];
  const scratch: OutNum = [0];
  check(
    "cusparseLtSpMMACompressedSize",
    CUSPARSELT.fn.cusparseLtSpMMACompressedSize(handle.ptr, plan.plan, size, scratch),
  );
  const compressed = DeviceBuffer.alloc(Math.max(256, Number(size[0])));
  const buffer = DeviceBuffer.alloc(Math.max(256, Number(scratch[0])));
  try {
    check(
      "cusparseLtSpMMACompress",
      CUSPARSELT.fn.cusparseLtSpMMACompress(
        handle.ptr,
        plan.plan,
        weight,
        compressed.ptr,
        buffer.ptr,
        streamHandle(stream),
      ),
    );
    stream.synchronize();
  } catch (e) {
    compressed.free();
    throw e;
  } finally {
    buffer.free();
  }
  return compressed;
}

/**
 * Describes, checks and compresses: the plan runs with the default algorithm until `searchSparseLtPlan`. Throws
 * CusparseLtError (status and reason) when cuSPARSELt refuses; call `sparseShapeRefusal` first.
 */
export function buildSparseLtPlan(
  handle: SparseLtHandle,
  p: SparseLinearProblem,
  w: SparseLtWeights,
  stream: Stream,
): SparseLtPlan {
  const refusal = sparseShapeRefusal(p);
  if (refusal) throw new CusparseLtError("cusparseLtStructuredDescriptorInit", 3, refusal);
  const act = sparseActivationRefusal(p);
  if (act) throw new CusparseLtError("cusparseLtMatmulDescSetAttribute", 10, act);
  if (p.bias !== (w.bias !== undefined))
    throw new Error("buildSparseLtPlan: problem.bias and the bias values disagree");
  checkAligned({ weight: w.weight });
  const made: bigint[] = [];
  const opaque = () => {
    const ptr = allocOpaque();
    made.push(ptr);
    return ptr;
  };
  const structs = { a: opaque(), b: opaque(), d: opaque(), matmul: opaque(), alg: opaque(), plan: opaque() };
  const f = CUSPARSELT.fn;
  let stage = 0;
  let biasBuffer: DeviceBuffer | undefined;
  let compressed: DeviceBuffer | undefined;
  try {
    describeOperands(handle, p, structs);
    stage = 1;
    if (p.activation !== "none") {
      const attr =
        p.activation === "relu" ? SPARSELT_MATMUL_DESC.ACTIVATION_RELU : SPARSELT_MATMUL_DESC.ACTIVATION_GELU;
      setMatmulAttr(handle, structs, attr, new Int32Array([1]), `ACTIVATION_${p.activation.toUpperCase()}`);
    }
    if (w.bias) {
      biasBuffer = DeviceBuffer.from(w.bias);
      // A pageable upload may return before its DMA lands; the plan's stream must not read it early.
      CudaContext.current().synchronize();
      setMatmulAttr(
        handle,
        structs,
        SPARSELT_MATMUL_DESC.BIAS_POINTER,
        new BigUint64Array([biasBuffer.ptr]),
        "BIAS_POINTER",
      );
    }
    // No SPARSE_MAT_POINTER: the dense weight is freed after compression (PyTorch's _cslt_sparse_mm sets none).
    check(
      "cusparseLtMatmulAlgSelectionInit",
      f.cusparseLtMatmulAlgSelectionInit(handle.ptr, structs.alg, structs.matmul, SPARSELT_ALG_DEFAULT),
    );
    stage = 2;
    check(
      "cusparseLtMatmulPlanInit",
      f.cusparseLtMatmulPlanInit(handle.ptr, structs.plan, structs.matmul, structs.alg),
    );
    stage = 3;
    pruneCheck(handle, structs, w.weight, stream);
    compressed = compress(handle, structs, w.weight, stream);
    const plan: SparseLtPlan = {
      problem: p,
      compressed,
      biasBuffer,
      workspaceBytes: 0,
      algorithm: { id: 0, count: 0, splitK: 1 },
      structs,
      destroyed: false,
    };
    plan.workspaceBytes = workspaceOf(handle, plan);
    plan.algorithm = readAlgorithm(handle, plan);
    return plan;
  } catch (e) {
    releaseStructs(structs, stage);
    for (const ptr of made) koffi().free(ptr);
    biasBuffer?.free();
    compressed?.free();
    throw e;
  }
}

function readAlgorithm(handle: SparseLtHandle, plan: SparseLtPlan): SparseLtPlan["algorithm"] {
  return {
    id: algAttr(handle, plan, SPARSELT_ALG_ATTR.CONFIG_ID, "CONFIG_ID"),
    count: algAttr(handle, plan, SPARSELT_ALG_ATTR.CONFIG_MAX_ID, "CONFIG_MAX_ID"),
    splitK: algAttr(handle, plan, SPARSELT_ALG_ATTR.SPLIT_K, "SPLIT_K"),
  };
}

function releaseStructs(s: SparseLtPlan["structs"], stage: number): void {
  const f = CUSPARSELT.fn;
  if (stage >= 3) f.cusparseLtMatmulPlanDestroy(s.plan);
  if (stage >= 2 && CUSPARSELT.has("cusparseLtMatmulAlgSelectionDestroy"))
    f.cusparseLtMatmulAlgSelectionDestroy(s.alg);
  if (stage >= 1) for (const m of [s.a, s.b, s.d]) f.cusparseLtMatDescriptorDestroy(m);
}

export interface SparseLtOperands {
  /** x [M,K] row-major. */
  readonly x: bigint;
  /** y [M,N] row-major. */
  readonly y: bigint;
  /** r [M,N] row-major, added before the activation: required exactly when the problem has a residual. */
  readonly residual?: bigint;
  /** At least plan.workspaceBytes of device memory (or 0n when it needs none). */
  readonly workspace: bigint;
}

/**
 * cusparseLtMatmulSearch: times cuSPARSELt's algorithm configurations on these operands (their contents are
 * overwritten in y) and keeps the fastest in the plan; the workspace it needs may change.
 */
export function searchSparseLtPlan(
  handle: SparseLtHandle,
  plan: SparseLtPlan,
  o: SparseLtOperands,
  stream: Stream,
): void {
  checkAligned(operandAddresses(plan, o));
  const streams = streamCell(stream);
  const [beta, c] = residualTerm(plan, o);
  check(
    "cusparseLtMatmulSearch",
    CUSPARSELT.fn.cusparseLtMatmulSearch(
      handle.ptr,
      plan.structs.plan,
      one,
      plan.compressed.ptr,
      o.x,
      beta,
      c,
      o.y,
      o.workspace === 0n ? null : o.workspace,
      streams,
      1,
    ),
  );
  stream.synchronize();
  plan.workspaceBytes = workspaceOf(handle, plan);
  plan.algorithm = readAlgorithm(handle, plan);
}

/**
 * The operands to check before a call: a problem with a residual must be given one, and one without must not
 * (an unread pointer would hide a binding mistake).
 */
export function operandAddresses(plan: SparseLtPlan, o: SparseLtOperands): Record<string, bigint> {
  const wants = plan.problem.residual === true;
  if (wants !== (o.residual !== undefined))
    throw new Error(
      wants
        ? "cuSPARSELt plan with a residual run without one"
        : "cuSPARSELt plan given a residual it does not add",
    );
  return {
    x: o.x,
    y: o.y,
    workspace: o.workspace,
    ...(o.residual !== undefined ? { residual: o.residual } : {}),
  };
}

/** β and C: 1 and the residual when the problem adds one, else 0 and y (read by no kernel when β = 0). */
function residualTerm(plan: SparseLtPlan, o: SparseLtOperands): [Float32Array, bigint] {
  return plan.problem.residual && o.residual !== undefined ? [one, o.residual] : [zero, o.y];
}

/** A reusable one-stream array per plan runner (cuSPARSELt reads it during the call). */
export function streamCell(stream: Stream): BigUint64Array {
  return new BigUint64Array([streamHandle(stream) ?? 0n]);
}

/**
 * Queues y = act(x·Wᵀ + bias) on the stream in `streams` (streamCell). `aligned`: the caller has already checked
 * these operands with misalignedOperand (a bound runner checks once, at bind), so they are not checked again.
 */
export function runSparseLtPlan(
  handle: SparseLtHandle,
  plan: SparseLtPlan,
  o: SparseLtOperands,
  streams: BigUint64Array,
  aligned = false,
): void {
  if (plan.destroyed) throw new Error("cuSPARSELt plan used after destroy()");
  if (!aligned) checkAligned(operandAddresses(plan, o));
  const [beta, c] = residualTerm(plan, o);
  const rc = CUSPARSELT.fn.cusparseLtMatmul(
    handle.ptr,
    plan.structs.plan,
    one,
    plan.compressed.ptr,
    o.x,
    beta,
    c,
    o.y,
    o.workspace === 0n ? null : o.workspace,
    streams,
    1,
  );
  if (rc !== 0) check("cusparseLtMatmul", rc);
}

export function destroySparseLtPlan(plan: SparseLtPlan): void {
  if (plan.destroyed) return;
  plan.destroyed = true;
  releaseStructs(plan.structs, 3);
  for (const ptr of Object.values(plan.structs)) koffi().free(ptr);
  plan.compressed.free();
  plan.biasBuffer?.free();
}

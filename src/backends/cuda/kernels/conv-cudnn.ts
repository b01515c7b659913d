/**
 * A convolution with its fused epilogue as one cuDNN graph: conv → (+bias) → pointwise ops (per-channel
 * constants, same-shape tensors such as a residual, activations) → y, NHWC or NCHW, fp16 or fp32 I/O with
 * fp32 compute. Engine configs come from heuristics mode A, then FALLBACK; with fp32 and TF32 off, engines
 * that use tensor cores or down-convert inputs are skipped (as PyTorch does). The device runtime's
 * BackendDescriptor wraps each descriptor; the plan and variant pack are built once (pointers are fixed).
 * Up to MAX_CANDIDATES finalizable plans are kept (the heuristic's first, then later ones without
 * reduced-precision, FFT, Winograd or nondeterministic notes and with a bounded workspace); tune() times
 * each on the bound pointers (a captured graph of several executes, so launch overhead stays out) and
 * keeps the fastest.
 */
import {
  ATTR,
  ATTR_TYPE,
  CONV_MODE,
  CUDNN,
  CUDNN_DATA,
  DESC,
  HEUR_MODE,
  POINTWISE,
} from "../../../ffi/cudnn.js";
import { checkCudnn } from "../../../ffi/status.js";
import type { Cudnn } from "../device/conv.js";
import { BackendDescriptor } from "../device/cudnn-backend.js";
import { CudaEvent } from "../device/event.js";
import { captureGraph } from "../device/graph.js";
import type { Stream } from "../device/stream.js";
import type { ConvActivationKind, ConvEpilogueOp } from "../fuse/steps.js";

/** cuDNN attribute and enum values this file needs beyond src/ffi/cudnn.ts. */
const ENGINE_NUMERICAL_NOTE = 1303;
const TYPE_NUMERICAL_NOTE = 11;
const NOTE_TENSOR_CORE = 0;
const NOTE_DOWN_CONVERT_INPUTS = 1;
/** REDUCED_PRECISION_REDUCTION, FFT, NONDETERMINISTIC, WINOGRAD (and its tile sizes). */
const NOTES_EXTRA_CANDIDATE_SKIPS: readonly number[] = [2, 3, 4, 5, 6, 7, 8];
/** Plans kept for build-time timing (the heuristic's first plus up to this many minus one more). */
const MAX_CANDIDATES = 6;
/** Extra candidates needing more workspace than this are skipped (the first is always kept). */
const CANDIDATE_WORKSPACE_CAP = 64 << 20;
/** A later candidate replaces the first only when it is faster by more than this fraction. */
const TUNE_MARGIN = 0.03;
const NOTE_TYPE_COUNT = 16;
const PW_TANH = 101;

const ACT_MODE: Readonly<Record<ConvActivationKind, number>> = {
  relu: POINTWISE.RELU_FWD,
  silu: POINTWISE.SWISH_FWD,
  sigmoid: POINTWISE.SIGMOID_FWD,
  tanh: PW_TANH,
  gelu_erf: POINTWISE.GELU_FWD,
  gelu_tanh: POINTWISE.GELU_APPROX_TANH_FWD,
};

export interface CudnnConvSpec {
  readonly layout: "NHWC" | "NCHW";
  readonly dtype: "float16" | "float32";
  readonly x: readonly [number, number, number, number];
  /** [K, C/groups, R, S]. */
  readonly w: readonly [number, number, number, number];
  readonly y: readonly [number, number, number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly bias: boolean;
  readonly epilogue: readonly ConvEpilogueOp[];
  readonly allowTf32: boolean;
}

function strides(layout: "NHWC" | "NCHW", [n, c, h, w]: readonly number[]): number[] {
  void n;
  return layout === "NHWC" ? [h * w * c, 1, w * c, c] : [c * h * w, h * w, w, 1];
}

/** Unique ids of the real (non-virtual) tensors, in variant-pack order. */
export interface ConvOperands {
  x: bigint;
  w: bigint;
  bias?: bigint;
  y: bigint;
  /** One pointer per epilogue op that reads memory (tensor and channel ops), in epilogue order. */
  extra: bigint[];
}

interface Candidate {
  readonly plan: BackendDescriptor;
  readonly cfg: BackendDescriptor;
  readonly engine: number | undefined;
  readonly workspaceBytes: number;
  variantPack?: BackendDescriptor;
}

export interface ConvTuneResult {
  /** Candidates timed (0 when there was only one). */
  readonly timed: number;
  /** Whether a plan other than the heuristic's first was kept. */
  readonly switched: boolean;
  /** ms per execute of the heuristic's first plan and of the kept plan (NaN when not timed). */
  readonly firstMs: number;
  readonly bestMs: number;
}

export class CudnnConvPlan {
  private destroyed = false;
  private candidates: Candidate[];

  constructor(
    private readonly cudnn: Cudnn,
    readonly spec: CudnnConvSpec,
    candidates: Candidate[],
    private readonly owned: BackendDescriptor[],
    /** The ids of real tensors in the order bind() takes pointers: x, w, (bias), y, extras. */
    private readonly uids: bigint[],
  ) {
    if (candidates.length === 0) throw new Error("CudnnConvPlan needs at least one plan");
    this.candidates = candidates;
  }

  /** Workspace the plan may use: the largest over the candidates until tune() has picked one. */
  get workspaceBytes(): number {
    return Math.max(...this.candidates.map((c) => c.workspaceBytes));
  }

  /** The global engine index of the plan execute() runs. */
  get engineIndex(): number | undefined {
    return this.candidates[0].engine;
  }

  /** Plans still in the running (1 after tune()). */
  get candidateCount(): number {
    return this.candidates.length;
  }

  /** Fixes the data pointers (and the shared workspace) for every later execute(). */
  bind(ops: ConvOperands, workspace: bigint): void {
    const ptrs = [ops.x, ops.w, ...(this.spec.bias ? [ops.bias ?? 0n] : []), ops.y, ...ops.extra];
    if (ptrs.length !== this.uids.length)
      throw new Error(`conv plan needs ${this.uids.length} pointers, got ${ptrs.length}`);
    for (const [i, p] of ptrs.entries()) {
      if (p === 0n || p % 16n !== 0n)
        throw new Error(`conv operand ${i} at 0x${p.toString(16)} is not 16-byte aligned`);
    }
    for (const c of this.candidates) {
      c.variantPack?.destroy();
      c.variantPack = undefined;
      const vp = BackendDescriptor.create(DESC.VARIANT_PACK, "variant pack");
      vp.int64s(ATTR.VARIANT_PACK_UNIQUE_IDS, this.uids, "UNIQUE_IDS")
        .pointers(ATTR.VARIANT_PACK_DATA_POINTERS, ptrs, "DATA_POINTERS")
        .pointers(ATTR.VARIANT_PACK_WORKSPACE, [c.workspaceBytes > 0 ? workspace : 0n], "WORKSPACE")
        .finalize();
      c.variantPack = vp;
    }
  }

  private run(c: Candidate, stream: Stream): void {
    if (!c.variantPack) throw new Error("conv plan executed before bind()");
    this.cudnn.setStream(stream);
    const rc = CUDNN.fn.cudnnBackendExecute(this.cudnn.handle, c.plan.handle, c.variantPack.handle);
    if (rc !== 0) checkCudnn("cudnnBackendExecute", rc);
  }

  execute(stream: Stream): void {
    this.run(this.candidates[0], stream);
  }

  /**
   * Times every candidate on the bound pointers and keeps the fastest (writes y: call it before the
   * results matter). Each candidate runs once eagerly, then a graph of `perGraph` executes is captured and
   * replayed `replays` times between two events. A candidate that fails is dropped; the heuristic's first
   * is kept unless another beats it by more than TUNE_MARGIN.
   */
  tune(stream: Stream, opts: { perGraph?: number; replays?: number } = {}): ConvTuneResult {
    if (this.candidates.length <= 1)
      return { timed: 0, switched: false, firstMs: Number.NaN, bestMs: Number.NaN };
    const perGraph = opts.perGraph ?? 8;
    const replays = opts.replays ?? 3;
    const times = this.candidates.map((c) => {
      try {
        this.run(c, stream);
        stream.synchronize();
        const graph = captureGraph(stream, () => {
          for (let i = 0; i < perGraph; i++) this.run(c, stream);
        });
        try {
          graph.launch(stream);
          const start = CudaEvent.create();
          const end = CudaEvent.create();
          try {
            start.record(stream);
            for (let r = 0; r < replays; r++) graph.launch(stream);
            end.record(stream);
            end.synchronize();
            return end.elapsedSince(start) / (perGraph * replays);
          } finally {
            start.destroy();
            end.destroy();
          }
        } finally {
          graph.destroy();
        }
      } catch {
        try {
          stream.synchronize();
        } catch {
          // the stream's error is reported by the next real launch
        }
        return Number.POSITIVE_INFINITY;
      }
    });
    let best = 0;
    for (let i = 1; i < times.length; i++) if (times[i] < times[best]) best = i;
    if (best !== 0 && !(times[best] < times[0] * (1 - TUNE_MARGIN))) best = 0;
    if (!Number.isFinite(times[best])) best = 0;
    const kept = this.candidates[best];
    for (const c of this.candidates) {
      if (c === kept) continue;
      c.variantPack?.destroy();
      c.plan.destroy();
      c.cfg.destroy();
    }
    this.candidates = [kept];
    return { timed: times.length, switched: best !== 0, firstMs: times[0], bestMs: times[best] };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const c of this.candidates) {
      c.variantPack?.destroy();
      c.plan.destroy();
      c.cfg.destroy();
    }
    for (const d of [...this.owned].reverse()) d.destroy();
  }
}

/** Builds the plan, or returns undefined when no engine supports the graph. */
export function buildCudnnConv(cudnn: Cudnn, spec: CudnnConvSpec): CudnnConvPlan | undefined {
  const owned: BackendDescriptor[] = [];
  const make = (type: number, label: string) => {
    const d = BackendDescriptor.create(type, label);
    owned.push(d);
    return d;
  };
  try {
    const io = spec.dtype === "float16" ? CUDNN_DATA.HALF : CUDNN_DATA.FLOAT;
    let nextUid = 1n;
    const uids: bigint[] = [];
    const tensor = (
      label: string,
      dims: readonly number[],
      str: readonly number[],
      dataType: number,
      isVirtual: boolean,
    ) => {
      const uid = nextUid++;
      const d = make(DESC.TENSOR, `tensor ${label}`)
        .enum32(ATTR.TENSOR_DATA_TYPE, ATTR_TYPE.DATA_TYPE, dataType, "DATA_TYPE")
        .int64s(ATTR.TENSOR_DIMENSIONS, dims, "DIMENSIONS")
        .int64s(ATTR.TENSOR_STRIDES, str, "STRIDES")
        .int64s(ATTR.TENSOR_UNIQUE_ID, [uid], "UNIQUE_ID")
        .int64s(ATTR.TENSOR_BYTE_ALIGNMENT, [16], "BYTE_ALIGNMENT");
      if (isVirtual) d.bool(ATTR.TENSOR_IS_VIRTUAL, true, "IS_VIRTUAL");
      else uids.push(uid);
      return d.finalize();
    };
    const yStrides = strides(spec.layout, spec.y);
    const k = spec.y[1];
    const chanDims = [1, k, 1, 1];
    const chanStrides = spec.layout === "NHWC" ? [k, 1, k, k] : [k, 1, 1, 1];
    const x = tensor("x", spec.x, strides(spec.layout, spec.x), io, false);
    const w = tensor("w", spec.w, strides(spec.layout, spec.w), io, false);
    const bias = spec.bias ? tensor("bias", chanDims, chanStrides, io, false) : undefined;
    const y = tensor("y", spec.y, yStrides, io, false);
    const extras = spec.epilogue.map((op, i) => {
      if (op.kind === "tensor") return tensor(`operand ${i}`, spec.y, yStrides, io, false);
      if (op.kind === "channel") return tensor(`channel ${i}`, chanDims, chanStrides, io, false);
      return undefined;
    });
    const stages = (spec.bias ? 1 : 0) + spec.epilogue.length;
    const virt = (label: string) => tensor(label, spec.y, yStrides, CUDNN_DATA.FLOAT, true);
    const convOut = stages === 0 ? y : virt("conv out");
    const conv = make(DESC.CONVOLUTION, "convolution")
      .enum32(ATTR.CONVOLUTION_COMP_TYPE, ATTR_TYPE.DATA_TYPE, CUDNN_DATA.FLOAT, "COMP_TYPE")
      .enum32(
        ATTR.CONVOLUTION_CONV_MODE,
        ATTR_TYPE.CONVOLUTION_MODE,
        CONV_MODE.CROSS_CORRELATION,
        "CONV_MODE",
      )
      .int64s(ATTR.CONVOLUTION_SPATIAL_DIMS, [2], "SPATIAL_DIMS")
      .int64s(ATTR.CONVOLUTION_DILATIONS, spec.dilation, "DILATIONS")
      .int64s(ATTR.CONVOLUTION_FILTER_STRIDES, spec.stride, "FILTER_STRIDES")
      .int64s(ATTR.CONVOLUTION_PRE_PADDINGS, spec.padding, "PRE_PADDINGS")
      .int64s(ATTR.CONVOLUTION_POST_PADDINGS, spec.padding, "POST_PADDINGS")
      .finalize();
    const ops = [
      make(DESC.OPERATION_CONVOLUTION_FORWARD, "conv op")
        .descriptors(ATTR.CONV_FWD_X, [x], "X")
        .descriptors(ATTR.CONV_FWD_W, [w], "W")
        .descriptors(ATTR.CONV_FWD_Y, [convOut], "Y")
        .descriptors(ATTR.CONV_FWD_CONV_DESC, [conv], "CONV_DESC")
        .float(ATTR.CONV_FWD_ALPHA, 1, "ALPHA")
        .float(ATTR.CONV_FWD_BETA, 0, "BETA")
        .finalize(),
    ];
    let prev = convOut;
    let stage = 0;
    const pointwise = (label: string, mode: number, second?: BackendDescriptor) => {
      stage++;
      const out = stage === stages ? y : virt(`${label} out`);
      const pw = make(DESC.POINTWISE, `${label} mode`)
        .enum32(ATTR.POINTWISE_MODE, ATTR_TYPE.POINTWISE_MODE, mode, "MODE")
        .enum32(ATTR.POINTWISE_MATH_PREC, ATTR_TYPE.DATA_TYPE, CUDNN_DATA.FLOAT, "MATH_PREC")
        .finalize();
      const op = make(DESC.OPERATION_POINTWISE, `${label} op`)
        .descriptors(ATTR.POINTWISE_PW_DESCRIPTOR, [pw], "PW_DESCRIPTOR")
        .descriptors(ATTR.POINTWISE_XDESC, [prev], "XDESC");
      if (second) op.descriptors(ATTR.POINTWISE_BDESC, [second], "BDESC");
      ops.push(op.descriptors(ATTR.POINTWISE_YDESC, [out], "YDESC").finalize());
      prev = out;
    };
    if (bias) pointwise("bias", POINTWISE.ADD, bias);
    spec.epilogue.forEach((op, i) => {
      if (op.kind === "act") pointwise(op.fn, ACT_MODE[op.fn]);
      else pointwise(`${op.kind} ${op.op}`, op.op === "add" ? POINTWISE.ADD : POINTWISE.MUL, extras[i]);
    });
    const graph = make(DESC.OPERATIONGRAPH, "operation graph")
      .handleAttr(ATTR.OPERATIONGRAPH_HANDLE, cudnn.handle, "HANDLE")
      .descriptors(ATTR.OPERATIONGRAPH_OPS, ops, "OPS")
      .finalize();
    const strict = spec.dtype === "float32" && !spec.allowTf32;
    const chosen = choose(cudnn, graph, HEUR_MODE.A, owned, strict);
    const candidates = chosen.length > 0 ? chosen : choose(cudnn, graph, HEUR_MODE.FALLBACK, owned, strict);
    if (candidates.length === 0) {
      for (const d of owned.reverse()) d.destroy();
      return undefined;
    }
    return new CudnnConvPlan(cudnn, spec, candidates, owned, uids);
  } catch {
    for (const d of owned.reverse()) d.destroy();
    return undefined;
  }
}

function engineOf(cfg: BackendDescriptor): BackendDescriptor | undefined {
  try {
    const engine = BackendDescriptor.create(DESC.ENGINE, "engine");
    cfg.getDescriptors(ATTR.ENGINECFG_ENGINE, [engine], "ENGINE");
    return engine;
  } catch {
    return undefined;
  }
}

function notes(engine: BackendDescriptor): number[] {
  const count = new BigInt64Array(1);
  const values = new Int32Array(NOTE_TYPE_COUNT);
  const rc = CUDNN.fn.cudnnBackendGetAttribute(
    engine.handle,
    ENGINE_NUMERICAL_NOTE,
    TYPE_NUMERICAL_NOTE,
    NOTE_TYPE_COUNT,
    count,
    values,
  );
  if (rc !== 0) return [];
  return [...values.subarray(0, Number(count[0]))];
}

function choose(
  cudnn: Cudnn,
  graph: BackendDescriptor,
  mode: number,
  owned: BackendDescriptor[],
  strictFp32: boolean,
): Candidate[] {
  const heur = BackendDescriptor.create(DESC.ENGINEHEUR, "engine heuristics");
  owned.push(heur);
  heur
    .descriptors(ATTR.ENGINEHEUR_OPERATION_GRAPH, [graph], "OPERATION_GRAPH")
    .enum32(ATTR.ENGINEHEUR_MODE, ATTR_TYPE.HEUR_MODE, mode, "MODE");
  if (heur.tryFinalize() !== 0) return [];
  let n: number;
  try {
    n = heur.countDescriptors(ATTR.ENGINEHEUR_RESULTS, "RESULTS");
  } catch {
    return [];
  }
  if (n === 0) return [];
  const cfgs = Array.from({ length: n }, (_, i) =>
    BackendDescriptor.create(DESC.ENGINECFG, `engine config ${i}`),
  );
  const kept: Candidate[] = [];
  try {
    const filled = heur.getDescriptors(ATTR.ENGINEHEUR_RESULTS, cfgs, "RESULTS");
    for (let i = 0; i < Math.min(filled, n) && kept.length < MAX_CANDIDATES; i++) {
      const engine = engineOf(cfgs[i]);
      let index: number | undefined;
      let skip = false;
      try {
        if (engine) {
          const ns = strictFp32 || kept.length > 0 ? notes(engine) : [];
          if (strictFp32 && (ns.includes(NOTE_TENSOR_CORE) || ns.includes(NOTE_DOWN_CONVERT_INPUTS)))
            skip = true;
          if (kept.length > 0 && ns.some((x) => NOTES_EXTRA_CANDIDATE_SKIPS.includes(x))) skip = true;
          try {
            index = Number(engine.getInt64(ATTR.ENGINE_GLOBAL_INDEX, "GLOBAL_INDEX"));
          } catch {
            index = undefined;
          }
        } else if (kept.length > 0) {
          skip = true;
        }
      } finally {
        engine?.destroy();
      }
      if (skip) continue;
      const plan = BackendDescriptor.create(DESC.EXECUTION_PLAN, "execution plan");
      plan.handleAttr(ATTR.EXECUTION_PLAN_HANDLE, cudnn.handle, "HANDLE");
      plan.descriptors(ATTR.EXECUTION_PLAN_ENGINE_CONFIG, [cfgs[i]], "ENGINE_CONFIG");
      if (plan.tryFinalize() !== 0) {
        plan.destroy();
        continue;
      }
      let ws: number;
      try {
        ws = Number(plan.getInt64(ATTR.EXECUTION_PLAN_WORKSPACE_SIZE, "WORKSPACE_SIZE"));
      } catch {
        plan.destroy();
        continue;
      }
      if (kept.length > 0 && ws > CANDIDATE_WORKSPACE_CAP) {
        plan.destroy();
        continue;
      }
      kept.push({ plan, cfg: cfgs[i], engine: index, workspaceBytes: ws });
    }
  } catch {
    // keep what was finalized so far
  }
  for (const c of cfgs) if (!kept.some((k) => k.cfg === c)) c.destroy();
  return kept;
}

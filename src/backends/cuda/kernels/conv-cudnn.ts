/**
 * The engine's convolutions through cuDNN: a conv step with its fused epilogue (bias, per-channel constants,
 * same-shape tensors such as a residual, activations) as the device layer's one conv graph
 * (device/conv-graph.ts), fp16 or fp32 I/O with fp32 compute. Engines come from device/cudnn-engines.ts
 * (heuristic mode A, then FALLBACK; with fp32 and TF32 off, engines that use tensor cores or down-convert
 * inputs are skipped, as PyTorch does). Up to MAX_CANDIDATES plans are kept; tune() times each on the bound
 * pointers (a captured graph of several executes, so launch overhead stays out) and keeps the fastest.
 * What stays here is the engine's glue: step → spec, fixed pointers, tuning.
 */
import type { Cudnn } from "../device/conv.js";
import { buildConvGraph, type ConvGraphSpec, ownedMaker } from "../device/conv-graph.js";
import { channelStrides, type Dims4, layoutStrides } from "../device/conv-shape.js";
import { BackendDescriptor } from "../device/cudnn-backend.js";
import { chooseEngines, destroyCandidate, type EngineCandidate } from "../device/cudnn-engines.js";
import { CudaEvent } from "../device/event.js";
import { captureGraph } from "../device/graph.js";
import type { Stream } from "../device/stream.js";
import type { ConvEpilogueOp, ConvStep } from "../fuse/steps.js";
import type { TensorInfo } from "../plan/tensors.js";

/** Plans kept for build-time timing (the heuristic's first plus up to this many minus one more). */
const MAX_CANDIDATES = 6;
/** Extra candidates needing more workspace than this are skipped (the first is always kept). */
const CANDIDATE_WORKSPACE_CAP = 64 << 20;
/** A later candidate replaces the first only when it is faster by more than this fraction. */
const TUNE_MARGIN = 0.03;

export interface CudnnConvSpec {
  readonly layout: "NHWC" | "NCHW";
  /** The output's type (and the input's and weight's, unless `int8`). */
  readonly dtype: "float16" | "float32";
  /**
   * An int8 convolution (ConvStep.int8): x and w int8, int32 accumulation, then a per-channel float32 scale
   * and the float32 bias before the epilogue; y in `dtype` (device/conv-graph.ts's int8 graph).
   */
  readonly int8?: true;
  /** int8 only: y is int8 (ConvStep.quantizeOutput); channel operands are then float32. */
  readonly int8Output?: true;
  /**
   * int8 only: x and w are FP8 E4M3 instead (fp32 accumulation; the same scale, bias and epilogue). Timed by
   * bench conv-precision-sweep; no engine step builds it yet.
   */
  readonly fp8?: true;
  readonly x: Dims4;
  /** [K, C/groups, R, S]. */
  readonly w: Dims4;
  readonly y: Dims4;
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly bias: boolean;
  readonly epilogue: readonly ConvEpilogueOp[];
  readonly allowTf32: boolean;
}

/** The cuDNN spec of a conv step, or why it cannot be one (dtypes cuDNN is not asked to mix). */
export function cudnnConvSpec(
  step: ConvStep,
  info: (t: string) => TensorInfo,
  allowTf32: boolean,
): CudnnConvSpec | string {
  const [x, w, y] = [info(step.x), info(step.layer.inputs[1]), info(step.output)];
  const l = step.layer;
  const int8 = step.int8 !== undefined;
  const int8Output = int8 && step.quantizeOutput !== undefined;
  // an int8 step's float type is its convolution's output's (an int8-out step stores none)
  const dtype = int8 ? info(l.output).storage : x.storage;
  if (dtype !== "float16" && dtype !== "float32") return `${int8 ? "output" : "input"} dtype ${dtype}`;
  // an int8 step's weight is the layer's int8 grid, uploaded by the builder (the float constant is not read)
  const ok = int8
    ? x.storage === "int8" && y.storage === (int8Output ? "int8" : dtype)
    : w.storage === dtype && y.storage === dtype;
  if (!ok) return `dtypes ${x.storage}/${w.storage}/${y.storage}`;
  return {
    layout: step.layout,
    dtype,
    ...(int8 ? { int8: true as const } : {}),
    ...(int8Output ? { int8Output: true as const } : {}),
    x: x.shape as unknown as Dims4,
    w: w.shape as unknown as Dims4,
    y: y.shape as unknown as Dims4,
    stride: [l.stride[0], l.stride[1]],
    padding: [l.padding[0], l.padding[1]],
    dilation: [l.dilation[0], l.dilation[1]],
    bias: l.inputs[2] !== undefined,
    epilogue: step.epilogue,
    allowTf32,
  };
}

/** The device layer's graph description of `spec` (symmetric padding; bias and channel operands [1,K,1,1]). */
export function convGraphSpec(spec: CudnnConvSpec): ConvGraphSpec {
  const strided = (dims: Dims4) => ({ dims, strides: layoutStrides(spec.layout, dims) });
  return {
    ...(spec.int8
      ? {
          quant: { output: spec.int8Output ? "int8" : spec.dtype, ...(spec.fp8 ? { input: "fp8e4m3" } : {}) },
        }
      : { dtype: spec.dtype }),
    x: strided(spec.x),
    w: strided(spec.w),
    y: strided(spec.y),
    channel: { dims: [1, spec.y[1], 1, 1], strides: channelStrides(spec.layout, spec.y[1]) },
    stride: spec.stride,
    prePadding: spec.padding,
    postPadding: spec.padding,
    dilation: spec.dilation,
    bias: spec.bias,
    epilogue: spec.epilogue,
  };
}

/** Unique ids of the real (non-virtual) tensors, in variant-pack order. */
export interface ConvOperands {
  x: bigint;
  w: bigint;
  /** int8 plans: the per-channel float32 scale sX·sW[k]. */
  scale?: bigint;
  bias?: bigint;
  y: bigint;
  /** One pointer per epilogue op that reads memory (tensor and channel ops), in epilogue order. */
  extra: bigint[];
}

export interface ConvTuneResult {
  /** Candidates timed (0 when there was only one). */
  readonly timed: number;
  /** Whether a plan other than the heuristic's first was kept. */
  readonly switched: boolean;
  /** ms per execute of the heuristic's first plan and of the kept plan (NaN when not timed). */
  readonly firstMs: number;
  readonly bestMs: number;
  /** Why candidates that failed while timed were dropped. */
  readonly failures: readonly string[];
}

/**
 * What every layer of one conv problem shares: cuDNN's candidate plans (finalizing one can compile kernels: ~350 ms
 * for an int8 runtime-fusion plan on an H100) and the descriptors they were built from. Tuned once, by whichever
 * layer's plan is timed first; freed with the last plan over it.
 */
interface CandidateGroup {
  candidates: readonly EngineCandidate[];
  readonly owned: BackendDescriptor[];
  plans: number;
}

export class CudnnConvPlan {
  private destroyed = false;
  private readonly group: CandidateGroup;
  /** This layer's variant packs (its own pointers), by candidate. */
  private readonly packs = new Map<EngineCandidate, BackendDescriptor>();

  constructor(
    private readonly cudnn: Cudnn,
    readonly spec: CudnnConvSpec,
    candidates: readonly EngineCandidate[] | CandidateGroup,
    owned: BackendDescriptor[],
    /** The ids of real tensors in the order bind() takes pointers: x, w, (bias), y, extras. */
    private readonly uids: readonly bigint[],
  ) {
    if ("plans" in candidates) {
      this.group = candidates;
      this.group.plans++;
      return;
    }
    if (candidates.length === 0) throw new Error("CudnnConvPlan needs at least one plan");
    this.group = { candidates, owned, plans: 1 };
  }

  /**
   * A plan for another layer of the same problem (same spec): the same cuDNN candidates, its own pointers. Tuning
   * either tunes both; the candidates are freed with the last of them.
   */
  share(spec: CudnnConvSpec = this.spec): CudnnConvPlan {
    if (this.group.plans === 0) throw new Error("a destroyed conv plan cannot be shared");
    return new CudnnConvPlan(this.cudnn, spec, this.group, [], this.uids);
  }

  private get candidates(): readonly EngineCandidate[] {
    return this.group.candidates;
  }

  /** Workspace the plan may use: the largest over the candidates until tune() has picked one. */
  get workspaceBytes(): number {
    return Math.max(...this.candidates.map((c) => c.workspaceBytes));
  }

  /** The global engine index of the plan execute() runs. */
  get engineIndex(): number | undefined {
    return this.candidates[0].engine;
  }

  /**
   * The candidate execute() runs (what a saved package keeps); undefined once every plan of the problem is destroyed
   * (a destroyed plan still answers for the layers that share its candidates).
   */
  get chosen(): EngineCandidate | undefined {
    return this.group.plans === 0 ? undefined : this.candidates[0];
  }

  /** Plans still in the running (1 after tune()). */
  get candidateCount(): number {
    return this.candidates.length;
  }

  /** Fixes the data pointers (and the shared workspace) for every later execute(). */
  bind(ops: ConvOperands, workspace: bigint): void {
    const ptrs = [
      ops.x,
      ops.w,
      ...(this.spec.int8 ? [ops.scale ?? 0n] : []),
      ...(this.spec.bias ? [ops.bias ?? 0n] : []),
      ops.y,
      ...ops.extra,
    ];
    if (ptrs.length !== this.uids.length)
      throw new Error(`conv plan needs ${this.uids.length} pointers, got ${ptrs.length}`);
    for (const [i, p] of ptrs.entries()) {
      if (p === 0n || p % 16n !== 0n)
        throw new Error(`conv operand ${i} at 0x${p.toString(16)} is not 16-byte aligned`);
    }
    this.dropPacks();
    for (const c of this.candidates) {
      const ws = c.workspaceBytes > 0 ? workspace : 0n;
      this.packs.set(c, BackendDescriptor.variantPack(this.uids, ptrs, ws));
    }
  }

  private dropPacks(): void {
    for (const pack of this.packs.values()) pack.destroy();
    this.packs.clear();
  }

  private run(c: EngineCandidate, stream: Stream): void {
    const pack = this.packs.get(c);
    if (!pack) throw new Error("conv plan executed before bind()");
    this.cudnn.execute(c.plan, pack, stream);
  }

  execute(stream: Stream): void {
    this.run(this.candidates[0], stream);
  }

  /** ms per execute of `c`: one eager run, then `replays` launches of a graph of `perGraph` executes. */
  private time(c: EngineCandidate, stream: Stream, perGraph: number, replays: number): number {
    this.run(c, stream);
    stream.synchronize();
    const graph = captureGraph(stream, () => {
      for (let i = 0; i < perGraph; i++) this.run(c, stream);
    });
    const start = CudaEvent.create();
    const end = CudaEvent.create();
    try {
      graph.launch(stream);
      start.record(stream);
      for (let r = 0; r < replays; r++) graph.launch(stream);
      end.record(stream);
      end.synchronize();
      return end.elapsedSince(start) / (perGraph * replays);
    } finally {
      start.destroy();
      end.destroy();
      graph.destroy();
    }
  }

  /**
   * Times every candidate on the bound pointers and keeps the fastest (writes y: call it before the
   * results matter). A candidate that fails is dropped (its error is in `failures`); the heuristic's first
   * is kept unless another beats it by more than TUNE_MARGIN. A plan sharing its candidates with another layer's
   * that was tuned already has nothing left to time.
   */
  tune(stream: Stream, opts: { perGraph?: number; replays?: number } = {}): ConvTuneResult {
    if (this.destroyed) throw new Error("a destroyed conv plan cannot be tuned");
    const none = { timed: 0, switched: false, firstMs: Number.NaN, bestMs: Number.NaN, failures: [] };
    if (this.candidates.length <= 1) return none;
    // Dropping candidates drops them for every layer of the problem: only a plan bound for all of them times.
    if (this.candidates.some((c) => !this.packs.has(c)))
      return { ...none, failures: ["not timed: the plan is not bound (bind() before tune())"] };
    const failures: string[] = [];
    const times = this.candidates.map((c) => {
      try {
        return this.time(c, stream, opts.perGraph ?? 8, opts.replays ?? 3);
      } catch (e) {
        failures.push(`engine ${c.engine ?? "?"}: ${e instanceof Error ? e.message : String(e)}`);
        syncQuietly(stream);
        return Number.POSITIVE_INFINITY;
      }
    });
    // Nothing ran: keep every candidate (another layer's plan may time them), the heuristic's first in front.
    if (!times.some(Number.isFinite)) return { ...none, failures };
    const best = pickFastest(times, TUNE_MARGIN);
    const kept = this.candidates[best];
    for (const c of this.candidates) if (c !== kept) this.drop(c);
    this.group.candidates = [kept];
    return { timed: times.length, switched: best !== 0, firstMs: times[0], bestMs: times[best], failures };
  }

  /** Frees a candidate for every plan of the group (their packs for it are not used again). */
  private drop(c: EngineCandidate): void {
    this.packs.get(c)?.destroy();
    this.packs.delete(c);
    destroyCandidate(c);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.dropPacks();
    if (--this.group.plans > 0) return;
    for (const c of this.candidates) destroyCandidate(c);
    for (const d of [...this.group.owned].reverse()) d.destroy();
  }
}

/** After a failed timing run: wait for the stream, leaving its error to the next real launch. */
function syncQuietly(stream: Stream): void {
  try {
    stream.synchronize();
  } catch {
    // the stream's error is reported by the next real launch
  }
}

/** The index to keep: the fastest, unless it does not beat the first by more than `margin`. */
export function pickFastest(times: readonly number[], margin: number): number {
  let best = 0;
  for (let i = 1; i < times.length; i++) if (times[i] < times[best]) best = i;
  if (best !== 0 && !(times[best] < times[0] * (1 - margin))) best = 0;
  if (!Number.isFinite(times[best])) best = 0;
  return best;
}

export type CudnnConvBuild =
  | {
      readonly ok: true;
      readonly plan: CudnnConvPlan;
      /** A plan restored from a saved choice: from cuDNN's serialized plan, or rebuilt from engine and knobs. */
      readonly restoredFrom?: "json" | "engine";
    }
  | { readonly ok: false; readonly reason: string };

/**
 * Builds the plan, or says why cuDNN refused it (its status and message). Extra candidates are finalized only
 * when they will be timed (`tune`): finalizing can compile kernels (cuDNN's runtime-fusion engines), and without
 * timing only the heuristic's first plan ever runs.
 */
export function buildCudnnConv(
  cudnn: Cudnn,
  spec: CudnnConvSpec,
  opts: { readonly tune: boolean },
): CudnnConvBuild {
  const owned: BackendDescriptor[] = [];
  try {
    const { graph, uids } = buildConvGraph(cudnn.handle, convGraphSpec(spec), ownedMaker(owned));
    const choice = chooseEngines(
      cudnn.handle,
      graph,
      {
        modes: ["A", "fallback"],
        // int8 engines are all tensor-core (IMMA) ones; the strict fp32 rule is for float convolutions
        strictFp32: !spec.int8 && spec.dtype === "float32" && !spec.allowTf32,
        // int8: cuDNN's first engine was 4× slower than fp16 on a 56×56×64 layer (H100, session 9): always time them
        max: opts.tune || spec.int8 ? MAX_CANDIDATES : 1,
        workspaceCap: CANDIDATE_WORKSPACE_CAP,
      },
      owned,
    );
    if (choice.ok) return { ok: true, plan: new CudnnConvPlan(cudnn, spec, choice.candidates, owned, uids) };
    for (const d of owned.reverse()) d.destroy();
    return { ok: false, reason: choice.reason };
  } catch (e) {
    for (const d of owned.reverse()) d.destroy();
    return { ok: false, reason: `cuDNN refused: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/**
 * cuDNN: a handle, and a checked plan for conv → (+bias) → (activation) in NHWC or NCHW, fp16/bf16/fp32 with
 * fp32 compute: the graph comes from conv-graph.ts and the engine from cudnn-engines.ts (heuristic mode A,
 * then FALLBACK; the first engine config whose plan finalizes). Plans are reusable; the variant pack is
 * rebuilt only when the data pointers change.
 */
import { CUDNN } from "../../../ffi/cudnn.js";
import { CudnnError, checkCudnn } from "../../../ffi/status.js";
import type { OutPtr } from "../../../ffi/types.js";
import { CudaContext } from "./context.js";
import { buildConvGraph, type ConvGraphSpec, ownedMaker } from "./conv-graph.js";
import { type ConvGeometry, type ConvSpec, convGeometry } from "./conv-shape.js";
import { BackendDescriptor } from "./cudnn-backend.js";
import {
  chooseEngines,
  destroyCandidate,
  type EngineCandidate,
  type HeuristicMode,
} from "./cudnn-engines.js";
import { DeviceBuffer } from "./memory.js";
import { type Stream, streamHandle } from "./stream.js";
import { checkDevice, checkOneOf, type DeviceMemory, fail } from "./validate.js";

export class Cudnn {
  private destroyed = false;
  private stream: bigint | null | undefined;

  private constructor(private readonly raw: bigint) {}

  /** A cuDNN handle for the current context. */
  static create(): Cudnn {
    CudaContext.current();
    const out: OutPtr = [null];
    checkCudnn("cudnnCreate", CUDNN.fn.cudnnCreate(out));
    if (out[0] === null) throw new Error("cudnnCreate returned NULL");
    return new Cudnn(out[0]);
  }

  /** cuDNN's version number, e.g. 91900. */
  static version(): number {
    return CUDNN.fn.cudnnGetVersion();
  }

  get handle(): bigint {
    if (this.destroyed) fail("the cuDNN handle has been destroyed");
    return this.raw;
  }

  /** Makes later executions run on `stream` (only calls cuDNN when the stream changes). */
  setStream(stream: Stream | null | undefined): void {
    const s = streamHandle(stream);
    if (s === this.stream) return;
    checkCudnn("cudnnSetStream", CUDNN.fn.cudnnSetStream(this.handle, s));
    this.stream = s;
  }

  /** Runs an execution plan with its variant pack on `stream`. */
  execute(plan: BackendDescriptor, variantPack: BackendDescriptor, stream: Stream | null | undefined): void {
    this.setStream(stream);
    const rc = CUDNN.fn.cudnnBackendExecute(this.handle, plan.handle, variantPack.handle);
    if (rc !== 0) checkCudnn("cudnnBackendExecute", rc);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    checkCudnn("cudnnDestroy", CUDNN.fn.cudnnDestroy(this.raw));
  }
}

export type { HeuristicMode } from "./cudnn-engines.js";

export interface ConvIO {
  x: DeviceMemory;
  w: DeviceMemory;
  /** Required when the plan was built with bias. */
  bias?: DeviceMemory | null;
  y: DeviceMemory;
}

/** What one finalized conv graph plan owns: its engine, descriptors, variant-pack ids and workspace. */
export interface GraphPlanParts {
  readonly chosen: EngineCandidate;
  /** Every descriptor the plan depends on, destroyed with it. */
  readonly owned: readonly BackendDescriptor[];
  /** The real tensors' ids, in variant-pack order. */
  readonly uids: readonly bigint[];
  readonly workspace: DeviceBuffer | undefined;
}

/**
 * A device-layer plan of one conv graph (conv-graph.ts): one engine, its own workspace, and a variant pack rebuilt
 * only when the data pointers change. ConvPlan and the int8 plan (conv-int8.ts) check their operands and run here.
 */
export class GraphPlan {
  private variantPack: BackendDescriptor | undefined;
  private variantKey = "";
  private destroyed = false;

  constructor(
    private readonly cudnn: Cudnn,
    private readonly parts: GraphPlanParts,
    /** What the plan is, for the error after destroy(). */
    private readonly what: string,
  ) {}

  get workspaceBytes(): number {
    return this.parts.chosen.workspaceBytes;
  }

  /** cuDNN's global index of the chosen engine, when it could be read. */
  get engineIndex(): number | undefined {
    return this.parts.chosen.engine;
  }

  /** Engine configs tried before one finalized. */
  get configsTried(): number {
    return this.parts.chosen.tried;
  }

  protected checkLive(): void {
    if (this.destroyed) fail(`the ${this.what} has been destroyed`);
  }

  /** Runs the plan on `ptrs` (variant-pack order, already checked) on `stream`. */
  protected run(ptrs: readonly bigint[], stream: Stream | null | undefined): void {
    this.checkLive();
    const key = ptrs.join(",");
    if (key !== this.variantKey || this.variantPack === undefined) {
      this.variantPack?.destroy();
      this.variantPack = undefined;
      this.variantPack = BackendDescriptor.variantPack(
        this.parts.uids,
        ptrs,
        this.parts.workspace?.ptr ?? 0n,
      );
      this.variantKey = key;
    }
    this.cudnn.execute(this.parts.chosen.plan, this.variantPack, stream);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.variantPack?.destroy();
    destroyCandidate(this.parts.chosen);
    for (const d of [...this.parts.owned].reverse()) d.destroy();
    this.parts.workspace?.free();
  }
}

export class ConvPlan extends GraphPlan {
  constructor(
    cudnn: Cudnn,
    readonly geometry: ConvGeometry,
    parts: GraphPlanParts,
  ) {
    super(cudnn, parts, "convolution plan");
  }

  /** Runs y = act(conv(x, w) + bias) on `stream`. Sizes and 16-byte alignment are checked first. */
  execute(io: ConvIO, stream?: Stream | null): void {
    this.checkLive();
    const g = this.geometry;
    const ptrs: bigint[] = [aligned16("x", io.x, g.x.bytes), aligned16("w", io.w, g.w.bytes)];
    if (g.bias) {
      if (io.bias === undefined || io.bias === null) fail("this plan adds a bias: pass io.bias");
      ptrs.push(aligned16("bias", io.bias, g.b.bytes));
    }
    ptrs.push(aligned16("y", io.y, g.y.bytes));
    this.run(ptrs, stream);
  }
}

/** The pointer of `mem`, checked to hold `bytes` and to be 16-byte aligned (every cuDNN tensor here says so). */
export function aligned16(name: string, mem: DeviceMemory | null | undefined, bytes: number): bigint {
  const ptr = checkDevice(name, mem, bytes);
  if (ptr % 16n !== 0n) fail(`${name} must be 16-byte aligned for cuDNN, got address 0x${ptr.toString(16)}`);
  return ptr;
}

/** The shared graph description of a validated geometry: conv, then bias, then the activation. */
export function convGraphSpecOf(g: ConvGeometry): ConvGraphSpec {
  return {
    dtype: g.dtype,
    x: g.x,
    w: g.w,
    y: g.y,
    channel: g.b,
    stride: g.stride,
    prePadding: g.prePadding,
    postPadding: g.postPadding,
    dilation: g.dilation,
    bias: g.bias,
    epilogue: g.activation === "none" ? [] : [{ kind: "act", fn: g.activation }],
  };
}

/**
 * Builds an execution plan for conv(+bias)(+activation) described by `spec`. Throws CudnnError (with
 * cuDNN's status and message) when no engine supports the graph.
 */
export function buildConvPlan(
  cudnn: Cudnn,
  spec: ConvSpec,
  opts: { heuristic?: HeuristicMode } = {},
): ConvPlan {
  const g = convGeometry(spec);
  return new ConvPlan(
    cudnn,
    g,
    planGraph(cudnn, convGraphSpecOf(g), opts.heuristic, () => `buildConvPlan(${describeSpec(g)})`),
  );
}

/**
 * The graph of `spec` finalized with the first engine heuristic `heuristic` (then FALLBACK) offers, and the
 * workspace it needs. Throws CudnnError (cuDNN's status and message, under `what()`) when none finalizes.
 */
export function planGraph(
  cudnn: Cudnn,
  spec: ConvGraphSpec,
  heuristic: HeuristicMode | undefined,
  what: () => string,
): GraphPlanParts {
  const mode = checkOneOf("heuristic", heuristic ?? "A", ["A", "B", "instant", "fallback"] as const);
  const owned: BackendDescriptor[] = [];
  try {
    const { graph, uids } = buildConvGraph(cudnn.handle, spec, ownedMaker(owned));
    const modes: HeuristicMode[] = mode === "fallback" ? ["fallback"] : [mode, "fallback"];
    const choice = chooseEngines(
      cudnn.handle,
      graph,
      { modes, strictFp32: false, max: 1, workspaceCap: 0 },
      owned,
    );
    if (!choice.ok) throw new CudnnError(what(), 3000, choice.reason);
    const chosen = choice.candidates[0];
    try {
      const workspace = chosen.workspaceBytes > 0 ? DeviceBuffer.alloc(chosen.workspaceBytes) : undefined;
      return { chosen, owned, uids, workspace };
    } catch (e) {
      destroyCandidate(chosen);
      throw e;
    }
  } catch (e) {
    for (const d of owned.reverse()) d.destroy();
    throw e;
  }
}

function describeSpec(g: ConvGeometry): string {
  const [n, c, h, w] = g.x.dims;
  const [k, , r, s] = g.w.dims;
  return (
    `${g.layout} ${g.dtype} x[${n},${c},${h},${w}] w[${k},${c / g.groups},${r},${s}] g${g.groups} stride ${g.stride} ` +
    `pad ${g.prePadding}/${g.postPadding} dil ${g.dilation} bias ${g.bias} act ${g.activation}`
  );
}

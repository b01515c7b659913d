/**
 * cuDNN: a handle, and a builder for the fused graph conv → (+bias) → (activation) in NHWC or NCHW,
 * fp16/bf16/fp32 with fp32 compute, through the backend API: tensors → conv op → pointwise ops → operation
 * graph → engine heuristics (mode A, then FALLBACK) → the first engine config whose plan finalizes → variant
 * pack. Plans are reusable; the variant pack is rebuilt only when the data pointers change.
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
import { CudnnError, checkCudnn, cudnnLastError } from "../../../ffi/status.js";
import type { OutPtr } from "../../../ffi/types.js";
import { CudaContext } from "./context.js";
import {
  type ConvActivation,
  type ConvGeometry,
  type ConvSpec,
  convGeometry,
  type TensorGeometry,
} from "./conv-shape.js";
import { BackendDescriptor } from "./cudnn-backend.js";
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

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    checkCudnn("cudnnDestroy", CUDNN.fn.cudnnDestroy(this.raw));
  }
}

export type HeuristicMode = "A" | "B" | "instant" | "fallback";

const HEUR: Readonly<Record<HeuristicMode, number>> = {
  A: HEUR_MODE.A,
  B: HEUR_MODE.B,
  instant: HEUR_MODE.INSTANT,
  fallback: HEUR_MODE.FALLBACK,
};

const DATA_TYPE = {
  float16: CUDNN_DATA.HALF,
  bfloat16: CUDNN_DATA.BFLOAT16,
  float32: CUDNN_DATA.FLOAT,
} as const;

const ACTIVATION_MODE: Readonly<Record<Exclude<ConvActivation, "none">, number>> = {
  relu: POINTWISE.RELU_FWD,
  silu: POINTWISE.SWISH_FWD,
  sigmoid: POINTWISE.SIGMOID_FWD,
  gelu: POINTWISE.GELU_FWD,
  gelu_tanh: POINTWISE.GELU_APPROX_TANH_FWD,
};

const UID = { x: 1n, w: 2n, b: 3n, y: 4n, conv: 100n, add: 101n } as const;

export interface ConvIO {
  x: DeviceMemory;
  w: DeviceMemory;
  /** Required when the plan was built with bias. */
  bias?: DeviceMemory | null;
  y: DeviceMemory;
}

export class ConvPlan {
  private variantPack: BackendDescriptor | undefined;
  private variantKey = "";
  private destroyed = false;

  constructor(
    private readonly cudnn: Cudnn,
    readonly geometry: ConvGeometry,
    private readonly plan: BackendDescriptor,
    /** Every descriptor the plan depends on, destroyed with it. */
    private readonly owned: readonly BackendDescriptor[],
    readonly workspaceBytes: number,
    private readonly workspace: DeviceBuffer | undefined,
    /** cuDNN's global index of the chosen engine, when it could be read. */
    readonly engineIndex: number | undefined,
    /** Engine configs tried before one finalized. */
    readonly configsTried: number,
  ) {}

  /** Runs y = act(conv(x, w) + bias) on `stream`. Sizes and 16-byte alignment are checked first. */
  execute(io: ConvIO, stream?: Stream | null): void {
    if (this.destroyed) fail("the convolution plan has been destroyed");
    const g = this.geometry;
    const ptrs: bigint[] = [aligned("x", io.x, g.x), aligned("w", io.w, g.w)];
    const uids: bigint[] = [UID.x, UID.w];
    if (g.bias) {
      if (io.bias === undefined || io.bias === null) fail("this plan adds a bias: pass io.bias");
      ptrs.push(aligned("bias", io.bias, g.b));
      uids.push(UID.b);
    }
    ptrs.push(aligned("y", io.y, g.y));
    uids.push(UID.y);
    const key = ptrs.join(",");
    if (key !== this.variantKey || this.variantPack === undefined) {
      this.variantPack?.destroy();
      this.variantPack = undefined;
      const vp = BackendDescriptor.create(DESC.VARIANT_PACK, "variant pack");
      try {
        vp.int64s(ATTR.VARIANT_PACK_UNIQUE_IDS, uids, "UNIQUE_IDS")
          .pointers(ATTR.VARIANT_PACK_DATA_POINTERS, ptrs, "DATA_POINTERS")
          .pointers(ATTR.VARIANT_PACK_WORKSPACE, [this.workspace?.ptr ?? 0n], "WORKSPACE")
          .finalize();
      } catch (e) {
        vp.destroy();
        throw e;
      }
      this.variantPack = vp;
      this.variantKey = key;
    }
    this.cudnn.setStream(stream);
    const rc = CUDNN.fn.cudnnBackendExecute(this.cudnn.handle, this.plan.handle, this.variantPack.handle);
    if (rc !== 0) checkCudnn("cudnnBackendExecute", rc);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.variantPack?.destroy();
    this.plan.destroy();
    for (const d of [...this.owned].reverse()) d.destroy();
    this.workspace?.free();
  }
}

function aligned(name: string, mem: DeviceMemory | null | undefined, t: TensorGeometry): bigint {
  const ptr = checkDevice(name, mem, t.bytes);
  if (ptr % 16n !== 0n) fail(`${name} must be 16-byte aligned for cuDNN, got address 0x${ptr.toString(16)}`);
  return ptr;
}

/**
 * Builds an execution plan for conv(+bias)(+activation) described by `spec`. Throws CudnnError (with
 * cuDNN's last error message) when no engine supports the graph.
 */
export function buildConvPlan(
  cudnn: Cudnn,
  spec: ConvSpec,
  opts: { heuristic?: HeuristicMode } = {},
): ConvPlan {
  const g = convGeometry(spec);
  const mode = checkOneOf("heuristic", opts.heuristic ?? "A", ["A", "B", "instant", "fallback"] as const);
  const owned: BackendDescriptor[] = [];
  const make = (type: number, label: string) => {
    const d = BackendDescriptor.create(type, label);
    owned.push(d);
    return d;
  };
  try {
    const io = DATA_TYPE[g.dtype];
    const tensor = (label: string, t: TensorGeometry, uid: bigint, dataType: number, isVirtual: boolean) => {
      const d = make(DESC.TENSOR, `tensor ${label}`)
        .enum32(ATTR.TENSOR_DATA_TYPE, ATTR_TYPE.DATA_TYPE, dataType, "DATA_TYPE")
        .int64s(ATTR.TENSOR_DIMENSIONS, t.dims, "DIMENSIONS")
        .int64s(ATTR.TENSOR_STRIDES, t.strides, "STRIDES")
        .int64s(ATTR.TENSOR_UNIQUE_ID, [uid], "UNIQUE_ID")
        .int64s(ATTR.TENSOR_BYTE_ALIGNMENT, [16], "BYTE_ALIGNMENT");
      if (isVirtual) d.bool(ATTR.TENSOR_IS_VIRTUAL, true, "IS_VIRTUAL");
      return d.finalize();
    };
    const act = g.activation;
    const x = tensor("x", g.x, UID.x, io, false);
    const w = tensor("w", g.w, UID.w, io, false);
    const y = tensor("y", g.y, UID.y, io, false);
    const last = !g.bias && act === "none";
    const convOut = last ? y : tensor("conv out", g.y, UID.conv, CUDNN_DATA.FLOAT, true);
    const conv = make(DESC.CONVOLUTION, "convolution")
      .enum32(ATTR.CONVOLUTION_COMP_TYPE, ATTR_TYPE.DATA_TYPE, CUDNN_DATA.FLOAT, "COMP_TYPE")
      .enum32(
        ATTR.CONVOLUTION_CONV_MODE,
        ATTR_TYPE.CONVOLUTION_MODE,
        CONV_MODE.CROSS_CORRELATION,
        "CONV_MODE",
      )
      .int64s(ATTR.CONVOLUTION_SPATIAL_DIMS, [2], "SPATIAL_DIMS")
      .int64s(ATTR.CONVOLUTION_DILATIONS, g.dilation, "DILATIONS")
      .int64s(ATTR.CONVOLUTION_FILTER_STRIDES, g.stride, "FILTER_STRIDES")
      .int64s(ATTR.CONVOLUTION_PRE_PADDINGS, g.prePadding, "PRE_PADDINGS")
      .int64s(ATTR.CONVOLUTION_POST_PADDINGS, g.postPadding, "POST_PADDINGS")
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
    const pointwise = (label: string, pwMode: number, out: BackendDescriptor, second?: BackendDescriptor) => {
      const pw = make(DESC.POINTWISE, `${label} mode`)
        .enum32(ATTR.POINTWISE_MODE, ATTR_TYPE.POINTWISE_MODE, pwMode, "MODE")
        .enum32(ATTR.POINTWISE_MATH_PREC, ATTR_TYPE.DATA_TYPE, CUDNN_DATA.FLOAT, "MATH_PREC")
        .finalize();
      const op = make(DESC.OPERATION_POINTWISE, `${label} op`)
        .descriptors(ATTR.POINTWISE_PW_DESCRIPTOR, [pw], "PW_DESCRIPTOR")
        .descriptors(ATTR.POINTWISE_XDESC, [prev], "XDESC");
      if (second) op.descriptors(ATTR.POINTWISE_BDESC, [second], "BDESC");
      ops.push(op.descriptors(ATTR.POINTWISE_YDESC, [out], "YDESC").finalize());
      prev = out;
    };
    if (g.bias) {
      const b = tensor("bias", g.b, UID.b, io, false);
      pointwise(
        "bias add",
        POINTWISE.ADD,
        act === "none" ? y : tensor("add out", g.y, UID.add, CUDNN_DATA.FLOAT, true),
        b,
      );
    }
    if (act !== "none") pointwise(act, ACTIVATION_MODE[act], y);
    const graph = make(DESC.OPERATIONGRAPH, "operation graph")
      .handleAttr(ATTR.OPERATIONGRAPH_HANDLE, cudnn.handle, "HANDLE")
      .descriptors(ATTR.OPERATIONGRAPH_OPS, ops, "OPS")
      .finalize();
    const chosen =
      choosePlan(cudnn, graph, HEUR[mode], owned) ??
      (mode === "fallback" ? undefined : choosePlan(cudnn, graph, HEUR_MODE.FALLBACK, owned));
    if (chosen === undefined) {
      throw new CudnnError(
        `buildConvPlan(${describeSpec(g)})`,
        3000,
        `no engine config finalized; ${cudnnLastError() ?? "no detail from cuDNN"}`,
      );
    }
    try {
      const workspaceBytes = Number(
        chosen.plan.getInt64(ATTR.EXECUTION_PLAN_WORKSPACE_SIZE, "WORKSPACE_SIZE"),
      );
      const workspace = workspaceBytes > 0 ? DeviceBuffer.alloc(workspaceBytes) : undefined;
      return new ConvPlan(
        cudnn,
        g,
        chosen.plan,
        owned,
        workspaceBytes,
        workspace,
        chosen.engine,
        chosen.tried,
      );
    } catch (e) {
      chosen.plan.destroy();
      throw e;
    }
  } catch (e) {
    for (const d of owned.reverse()) d.destroy();
    throw e;
  }
}

interface Chosen {
  plan: BackendDescriptor;
  engine: number | undefined;
  tried: number;
}

function choosePlan(
  cudnn: Cudnn,
  graph: BackendDescriptor,
  heurMode: number,
  owned: BackendDescriptor[],
): Chosen | undefined {
  const heur = BackendDescriptor.create(DESC.ENGINEHEUR, "engine heuristics");
  owned.push(heur);
  heur
    .descriptors(ATTR.ENGINEHEUR_OPERATION_GRAPH, [graph], "OPERATION_GRAPH")
    .enum32(ATTR.ENGINEHEUR_MODE, ATTR_TYPE.HEUR_MODE, heurMode, "MODE");
  if (heur.tryFinalize() !== 0) return undefined;
  const n = heur.countDescriptors(ATTR.ENGINEHEUR_RESULTS, "RESULTS");
  if (n === 0) return undefined;
  const cfgs = Array.from({ length: n }, (_, i) =>
    BackendDescriptor.create(DESC.ENGINECFG, `engine config ${i}`),
  );
  let chosen: Chosen | undefined;
  try {
    const filled = heur.getDescriptors(ATTR.ENGINEHEUR_RESULTS, cfgs, "RESULTS");
    for (let i = 0; i < Math.min(filled, n) && chosen === undefined; i++) {
      const plan = BackendDescriptor.create(DESC.EXECUTION_PLAN, "execution plan");
      plan.handleAttr(ATTR.EXECUTION_PLAN_HANDLE, cudnn.handle, "HANDLE");
      plan.descriptors(ATTR.EXECUTION_PLAN_ENGINE_CONFIG, [cfgs[i]!], "ENGINE_CONFIG");
      if (plan.tryFinalize() === 0) {
        owned.push(cfgs[i]!);
        chosen = { plan, engine: engineIndex(cfgs[i]!), tried: i + 1 };
      } else {
        plan.destroy();
      }
    }
  } finally {
    for (const c of cfgs) if (c !== undefined && !owned.includes(c)) c.destroy();
  }
  return chosen;
}

function engineIndex(cfg: BackendDescriptor): number | undefined {
  let engine: BackendDescriptor | undefined;
  try {
    engine = BackendDescriptor.create(DESC.ENGINE, "engine");
    cfg.getDescriptors(ATTR.ENGINECFG_ENGINE, [engine], "ENGINE");
    return Number(engine.getInt64(ATTR.ENGINE_GLOBAL_INDEX, "GLOBAL_INDEX"));
  } catch {
    return undefined;
  } finally {
    engine?.destroy();
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

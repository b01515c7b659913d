/**
 * Per-tensor storage decisions: the dtype each tensor is stored in (fp16 mode stores every float tensor in
 * half precision, except the network's inputs and outputs, which keep the dtype callers bind), its physical
 * layout (channels-last around convolutions and pooling when asked, row-major elsewhere), and which layers are
 * free views of their input (identity, same-storage casts, and shuffles whose memory order needs no copy).
 */
import type { DType } from "../../../ir/dtype.js";
import type { Shape } from "../../../ir/tensor.js";
import type { Layer } from "../../../network/layers/index.js";
import type { Network } from "../../../network/network.js";
import { assignAttentionOutputLayouts } from "./attention-layout.js";
import {
  channelsLast,
  identityLayout,
  invertPermutation,
  isRowMajor,
  type Layout,
  layoutStrides,
} from "./layout.js";
import { assignStridedAttentionOperands } from "./strided-views.js";

export type Precision = "fp32" | "fp16";
export type TensorRole = "input" | "output" | "activation" | "constant";

export interface TensorInfo {
  readonly name: string;
  readonly shape: Shape;
  /** The network's dtype. */
  readonly logicalDType: DType;
  /** The dtype in device memory. */
  storage: DType;
  layout: Layout;
  role: TensorRole;
  /** Set when this tensor is a view of another tensor's memory (same bytes, its own shape and layout). */
  viewOf?: string;
  /**
   * A strided view (plan/strided-views.ts: attention operands sliced out of one projection): element strides into
   * its storage root's memory, overriding the layout's, and its first element's offset from the root's start.
   */
  strides?: readonly number[];
  offset?: number;
  /** A link of a strided view chain that no single stride per axis describes: only views read it, no kernel. */
  unaddressable?: boolean;
}

/** Element strides of `t` in memory: a strided view's own, else its layout's. */
export function elementStrides(t: TensorInfo): readonly number[] {
  if (t.unaddressable)
    throw new Error(`tensor '${t.name}' is a view no kernel can address (plan/strided-views.ts)`);
  return t.strides ?? layoutStrides(t.shape, t.layout);
}

/**
 * Elements from the start of `t`'s memory to its last addressed element, inclusive: its numel, or for a strided
 * view offset + Σ (dᵢ − 1)·strideᵢ + 1 into its root (what a kernel's index type must hold).
 */
export function addressedElements(t: TensorInfo): number {
  if (!t.strides) return t.shape.reduce((a, d) => a * d, 1);
  if (t.shape.some((d) => d === 0)) return 0;
  return t.shape.reduce((a, d, i) => a + (d - 1) * (t.strides as readonly number[])[i], (t.offset ?? 0) + 1);
}

export interface TensorPlanOptions {
  precision: Precision;
  channelsLast: boolean;
  /** fp16 mode: float32 tensors stay float32 (the graph keeps them so on purpose: fp16Overflow). Default false. */
  keepFloat32?: boolean;
}

/**
 * Float tensors are stored in fp16 in fp16 mode (float32 ones stay float32 with `keepFloat32`: the float32
 * islands the precision pass left where fp16 overflows); everything else as declared.
 */
export function storageDType(dtype: DType, precision: Precision, keepFloat32 = false): DType {
  if (keepFloat32 && dtype === "float32") return dtype;
  if (precision === "fp16" && (dtype === "float32" || dtype === "float64")) return "float16";
  return dtype;
}

/** Layers that can write their output in any layout and read inputs in any layout. */
const LAYOUT_AGNOSTIC = new Set<Layer["type"]>([
  "elementwise",
  "unary",
  "activation",
  "scale",
  "cast",
  "select",
  "identity",
  "quantize",
  "dequantize",
  "padding",
  "concatenation",
  "pooling",
  "adaptive_pooling",
  "resize",
  "convolution",
  "deconvolution",
]);
const SPATIAL = new Set<Layer["type"]>(["convolution", "deconvolution", "pooling", "adaptive_pooling"]);

export function planTensors(net: Network, opts: TensorPlanOptions): Map<string, TensorInfo> {
  const infos = new Map<string, TensorInfo>();
  const outputs = new Set(net.outputs);
  const inputs = new Set(net.inputs);
  const constants = new Set(net.layers.filter((l) => l.type === "constant").map((l) => l.output));
  for (const [name, t] of Object.entries(net.tensors)) {
    const role: TensorRole = inputs.has(name)
      ? "input"
      : outputs.has(name)
        ? "output"
        : constants.has(name)
          ? "constant"
          : "activation";
    const io = role === "input" || role === "output";
    infos.set(name, {
      name,
      shape: t.shape,
      logicalDType: t.dtype,
      storage: io ? t.dtype : storageDType(t.dtype, opts.precision, opts.keepFloat32),
      layout: identityLayout(t.shape.length),
      role,
    });
  }
  if (opts.channelsLast) assignChannelsLast(net, infos);
  assignAttentionOutputLayouts(net, infos);
  assignViews(net, infos);
  assignStridedAttentionOperands(net, infos);
  return infos;
}

function assignChannelsLast(net: Network, infos: Map<string, TensorInfo>): void {
  const free = (t: string | undefined) => t !== undefined && infos.get(t)?.role === "activation";
  const cl = new Set<string>();
  const spatialRank = (t: string | undefined) => {
    if (t === undefined) return false;
    const r = infos.get(t)?.shape.length ?? 0;
    return r === 4 || r === 5;
  };
  for (const l of net.layers) {
    if (!SPATIAL.has(l.type)) continue;
    for (const t of [l.inputs[0], l.output]) if (t !== undefined && free(t) && spatialRank(t)) cl.add(t);
  }
  // Spread through layout-agnostic layers until nothing changes: outputs follow a channels-last input of their
  // own shape, and inputs of a channels-last output's shape follow it.
  for (let round = 0, changed = true; changed && round < 64; round++) {
    changed = false;
    for (const l of net.layers) {
      if (!LAYOUT_AGNOSTIC.has(l.type) || SPATIAL.has(l.type)) continue;
      const outShape = infos.get(l.output)!.shape.join();
      const same = l.inputs.filter((i) => infos.get(i)?.shape.join() === outShape && spatialRank(i));
      if (!cl.has(l.output) && free(l.output) && spatialRank(l.output) && same.some((i) => cl.has(i))) {
        cl.add(l.output);
        changed = true;
      }
      if (cl.has(l.output)) {
        for (const i of same) {
          if (!cl.has(i) && free(i)) {
            cl.add(i);
            changed = true;
          }
        }
      }
    }
  }
  for (const t of cl) {
    const info = infos.get(t)!;
    info.layout = channelsLast(info.shape.length);
  }
}

/**
 * The layout of `to` (a reshape of `from` stored in `layout`) on the same bytes, or undefined if there is none.
 * The reshape splits the logical row-major order into groups of old axes that become groups of new axes (a
 * merge, a split, or one to one); each group's old axes must lie next to each other in memory, in their logical
 * order, so the group is one contiguous run that its new axes can split again. Size-1 axes are free. This makes
 * e.g. a channels-last conv output's flatten(2) (ViT's patch embedding) a view.
 */
export function reshapeViewLayout(from: Shape, layout: Layout, to: readonly number[]): Layout | undefined {
  const groups = reshapeGroups(from, to);
  if (!groups) return undefined;
  const memoryPos = new Map(layout.map((a, i) => [a, i] as const));
  const placed: { at: number; axes: number[] }[] = [];
  for (const g of groups) {
    const real = g.from.filter((a) => from[a] !== 1);
    const pos = real.map((a) => memoryPos.get(a) as number);
    // consecutive in memory, in logical order (memory position rises by one per axis)
    if (pos.some((p, i) => i > 0 && p !== pos[i - 1] + 1)) return undefined;
    placed.push({ at: pos.length > 0 ? pos[0] : Number.POSITIVE_INFINITY, axes: g.to });
  }
  return placed.sort((a, b) => a.at - b.at).flatMap((g) => g.axes);
}

/** Old and new axes grouped so each group holds the same elements: [{ from: old axes, to: new axes }, …]. */
function reshapeGroups(from: Shape, to: readonly number[]): { from: number[]; to: number[] }[] | undefined {
  if (from.reduce((p, d) => p * d, 1) !== to.reduce((p, d) => p * d, 1)) return undefined;
  const groups: { from: number[]; to: number[] }[] = [];
  let i = 0;
  let j = 0;
  while (i < from.length || j < to.length) {
    const g = { from: [] as number[], to: [] as number[] };
    let a = 1;
    let b = 1;
    if (i < from.length) {
      g.from.push(i);
      a *= from[i++];
    }
    if (j < to.length) {
      g.to.push(j);
      b *= to[j++];
    }
    while (a !== b) {
      if (a < b ? i >= from.length : j >= to.length) return undefined;
      if (a < b) {
        g.from.push(i);
        a *= from[i++];
      } else {
        g.to.push(j);
        b *= to[j++];
      }
    }
    groups.push(g);
  }
  return groups;
}

/** The memory order a shuffle's output has when it reuses its input's bytes, or undefined if it cannot. */
export function shuffleViewLayout(
  layer: Extract<Layer, { type: "shuffle" }>,
  inShape: Shape,
  inLayout: Layout,
): Layout | undefined {
  let shape: number[] = [...inShape];
  let layout: number[] = [...inLayout];
  if (layer.firstTranspose) {
    const inv = invertPermutation(layer.firstTranspose);
    layout = layout.map((a) => inv[a]);
    const s = shape;
    shape = layer.firstTranspose.map((p) => s[p]);
  }
  if (layer.reshape) {
    const reshaped = isRowMajor(shape, layout)
      ? identityLayout(layer.reshape.length)
      : reshapeViewLayout(shape, layout, layer.reshape);
    if (!reshaped) return undefined;
    shape = [...layer.reshape];
    layout = [...reshaped];
  }
  if (layer.secondTranspose) {
    const inv = invertPermutation(layer.secondTranspose);
    layout = layout.map((a) => inv[a]);
  }
  return layout;
}

function assignViews(net: Network, infos: Map<string, TensorInfo>): void {
  for (const l of net.layers) {
    const out = infos.get(l.output)!;
    if (out.role !== "activation") continue;
    const src = infos.get(l.inputs[0] ?? "");
    if (!src || src.role === "output") continue;
    if (l.type === "identity" || (l.type === "cast" && src.storage === out.storage)) {
      if (src.storage !== out.storage) continue;
      out.layout = src.layout;
      out.viewOf = l.inputs[0];
    } else if (l.type === "shuffle" && src.storage === out.storage) {
      const layout = shuffleViewLayout(l, src.shape, src.layout);
      if (layout) {
        out.layout = layout;
        out.viewOf = l.inputs[0];
      }
    }
  }
}

/** The tensor that owns the memory `name` lives in (itself unless it is a view). */
export function storageRoot(infos: ReadonlyMap<string, TensorInfo>, name: string): string {
  let t = name;
  for (let info = infos.get(t); info?.viewOf !== undefined; info = infos.get(t)) t = info.viewOf;
  return t;
}

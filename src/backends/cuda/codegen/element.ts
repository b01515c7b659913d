/**
 * Element kernels: one thread per element of a root tensor, computing a fused group of layers whose values are
 * functions of output coordinates: pointwise math with broadcasting, casts, data movement (shuffle, slice,
 * padding, concatenation, gather, resize), windowed loops (pooling, direct and depthwise convolution). Members
 * of the group are inlined at the coordinates their consumer needs; everything else is loaded through its
 * layout's strides. The root and any extra outputs (same shape as the root) are stored at the thread's coords.
 */
import { DTYPE_BYTES, type DType } from "../../../ir/dtype.js";
import { numel } from "../../../ir/tensor.js";
import type { Layer, LayerOf } from "../../../network/layers/index.js";
import type { TensorInfo } from "../plan/tensors.js";
import { computeCType, convert, floatLiteral, isFloatDType, literal, lowest } from "./ctypes.js";
import { decompose, Emitter, indexType, laneCoord } from "./emitter.js";
import { activationExpr, binaryExpr, unaryExpr } from "./scalar-ops.js";

export interface ElementGroup {
  /** Members in topological order. */
  readonly layers: readonly Layer[];
  /** The iteration tensor (a member's output). */
  readonly root: string;
  /** Tensors stored by the kernel: the root first, then members read outside the group (same shape as the root). */
  readonly outputs: readonly string[];
  /** Also sum the root over its spatial axes, per tile of pixels (codegen/channel-sums.ts). */
  readonly channelSums?: ChannelSums;
}

/**
 * Per-tile channel sums of a group's root [N, C, H, W] (channels innermost in memory), written beside it so that a
 * spatial mean of the root (squeeze-excite's pooling) needs no kernel of its own and no second read of the root.
 */
export interface ChannelSums {
  /** fp32 [N, tiles, C]: partials[n, p, c] sums the root's stored values over tile p's pixels of sample n. */
  readonly partials: string;
  readonly tiles: number;
}

export interface GeneratedKernel {
  readonly name: string;
  readonly source: string;
  /** Tensors passed as pointers, in parameter order. */
  readonly params: readonly { tensor: string; written: boolean }[];
  readonly grid: readonly [number, number, number];
  readonly block: readonly [number, number, number];
  readonly sharedBytes: number;
}

export interface CodegenContext {
  info(tensor: string): TensorInfo;
  /** The value of a one-element constant, inlined as a literal. */
  scalarConstant(tensor: string): number | undefined;
}

/** Threads per block of a thread-per-item kernel (threadPerItemKernel's launch; the kernels index with it). */
export const ITEM_BLOCK = 256;

export function generateElementKernel(
  name: string,
  group: ElementGroup,
  ctx: CodegenContext,
): GeneratedKernel {
  const e = new Emitter(ctx.info, groupIndexType(group, ctx));
  const idx = e.idx;
  const root = ctx.info(group.root);
  const n = numel(root.shape);
  const { axis, width: V } = vectorWidth(group, ctx);
  const threads = n / V;
  e.line(`const ${idx} i = (${idx})blockIdx.x * ${ITEM_BLOCK} + threadIdx.x;`);
  e.line(`if (i >= ${threads}) return;`);
  const coords = decompose(e, V === 1 ? "i" : `i * ${V}`, root.shape, root.layout);
  storeGroupOutputs(e, group, ctx, coords, { axis, width: V });
  return threadPerItemKernel(name, e, threads);
}

/** A kernel of `threads` items in 256-thread blocks (the body returns early past the last item). */
export function threadPerItemKernel(name: string, e: Emitter, threads: number): GeneratedKernel {
  const source = `extern "C" __global__ void __launch_bounds__(${ITEM_BLOCK}) ${name}(${e.signature()}) {\n${e.body()}\n}\n`;
  return {
    name,
    source,
    params: e.params,
    grid: [Math.max(1, Math.ceil(threads / ITEM_BLOCK)), 1, 1],
    block: [ITEM_BLOCK, 1, 1],
    sharedBytes: 0,
  };
}

/** The index type of a group's kernel: every tensor it touches, and `extra` element counts. */
export function groupIndexType(
  group: ElementGroup,
  ctx: CodegenContext,
  extra: readonly number[] = [],
): string {
  const touched = new Set<string>([
    ...group.outputs,
    ...group.layers.flatMap((l) => [...l.inputs, l.output]),
  ]);
  return indexType([...[...touched].map((t) => numel(ctx.info(t).shape)), ...extra].map((v) => v * 4));
}

/**
 * Computes and stores every output of the group at the thread's root coords (V lanes along `axis`, one wide store
 * where the output allows); returns the root's lane values (compute type), in lane order.
 */
export function storeGroupOutputs(
  e: Emitter,
  group: ElementGroup,
  ctx: CodegenContext,
  coords: readonly string[],
  lanes: { axis: number; width: number },
): string[] {
  const g = new ElementEmitter(e, new Map(group.layers.map((l) => [l.output, l] as const)), ctx);
  const { axis, width: V } = lanes;
  const at =
    V === 1
      ? [coords]
      : Array.from({ length: V }, (_, j) =>
          coords.map((c, a) => (a === axis ? laneCoord(coords[axis], j) : c)),
        );
  if (V > 1) e.vec = { base: coords[axis], width: V };
  let root: string[] = [];
  for (const out of group.outputs) {
    const info = ctx.info(out);
    const values = at.map((lc) => g.value(out, lc));
    if (V > 1 && e.vectorizable(out, axis)) e.storeVector(out, coords, values, info.logicalDType);
    else for (const [j, v] of values.entries()) e.store(out, at[j], v, info.logicalDType);
    if (out === group.root) root = values;
  }
  e.vec = undefined;
  return root;
}

/** Lanes a thread moves at once along an axis of `count` elements of `storageBytes` each: 16 bytes, or 1. */
export function lanesFor(count: number, storageBytes: number): number {
  const v = storageBytes === 2 ? 8 : storageBytes === 4 ? 4 : 1;
  return count % v === 0 ? v : 1;
}

/**
 * Lanes per thread: 8 (2-byte root) or 4 (4-byte root) consecutive elements along the root's innermost memory
 * axis, when that axis divides evenly and every member can be computed lane by lane (loops only where they
 * are lane-aware: depthwise convolution and pooling over other axes).
 */
export function vectorWidth(group: ElementGroup, ctx: CodegenContext): { axis: number; width: number } {
  const root = ctx.info(group.root);
  const axis = root.layout.filter((a) => root.shape[a] !== 1).at(-1);
  if (axis === undefined) return { axis: 0, width: 1 };
  const bytes = Math.max(...group.outputs.map((o) => DTYPE_BYTES[ctx.info(o).storage]));
  // int8 outputs only (a quantize kernel): 8 lanes, 8-byte stores and 16-byte fp16 loads. One lane per thread
  // ran ResNet-50 b128's quantize kernels at ~20% of HBM bandwidth (H100, session 16: 0.487 ms for 56²×256).
  const V = bytes === 1 ? (root.shape[axis] % 8 === 0 ? 8 : 1) : lanesFor(root.shape[axis], bytes);
  if (V === 1) return { axis, width: 1 };
  if (group.outputs.some((o) => ctx.info(o).shape.join() !== root.shape.join())) return { axis, width: 1 };
  for (const l of group.layers) {
    switch (l.type) {
      case "convolution": {
        const w = ctx.info(l.inputs[1]).shape;
        const depthwise = w[1] === 1 && l.groups === ctx.info(l.output).shape[1];
        if (!depthwise || axis !== 1 || ctx.info(l.output).shape.join() !== root.shape.join())
          return { axis, width: 1 };
        break;
      }
      case "pooling":
        if (
          axis >= ctx.info(l.inputs[0]).shape.length - l.kernel.length ||
          ctx.info(l.output).shape.join() !== root.shape.join()
        )
          return { axis, width: 1 };
        break;
      case "shuffle":
        if (
          ctx.info(l.output).shape.join() !== root.shape.join() ||
          shuffleLaneAxis(l, ctx.info(l.inputs[0]).shape, axis, V) === undefined
        )
          return { axis, width: 1 };
        break;
      // Each lane clamps and tests its own coords; a lane axis without padding keeps its lanes for the load.
      case "padding":
        if (ctx.info(l.output).shape.join() !== root.shape.join()) return { axis, width: 1 };
        break;
      case "adaptive_pooling":
      case "resize":
      case "deconvolution":
      case "gather":
      case "concatenation":
      case "slice":
      case "broadcast":
        return { axis, width: 1 };
      default:
        break;
    }
  }
  return { axis, width: V };
}

/**
 * The input axis a shuffle's output axis `axis` runs along, when V consecutive output elements on it (from a
 * multiple of V) are V consecutive elements of the input's row-major index on that axis; else undefined. Through a
 * reshape that needs the axis to be the last non-1 axis on both sides of it, each a multiple of V long (then lane
 * 0's linear index is a multiple of V and no chunk wraps). Whether the input's memory is unit-stride along the
 * axis is the load's question (Emitter.vectorizable); without it the lanes load one by one, as before.
 */
export function shuffleLaneAxis(
  layer: LayerOf<"shuffle">,
  inShape: readonly number[],
  axis: number,
  V: number,
): number | undefined {
  let a = layer.secondTranspose ? layer.secondTranspose[axis] : axis;
  if (a === undefined) return undefined;
  const y1 = layer.firstTranspose ? layer.firstTranspose.map((p) => inShape[p]) : [...inShape];
  if (layer.reshape) {
    const rs = layer.reshape;
    const lastOut = rs.findLastIndex((d) => d !== 1);
    const lastIn = y1.findLastIndex((d) => d !== 1);
    if (a !== lastOut || lastIn < 0 || rs[a] % V !== 0 || y1[lastIn] % V !== 0) return undefined;
    a = lastIn;
  }
  return layer.firstTranspose ? layer.firstTranspose[a] : a;
}

/** Coordinates of an input of shape `inShape` broadcast onto output coords (NumPy rules, right-aligned). */
export function broadcastCoords(coords: readonly string[], inShape: readonly number[]): string[] {
  const off = coords.length - inShape.length;
  return inShape.map((d, i) => (d === 1 ? "0" : coords[i + off]));
}

export class ElementEmitter {
  constructor(
    readonly e: Emitter,
    private readonly members: ReadonlyMap<string, Layer>,
    private readonly ctx: CodegenContext,
  ) {}

  private dtype(t: string): DType {
    return this.ctx.info(t).logicalDType;
  }

  /** The value of `tensor` at logical `coords`, as a C variable of its compute type. */
  value(tensor: string, coords: readonly string[]): string {
    const scalar = this.ctx.scalarConstant(tensor);
    if (scalar !== undefined) return literal(scalar, this.dtype(tensor));
    const layer = this.members.get(tensor);
    if (!layer) return this.e.load(tensor, coords);
    const key = `${tensor}@${coords.join(",")}`;
    const hit = this.e.memoGet(key);
    if (hit) return hit;
    const v = this.emitLayer(layer, coords);
    this.e.memoSet(key, v);
    return v;
  }

  private ct(t: string): string {
    return computeCType(this.dtype(t));
  }

  private emitLayer(layer: Layer, c: readonly string[]): string {
    const e = this.e;
    const out = layer.output;
    const outT = this.dtype(out);
    const ct = computeCType(outT);
    const inShape = (i: number) => this.ctx.info(layer.inputs[i]).shape;
    switch (layer.type) {
      case "identity":
        return this.value(layer.inputs[0], c);
      case "cast": {
        const x = this.value(layer.inputs[0], c);
        return e.let(ct, convert(x, this.dtype(layer.inputs[0]), layer.to));
      }
      case "elementwise": {
        const a = this.value(layer.inputs[0], broadcastCoords(c, inShape(0)));
        const b = this.value(layer.inputs[1], broadcastCoords(c, inShape(1)));
        return e.let(ct, binaryExpr(layer.op, a, b, this.dtype(layer.inputs[0])));
      }
      case "unary":
        return e.let(ct, unaryExpr(layer.op, this.value(layer.inputs[0], c), this.dtype(layer.inputs[0])));
      case "activation":
        return e.let(ct, activationExpr(layer.fn, this.value(layer.inputs[0], c), outT));
      case "scale": {
        const x = this.value(layer.inputs[0], c);
        const ch = (i: number) => (inShape(i)[0] === 1 ? ["0"] : [c[layer.channelAxis]]);
        const s = this.value(layer.inputs[1], ch(1));
        const h = this.value(layer.inputs[2], ch(2));
        return e.let(ct, `(${x} * ${s} + ${h})`);
      }
      case "select": {
        const cond = this.value(layer.inputs[0], broadcastCoords(c, inShape(0)));
        const a = this.value(layer.inputs[1], broadcastCoords(c, inShape(1)));
        const b = this.value(layer.inputs[2], broadcastCoords(c, inShape(2)));
        return e.let(ct, `(${cond} ? ${a} : ${b})`);
      }
      case "quantize":
      case "dequantize":
        return this.quant(layer, c);
      case "shuffle":
        return this.shuffleValue(layer, c);
      case "broadcast":
        return this.value(layer.inputs[0], broadcastCoords(c, inShape(0)));
      case "slice":
        return this.value(
          layer.inputs[0],
          c.map((x, i) =>
            layer.starts[i] === 0 && layer.steps[i] === 1
              ? x
              : e.let(e.idx, `${layer.starts[i]} + (${e.idx})(${x}) * ${layer.steps[i]}`, "s"),
          ),
        );
      case "padding":
        return this.padding(layer, c);
      case "concatenation":
        return this.concat(layer, c);
      case "gather":
        return this.gather(layer, c);
      case "resize":
        return this.resize(layer, c);
      case "pooling":
        return this.lanes(layer, c, (lanes) => this.pooling(layer, lanes));
      case "adaptive_pooling":
        return this.adaptivePooling(layer, c);
      case "convolution":
        return this.lanes(layer, c, (lanes) => this.convolution(layer, lanes));
      case "deconvolution":
        return this.deconvolution(layer, c);
      default:
        throw new Error(`element kernels cannot compute ${layer.type} layer '${layer.name}'`);
    }
  }

  /**
   * Loop layers in vector mode: when `c` is lane 0, computes all lanes in one loop nest and memoizes lanes
   * 1…V-1 (their coords differ only on the lane axis); otherwise one lane.
   */
  private lanes(layer: Layer, c: readonly string[], body: (lanes: string[][]) => string[]): string {
    const vec = this.e.vec;
    const axis = vec ? c.indexOf(laneCoord(vec.base, 0)) : -1;
    if (!vec || axis < 0) return body([[...c]])[0];
    const lanes = Array.from({ length: vec.width }, (_, j) =>
      c.map((x, a) => (a === axis ? laneCoord(vec.base, j) : x)),
    );
    const vals = body(lanes);
    for (const [j, lc] of lanes.entries()) this.e.memoSet(`${layer.output}@${lc.join(",")}`, vals[j]);
    return vals[0];
  }

  private quant(layer: LayerOf<"quantize"> | LayerOf<"dequantize">, c: readonly string[]): string {
    const e = this.e;
    const x = this.value(layer.inputs[0], c);
    let scale: string;
    let zp: string;
    if (layer.axis === null) {
      scale = floatLiteral(layer.scale[0]);
      zp = floatLiteral(layer.zeroPoint[0]);
    } else {
      const sv = e.fresh("qs");
      const zv = e.fresh("qz");
      e.line(
        `const float ${sv}[${layer.scale.length}] = {${layer.scale.map((v) => floatLiteral(v)).join(", ")}};`,
      );
      e.line(
        `const float ${zv}[${layer.zeroPoint.length}] = {${layer.zeroPoint.map((v) => floatLiteral(v)).join(", ")}};`,
      );
      scale = `${sv}[${c[layer.axis]}]`;
      zp = `${zv}[${c[layer.axis]}]`;
    }
    if (layer.type === "quantize") {
      const q = `(rintf((float)${x} * (1.0f / ${scale})) + ${zp})`;
      return e.let(
        computeCType(layer.dtype),
        `(${computeCType(layer.dtype)})fminf(fmaxf(${q}, ${floatLiteral(layer.qmin)}), ${floatLiteral(layer.qmax)})`,
      );
    }
    return e.let(computeCType(layer.dtype), `(((float)${x} - ${zp}) * ${scale})`);
  }

  /**
   * A shuffle in vector mode whose lanes stay consecutive in its input (shuffleLaneAxis): lane j reads the input at
   * lane 0's coords plus j on that axis, so the input is read with one wide load (the lanes' coords are given in
   * the form the emitter recognizes, with lane 0's input coordinate as the base). Otherwise lane by lane.
   */
  private shuffleValue(layer: LayerOf<"shuffle">, c: readonly string[]): string {
    const e = this.e;
    const vec = e.vec;
    const input = layer.inputs[0];
    const axis = vec ? c.findIndex((x) => x.startsWith(`${vec.base}+`)) : -1;
    const inShape = this.ctx.info(input).shape;
    const inAxis = vec && axis >= 0 ? shuffleLaneAxis(layer, inShape, axis, vec.width) : undefined;
    if (!vec || inAxis === undefined) return this.value(input, this.shuffleCoords(layer, c));
    const j = Number(c[axis].slice(vec.base.length + 1));
    const c0 = c.map((x, a) => (a === axis ? laneCoord(vec.base, 0) : x));
    // lane 0's input coords, computed once per scope (the emitter's memo holds them, newline-joined)
    const key = `shuffle:${layer.output}@${c0.join(",")}`;
    const memo = e.memoGet(key);
    const in0 = memo === undefined ? this.shuffleCoords(layer, c0) : memo.split("\n");
    if (memo === undefined) e.memoSet(key, in0.join("\n"));
    const base = in0[inAxis];
    const lane = in0.map((x, a) => (a === inAxis ? laneCoord(base, j) : x));
    e.vec = { base, width: vec.width };
    try {
      return this.value(input, lane);
    } finally {
      e.vec = vec;
    }
  }

  private shuffleCoords(layer: LayerOf<"shuffle">, c: readonly string[]): string[] {
    const e = this.e;
    const inShape = this.ctx.info(layer.inputs[0]).shape;
    let y1Shape: number[] = [...inShape];
    if (layer.firstTranspose) y1Shape = layer.firstTranspose.map((p) => inShape[p]);
    let coords: string[] = [...c];
    if (layer.secondTranspose) {
      const c2 = new Array<string>(c.length);
      layer.secondTranspose.forEach((p, i) => {
        c2[p] = c[i];
      });
      coords = c2;
    }
    if (layer.reshape) {
      const rs = layer.reshape;
      const terms: string[] = [];
      let stride = 1;
      for (let i = rs.length - 1; i >= 0; i--) {
        if (rs[i] !== 1 && coords[i] !== "0")
          terms.push(stride === 1 ? `(${e.idx})(${coords[i]})` : `(${e.idx})(${coords[i]}) * ${stride}`);
        stride *= rs[i];
      }
      const lin = e.let(e.idx, terms.length ? terms.join(" + ") : "0", "l");
      coords = decompose(
        e,
        lin,
        y1Shape,
        y1Shape.map((_, i) => i),
      );
    }
    if (layer.firstTranspose) {
      const cx = new Array<string>(coords.length);
      layer.firstTranspose.forEach((p, i) => {
        cx[p] = coords[i];
      });
      coords = cx;
    }
    return coords;
  }

  private padding(layer: LayerOf<"padding">, c: readonly string[]): string {
    const e = this.e;
    const inShape = this.ctx.info(layer.inputs[0]).shape;
    const src: string[] = [];
    const conds: string[] = [];
    c.forEach((x, i) => {
      const d = inShape[i];
      const pre = layer.pre[i];
      if (pre === 0 && layer.post[i] === 0) {
        src.push(x);
        return;
      }
      const s = e.let(e.idx, `(${e.idx})(${x}) - (${pre})`, "q");
      switch (layer.mode) {
        case "constant":
          conds.push(`(${s} >= 0 && ${s} < ${d})`);
          src.push(e.let(e.idx, `${s} < 0 ? 0 : (${s} >= ${d} ? ${d - 1} : ${s})`, "q"));
          break;
        case "reflect":
          src.push(e.let(e.idx, `${s} < 0 ? -${s} : (${s} >= ${d} ? ${2 * (d - 1)} - ${s} : ${s})`, "q"));
          break;
        case "replicate":
          src.push(e.let(e.idx, `${s} < 0 ? 0 : (${s} >= ${d} ? ${d - 1} : ${s})`, "q"));
          break;
        case "circular":
          src.push(e.let(e.idx, `((${s} % ${d}) + ${d}) % ${d}`, "q"));
          break;
      }
    });
    const v = this.value(layer.inputs[0], src);
    if (conds.length === 0) return v;
    const ct = this.ct(layer.output);
    return e.let(ct, `(${conds.join(" && ")}) ? ${v} : ${literal(layer.value, this.dtype(layer.output))}`);
  }

  private concat(layer: LayerOf<"concatenation">, c: readonly string[]): string {
    const e = this.e;
    const ct = this.ct(layer.output);
    const v = e.fresh("cat");
    e.line(`${ct} ${v};`);
    let offset = 0;
    layer.inputs.forEach((input, k) => {
      const n = this.ctx.info(input).shape[layer.axis];
      const lo = offset;
      offset += n;
      const last = k === layer.inputs.length - 1;
      const head =
        k === 0
          ? `if (${c[layer.axis]} < ${offset})`
          : last
            ? "else"
            : `else if (${c[layer.axis]} < ${offset})`;
      e.block(layer.inputs.length === 1 ? "" : head, () => {
        const cc = [...c];
        if (lo !== 0) cc[layer.axis] = e.let(e.idx, `(${e.idx})(${c[layer.axis]}) - ${lo}`, "k");
        e.line(`${v} = ${this.value(input, cc)};`);
      });
    });
    return v;
  }

  private gather(layer: LayerOf<"gather">, c: readonly string[]): string {
    const e = this.e;
    const [data, indices] = layer.inputs;
    const dShape = this.ctx.info(data).shape;
    const iShape = this.ctx.info(indices).shape;
    const size = dShape[layer.axis];
    const fix = (raw: string) => {
      const j = e.let("long long", `(long long)(${raw})`, "g");
      return e.let(
        e.idx,
        `(${e.idx})(${j} < 0 ? (${j} + ${size} < 0 ? 0 : ${j} + ${size}) : (${j} >= ${size} ? ${size - 1} : ${j}))`,
        "g",
      );
    };
    if (layer.mode === "elements") {
      const j = fix(this.value(indices, c));
      const dc = [...c];
      dc[layer.axis] = j;
      return this.value(data, dc);
    }
    const q = iShape.length;
    const j = fix(this.value(indices, c.slice(layer.axis, layer.axis + q)));
    const dc = [...c.slice(0, layer.axis), j, ...c.slice(layer.axis + q)];
    return this.value(data, dc);
  }

  private resize(layer: LayerOf<"resize">, c: readonly string[]): string {
    const e = this.e;
    const inShape = this.ctx.info(layer.inputs[0]).shape;
    const sp = layer.outputSize.length;
    const lead = inShape.length - sp;
    const taps: { i0: string; i1: string; w1: string | null }[] = [];
    for (let a = 0; a < sp; a++) {
      const axis = lead + a;
      const inp = inShape[axis];
      const outp = layer.outputSize[a];
      const o = c[axis];
      const scale = layer.scales[a];
      if (layer.mode === "nearest" || layer.mode === "nearest_exact") {
        const s = Math.fround(scale !== null && scale > 0 ? 1 / scale : inp / outp);
        let i: string;
        if (layer.mode === "nearest" && outp === inp) i = o;
        else {
          const pos =
            layer.mode === "nearest"
              ? `(float)(${o}) * ${floatLiteral(s)}`
              : `((float)(${o}) + 0.5f) * ${floatLiteral(s)}`;
          i = e.let(e.idx, `min((${e.idx})floorf(${pos}), (${e.idx})${inp - 1})`, "n");
        }
        taps.push({ i0: i, i1: i, w1: null });
      } else {
        let src: string;
        if (layer.alignCorners)
          src = outp > 1 ? `(float)(${o}) * ${floatLiteral((inp - 1) / (outp - 1))}` : "0.0f";
        else {
          const s = scale !== null && scale > 0 ? 1 / scale : inp / outp;
          src = `fmaxf(${floatLiteral(s)} * ((float)(${o}) + 0.5f) - 0.5f, 0.0f)`;
        }
        const sv = e.let("float", src, "f");
        const i0 = e.let(e.idx, `min((${e.idx})floorf(${sv}), (${e.idx})${inp - 1})`, "n");
        const i1 = e.let(e.idx, `${i0} < ${inp - 1} ? ${i0} + 1 : ${i0}`, "n");
        const w1 = e.let("float", `${sv} - (float)${i0}`, "w");
        taps.push({ i0, i1, w1 });
      }
    }
    const terms: string[] = [];
    for (let mask = 0; mask < 1 << sp; mask++) {
      if (taps.some((t, a) => mask & (1 << a) && t.w1 === null)) continue;
      const cc = [...c];
      const weights: string[] = [];
      taps.forEach((t, a) => {
        const hi = (mask >> a) & 1;
        cc[lead + a] = hi ? t.i1 : t.i0;
        if (t.w1 !== null) weights.push(hi ? t.w1 : `(1.0f - ${t.w1})`);
      });
      const v = this.value(layer.inputs[0], cc);
      terms.push(weights.length ? `${weights.join(" * ")} * (float)${v}` : `(float)${v}`);
    }
    return e.let(this.ct(layer.output), terms.join(" + "));
  }

  private pooling(layer: LayerOf<"pooling">, lanes: readonly (readonly string[])[]): string[] {
    const e = this.e;
    const c = lanes[0];
    const input = layer.inputs[0];
    const inShape = this.ctx.info(input).shape;
    const sp = layer.kernel.length;
    const lead = inShape.length - sp;
    const ct = this.ct(layer.output);
    const max = layer.mode === "max";
    const accs = lanes.map(() => e.fresh("acc"));
    const cnt = e.fresh("cnt");
    for (const acc of accs)
      e.line(`${max ? ct : "float"} ${acc} = ${max ? lowest(this.dtype(layer.output)) : "0.0f"};`);
    e.line(`int ${cnt} = 0;`);
    const starts: string[] = [];
    for (let a = 0; a < sp; a++)
      starts.push(
        e.let(e.idx, `(${e.idx})(${c[lead + a]}) * ${layer.stride[a]} - ${layer.padding[a]}`, "st"),
      );
    const loop = (a: number, pos: string[]) => {
      if (a === sp) {
        lanes.forEach((lc, j) => {
          const x = this.value(input, [...lc.slice(0, lead), ...pos]);
          if (max) e.line(`if (${x} != ${x} || ${x} > ${accs[j]}) ${accs[j]} = ${x};`);
          else e.line(`${accs[j]} += (float)${x};`);
        });
        e.line(`${cnt}++;`);
        return;
      }
      const k = e.fresh("k");
      e.block(`for (int ${k} = 0; ${k} < ${layer.kernel[a]}; ++${k})`, () => {
        const p = e.let(e.idx, `${starts[a]} + ${k} * ${layer.dilation[a]}`, "ix");
        e.line(`if (${p} < 0 || ${p} >= ${inShape[lead + a]}) continue;`);
        loop(a + 1, [...pos, p]);
      });
    };
    loop(0, []);
    if (max) return accs;
    let divisor: string;
    if (layer.divisorOverride !== null) divisor = floatLiteral(layer.divisorOverride);
    else if (!layer.countIncludePad) divisor = `(float)${cnt}`;
    else {
      const sizes = starts.map((s0, a) => {
        const end = `min(${s0} + ${(layer.kernel[a] - 1) * layer.dilation[a] + 1}, (${e.idx})${inShape[lead + a] + layer.padding[a]})`;
        return `(float)(${end} - ${s0})`;
      });
      divisor = sizes.join(" * ");
    }
    const d = e.let("float", divisor, "div");
    return accs.map((acc) => e.let(ct, `${acc} / ${d}`));
  }

  private adaptivePooling(layer: LayerOf<"adaptive_pooling">, c: readonly string[]): string {
    const e = this.e;
    const input = layer.inputs[0];
    const inShape = this.ctx.info(input).shape;
    const sp = layer.outputSize.length;
    const lead = inShape.length - sp;
    const ct = this.ct(layer.output);
    const max = layer.mode === "max";
    const acc = e.fresh("acc");
    e.line(`${max ? ct : "float"} ${acc} = ${max ? lowest(this.dtype(layer.output)) : "0.0f"};`);
    const bounds: [string, string][] = [];
    for (let a = 0; a < sp; a++) {
      const inp = inShape[lead + a];
      const outp = layer.outputSize[a];
      const o = c[lead + a];
      const lo = e.let(e.idx, `((${e.idx})(${o}) * ${inp}) / ${outp}`, "lo");
      const hi = e.let(e.idx, `((${e.idx})(${o}) * ${inp} + ${inp + outp - 1}) / ${outp}`, "hi");
      bounds.push([lo, hi]);
    }
    const loop = (a: number, cc: string[]) => {
      if (a === sp) {
        const x = this.value(input, cc);
        if (max) e.line(`if (${x} != ${x} || ${x} > ${acc}) ${acc} = ${x};`);
        else e.line(`${acc} += (float)${x};`);
        return;
      }
      const k = e.fresh("k");
      e.block(`for (${e.idx} ${k} = ${bounds[a][0]}; ${k} < ${bounds[a][1]}; ++${k})`, () => {
        const next = [...cc];
        next[lead + a] = k;
        loop(a + 1, next);
      });
    };
    loop(0, [...c]);
    if (max) return acc;
    const count = bounds.map(([lo, hi]) => `(float)(${hi} - ${lo})`).join(" * ");
    return e.let(ct, `${acc} / (${count})`);
  }

  /** Direct convolution: loops over the input channels of the group and the kernel window, all lanes at once. */
  private convolution(layer: LayerOf<"convolution">, lanes: readonly (readonly string[])[]): string[] {
    const e = this.e;
    const c = lanes[0];
    const [x, w, b] = layer.inputs;
    const xShape = this.ctx.info(x).shape;
    const wShape = this.ctx.info(w).shape;
    const outShape = this.ctx.info(layer.output).shape;
    const sp = wShape.length - 2;
    const cinG = wShape[1];
    const coutG = outShape[1] / layer.groups;
    const accs = lanes.map((lc) => {
      const acc = e.fresh("acc");
      e.line(`float ${acc} = ${b ? `(float)${this.value(b, [lc[1]])}` : "0.0f"};`);
      return acc;
    });
    const grps = lanes.map((lc) =>
      layer.groups === 1 ? "0" : coutG === 1 ? lc[1] : e.let(e.idx, `(${e.idx})(${lc[1]}) / ${coutG}`, "grp"),
    );
    const ci = e.fresh("ci");
    e.block(`for (int ${ci} = 0; ${ci} < ${cinG}; ++${ci})`, () => {
      const xcs = grps.map((grp) =>
        layer.groups === 1 ? ci : cinG === 1 ? grp : e.let(e.idx, `${grp} * ${cinG} + ${ci}`, "xc"),
      );
      const loop = (a: number, pos: string[], ks: string[]) => {
        if (a === sp) {
          lanes.forEach((lc, j) => {
            const xv = this.value(x, [lc[0], xcs[j], ...pos]);
            const wv = this.value(w, [lc[1], cinG === 1 ? "0" : ci, ...ks]);
            e.line(`${accs[j]} += (float)${xv} * (float)${wv};`);
          });
          return;
        }
        const k = e.fresh("k");
        e.block(`for (int ${k} = 0; ${k} < ${wShape[a + 2]}; ++${k})`, () => {
          const p = e.let(
            e.idx,
            `(${e.idx})(${c[a + 2]}) * ${layer.stride[a]} - ${layer.padding[a]} + ${k} * ${layer.dilation[a]}`,
            "ix",
          );
          e.line(`if (${p} < 0 || ${p} >= ${xShape[a + 2]}) continue;`);
          loop(a + 1, [...pos, p], [...ks, k]);
        });
      };
      loop(0, [], []);
    });
    return accs;
  }

  private deconvolution(layer: LayerOf<"deconvolution">, c: readonly string[]): string {
    const e = this.e;
    const [x, w, b] = layer.inputs;
    const xShape = this.ctx.info(x).shape;
    const wShape = this.ctx.info(w).shape;
    const sp = wShape.length - 2;
    const cinG = xShape[1] / layer.groups;
    const coutG = wShape[1];
    const acc = e.fresh("acc");
    e.line(`float ${acc} = ${b ? `(float)${this.value(b, [c[1]])}` : "0.0f"};`);
    const grp = layer.groups === 1 ? "0" : e.let(e.idx, `(${e.idx})(${c[1]}) / ${coutG}`, "grp");
    const cog = layer.groups === 1 ? c[1] : e.let(e.idx, `(${e.idx})(${c[1]}) - ${grp} * ${coutG}`, "cog");
    const ci = e.fresh("ci");
    e.block(`for (int ${ci} = 0; ${ci} < ${cinG}; ++${ci})`, () => {
      const xc = layer.groups === 1 ? ci : e.let(e.idx, `${grp} * ${cinG} + ${ci}`, "xc");
      const loop = (a: number, xcc: string[], wcc: string[]) => {
        if (a === sp) {
          e.line(`${acc} += (float)${this.value(x, xcc)} * (float)${this.value(w, wcc)};`);
          return;
        }
        const k = e.fresh("k");
        e.block(`for (int ${k} = 0; ${k} < ${wShape[a + 2]}; ++${k})`, () => {
          const num = e.let(
            e.idx,
            `(${e.idx})(${c[a + 2]}) + ${layer.padding[a]} - ${k} * ${layer.dilation[a]}`,
            "nm",
          );
          e.line(`if (${num} < 0 || ${num} % ${layer.stride[a]} != 0) continue;`);
          const pos = e.let(e.idx, `${num} / ${layer.stride[a]}`, "ix");
          e.line(`if (${pos} >= ${xShape[a + 2]}) continue;`);
          loop(a + 1, [...xcc, pos], [...wcc, k]);
        });
      };
      loop(0, [c[0], xc], [xc, cog]);
    });
    return acc;
  }
}

/** Whether `layer` can be computed by an element kernel (as a fused member or on its own). */
export function isElementLayer(layer: Layer): boolean {
  if (isPointwiseLayer(layer) || isMovementLayer(layer)) return true;
  switch (layer.type) {
    case "gather":
    case "resize":
    case "pooling":
    case "adaptive_pooling":
    case "convolution":
    case "deconvolution":
      return true;
    default:
      return false;
  }
}

/** Layers whose value at a coordinate is cheap pointwise math on inputs at the same (broadcast) coordinate. */
export function isPointwiseLayer(layer: Layer): boolean {
  switch (layer.type) {
    case "identity":
    case "cast":
    case "elementwise":
    case "unary":
    case "activation":
    case "scale":
    case "select":
    case "quantize":
    case "dequantize":
      return true;
    default:
      return false;
  }
}

/** Layers that read each input element at most once per output element with no arithmetic (pure data movement). */
export function isMovementLayer(layer: Layer): boolean {
  return (
    layer.type === "shuffle" ||
    layer.type === "slice" ||
    layer.type === "padding" ||
    layer.type === "broadcast" ||
    layer.type === "concatenation"
  );
}

export { isFloatDType };

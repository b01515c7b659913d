/**
 * Turns a planned network into an ordered list of steps. Walks layers in topological order:
 *  - views and constants need no step;
 *  - a cuDNN convolution absorbs the chain of pointwise layers after it that cuDNN's fused graph can run
 *    (longest chain the caller's `convSupported` accepts); a matmul absorbs a row bias and relu/gelu;
 *  - element layers join the group of a producer when the result is still one thread per output element
 *    (same-shape pointwise, or pure data movement of a tensor nothing else reads) and the group has not yet
 *    been read by an earlier step;
 *  - operands in the wrong layout or dtype for a library call get a relayout step in front.
 */
import { numel } from "../../../ir/tensor.js";
import type { Layer, LayerOf } from "../../../network/layers/index.js";
import type { Network } from "../../../network/network.js";
import { type ChannelSums, isElementLayer, isMovementLayer, isPointwiseLayer } from "../codegen/element.js";
import { chooseAttentionKernel } from "../codegen/flash-attention.js";
import { perChannel } from "../plan/fold.js";
import { channelsLast, identityLayout, type Layout, layoutKey } from "../plan/layout.js";
import { type Precision, storageDType, storageRoot, type TensorInfo } from "../plan/tensors.js";
import { int8ConvInputs } from "./int8-conv-rule.js";
import {
  denseChannelsLast,
  pointwiseConvPlan,
  pointwiseGemmEligible,
  preferDirectConv,
} from "./pointwise-conv-rule.js";
import { type RowsScheduleView, rowsEpilogue, rowsPrologue } from "./rows-fusion.js";
import { spatialMeanFold } from "./spatial-mean-fold.js";
import type {
  ConvActivationKind,
  ConvEpilogueOp,
  ConvStep,
  FusedRowsStep,
  Int8ConvInput,
  MatmulStep,
  SpatialMeanSource,
  Step,
} from "./steps.js";

export interface ScheduleOptions {
  readonly precision: Precision;
  /** fp16 mode: convolutions and matmuls on float32 tensors run in float32 (plan/tensors.ts storageDType). */
  readonly keepFloat32?: boolean;
  /** Whether the convolution library can run this step (the builder plans it and keeps the plan). */
  convSupported(step: ConvStep): boolean;
  matmulSupported(step: MatmulStep): boolean;
  /** Largest element group (layers); default 48. */
  readonly maxGroupLayers?: number;
  /**
   * Convolutions whose input is dequantize(quantize(x)) read quantize's int8 output (int8-conv-rule.ts); the
   * step carries ConvStep.int8 and `convSupported` decides whether the library runs it. Default off.
   */
  readonly int8Convs?: boolean;
  /**
   * Keep exact GELU as its own kernel instead of cuBLASLt's tanh-form epilogue (geluEpilogue): with sparse
   * weights on, a fused GELU would take an fc1 away from cuSPARSELt, which fuses GELU for int8/fp8 only.
   */
  readonly exactGeluApart?: boolean;
}

interface MutableGroup {
  layers: Layer[];
  root: string;
  outputs: string[];
  channelSums?: ChannelSums;
}

interface OpenGroup {
  layers: Layer[];
  root: string;
  /** Member outputs whose coordinates equal the root's (safe to store from this kernel). */
  identity: Set<string>;
  step: { kind: "element"; group: MutableGroup };
}

interface MutableGroupStep {
  kind: "element";
  group: MutableGroup;
}

/** Largest hidden width of a merged gemv pair (its fp32 values sit in 16 KiB of shared memory). */
export const MAX_EXCITE_HIDDEN = 4096;
/**
 * Above this batch the two SE gemvs stay apart: one launch saved is worth less than the merged kernel's lost
 * parallelism. H100, session 4 run 1 (bench/RESULTS.md): EfficientNet-B0 GPU time merged vs apart 0.389 / 0.394 ms
 * at batch 1, 3.668 / 3.614 ms at batch 128; the crossover between them was not measured.
 */
const MAX_EXCITE_BATCH = 8;

/**
 * Whether cuBLASLt's GELU epilogue (the tanh form) may stand in for this activation. tanh-GELU always; exact
 * (erf) GELU too when the matmul stores fp16/bf16: the two differ by at most 4.7e-4 (at x ≈ −2.7, where GELU is
 * −0.0094), below what an fp16 engine's 1e-2 tolerance can see, and the fused epilogue saves a full read and
 * write of the widest activation in a transformer (ViT-B/16 batch 64: 12 × [12608, 3072]). The plan summary
 * says where it happened ("+gelu(tanh for erf)"); TORCHC_GELU_EPILOGUE=0 keeps exact GELU as its own kernel.
 * `keepExact`: a library that may replace the cuBLASLt plan after scheduling fuses no GELU (the int8 GEMM of a
 * quantized linear, cuSPARSELt in fp16/bf16), so exact GELU stays its own kernel there.
 */
export function geluEpilogue(kind: string, storage: string, keepExact = false): boolean {
  if (kind === "gelu_tanh") return true;
  return (
    kind === "gelu_erf" &&
    !keepExact &&
    (storage === "float16" || storage === "bfloat16") &&
    process.env.TORCHC_GELU_EPILOGUE !== "0"
  );
}

/** One layer a matmul's epilogue takes in, with what it is to the library. */
type MatmulEpilogueOp =
  | { readonly role: "bias"; readonly layer: Layer; readonly tensor: string }
  | { readonly role: "act"; readonly layer: Layer; readonly fn: "relu" | "gelu" }
  | { readonly role: "residual"; readonly layer: Layer; readonly tensor: string };

/**
 * Outputs of at least this many elements add their block's residual in the matmul epilogue by default. H100,
 * session 13 (with timed cuBLASLt algorithms): ViT-B/16 batch 64 (outputs 9.7 M elements) 5.143 → 4.930 ms, its
 * 25 norms 0.676 → 0.378 ms; DeiT-tiny batch 64 (2.4 M) 1.056 → 0.971; DeiT-tiny batch 128 (4.8 M) 1.690 → 1.703
 * (norms −0.10, cuBLASLt +0.14: not separated between timed algorithms, chosen then with beta 0, and reading C); batch 1 (≤ 0.15 M) 0.289 → 0.297, so
 * small outputs keep the add in the norm.
 */
export const GEMM_RESIDUAL_MIN_ELEMENTS = 1 << 20;

/**
 * Whether a matmul with `elements` output elements adds its block's residual itself (cuBLASLt's beta·C, the
 * generated small GEMM's residual epilogue). It moves the add out of the next norm's prologue, so that kernel reads
 * one tensor and writes one instead of two and two, at the price of the GEMM reading C. TORCHC_GEMM_RESIDUAL=1
 * fuses at every size, =0 never; by default from GEMM_RESIDUAL_MIN_ELEMENTS up.
 */
export function gemmResidualEnabled(elements: number, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.TORCHC_GEMM_RESIDUAL === "1") return true;
  if (env.TORCHC_GEMM_RESIDUAL === "0") return false;
  return elements >= GEMM_RESIDUAL_MIN_ELEMENTS;
}

const CONV_ACTS: ReadonlySet<string> = new Set(["relu", "silu", "sigmoid", "tanh", "gelu_erf", "gelu_tanh"]);

export function schedule(net: Network, infos: Map<string, TensorInfo>, opts: ScheduleOptions): Step[] {
  return new Scheduler(net, infos, opts).run();
}

class Scheduler {
  private readonly steps: (Step | MutableGroupStep)[] = [];
  private readonly index = new Map<Layer, number>();
  private readonly producer = new Map<string, Layer>();
  private readonly consumers = new Map<string, Layer[]>();
  private readonly consumed = new Set<Layer>();
  private readonly groupOf = new Map<string, OpenGroup>();
  private readonly outputs: Set<string>;
  private readonly relayouts = new Map<string, string>();
  /** Spatial means no step stores: their gemv reader adds up its producer's tile sums (spatial-mean-fold.ts). */
  private readonly foldedMeans = new Map<string, SpatialMeanSource>();
  /** Dequantize outputs left to the int8 convolutions reading them (placed only if one of them is refused). */
  private readonly int8Inputs: Map<string, Int8ConvInput>;
  private current = 0;

  constructor(
    private readonly net: Network,
    private readonly infos: Map<string, TensorInfo>,
    private readonly opts: ScheduleOptions,
  ) {
    net.layers.forEach((l, i) => {
      this.index.set(l, i);
      this.producer.set(l.output, l);
      for (const t of l.inputs) this.consumers.set(t, [...(this.consumers.get(t) ?? []), l]);
    });
    this.outputs = new Set(net.outputs);
    this.int8Inputs = opts.int8Convs ? int8ConvInputs(this.rowsView(), net.layers) : new Map();
  }

  run(): Step[] {
    for (const layer of this.net.layers) {
      this.current = this.index.get(layer)!;
      if (this.consumed.has(layer) || layer.type === "constant") continue;
      if (this.infos.get(layer.output)?.viewOf !== undefined) continue;
      if (this.int8Inputs.has(layer.output)) continue;
      this.place(layer);
    }
    this.finalizeOutputs();
    return this.steps.map((s) => {
      if (s.kind !== "element") return s;
      const g = s.group;
      const group = { layers: g.layers, root: g.root, outputs: g.outputs };
      return {
        kind: "element",
        group: g.channelSums ? { ...group, channelSums: g.channelSums } : group,
      } as Step;
    });
  }

  private info(t: string): TensorInfo {
    const i = this.infos.get(t);
    if (!i) throw new Error(`no tensor info for '${t}'`);
    return i;
  }

  /** Layers that read `t`'s memory: its consumers and, through views, theirs. */
  private readers(t: string): Layer[] {
    const out: Layer[] = [];
    for (const c of this.consumers.get(t) ?? []) {
      if (this.infos.get(c.output)?.viewOf === t) out.push(...this.readers(c.output), c);
      else out.push(c);
    }
    return out;
  }

  /** Network outputs reachable from `t` through views (they are read after the engine runs). */
  private isOutputish(t: string): boolean {
    if (this.outputs.has(t)) return true;
    return (this.consumers.get(t) ?? []).some(
      (c) => this.infos.get(c.output)?.viewOf === t && this.isOutputish(c.output),
    );
  }

  private place(layer: Layer): void {
    switch (layer.type) {
      case "convolution":
        if (this.tryConv(layer)) return;
        this.placeElement(layer);
        return;
      case "matmul":
        this.placeMatmul(layer);
        return;
      case "reduce":
        if (!this.foldSpatialMean(layer)) this.steps.push({ kind: "reduce", layer });
        return;
      case "adaptive_pooling": {
        const x = this.info(layer.inputs[0]);
        const window =
          numel(x.shape.slice(x.shape.length - layer.outputSize.length)) / numel(layer.outputSize);
        if (layer.outputSize.every((o) => o === 1) && window > 16) {
          if (!this.foldSpatialMean(layer)) this.steps.push({ kind: "reduce", layer });
        } else this.placeElement(layer);
        return;
      }
      case "softmax":
      case "normalization":
        this.placeRows(layer);
        return;
      case "attention":
        this.steps.push({
          kind: "attention",
          layer,
          choice: chooseAttentionKernel(layer, (t) => this.info(t)),
        });
        return;
      default:
        if (!isElementLayer(layer))
          throw new Error(`no CUDA implementation for ${layer.type} layer '${layer.name}'`);
        this.placeElement(layer);
    }
  }

  /**
   * The mean's producer group also writes tile sums and is closed (a member joining later could change the
   * kernel's root or lanes); the mean gets no step.
   */
  private foldSpatialMean(layer: LayerOf<"reduce"> | LayerOf<"adaptive_pooling">): boolean {
    const fold = spatialMeanFold(this.rowsView(), layer);
    if (!fold) return false;
    const g = this.groupOf.get(fold.root);
    if (!g || g.step.group.channelSums || !this.steps.includes(g.step)) return false;
    this.infos.set(fold.partials.name, fold.partials);
    g.step.group.channelSums = { partials: fold.source.partials, tiles: fold.source.tiles };
    for (const l of g.layers) this.groupOf.delete(l.output);
    this.foldedMeans.set(layer.output, fold.source);
    return true;
  }

  // ------------------------------------------------------------------------------------- rows kernels

  /**
   * A layer-norm or softmax kernel that also computes the element group making its input (the residual add of a
   * pre-norm block, casts; the scores' bias and mask) and the pointwise chain after it (the cast back).
   * TORCHC_FUSE_ROWS=0 keeps them apart (for A/B timing).
   */
  private placeRows(layer: LayerOf<"normalization"> | LayerOf<"softmax">): void {
    const alone = (): FusedRowsStep =>
      layer.type === "softmax" ? { kind: "softmax", layer } : { kind: "normalization", layer };
    if (process.env.TORCHC_FUSE_ROWS === "0" || (layer.type === "normalization" && layer.kind === "group")) {
      this.steps.push(alone());
      return;
    }
    const pro = rowsPrologue(this.rowsView(), layer);
    if (pro) {
      const g = this.groupOf.get(pro.group);
      if (g) {
        this.steps.splice(this.steps.indexOf(g.step), 1);
        for (const l of g.layers) this.groupOf.delete(l.output);
      }
    }
    const epilogue = rowsEpilogue(this.rowsView(), layer.output);
    for (const l of epilogue) this.consumed.add(l);
    this.steps.push({ ...alone(), prologue: pro?.layers ?? [], stores: pro?.stores ?? [], epilogue });
  }

  /** What the rows fusion rules may ask of the schedule so far. */
  private rowsView(): RowsScheduleView {
    return {
      info: (t: string) => this.info(t),
      producer: (t: string) => this.producer.get(t),
      consumers: (t: string) => this.consumers.get(t) ?? [],
      readers: (t: string) => this.readers(t),
      isOutputish: (t: string) => this.isOutputish(t),
      placed: (l: Layer) => this.index.get(l)! < this.current || this.consumed.has(l),
      group: (t: string) => this.groupOf.get(t),
    };
  }

  // ------------------------------------------------------------------------------------- element groups

  private newGroup(layers: Layer[], root: string): OpenGroup {
    const g: OpenGroup = {
      layers,
      root,
      identity: new Set([root]),
      step: { kind: "element", group: { layers, root, outputs: [] } },
    };
    for (const l of layers) this.groupOf.set(l.output, g);
    return g;
  }

  /** Inputs whose values must be loaded from memory inside loops (never inlined). */
  private loopInputs(layer: Layer): Set<string> {
    switch (layer.type) {
      case "pooling":
      case "adaptive_pooling":
      case "resize":
      case "convolution":
      case "deconvolution":
        return new Set(layer.inputs);
      case "gather":
        return new Set(layer.inputs);
      default:
        return new Set();
    }
  }

  private canJoin(g: OpenGroup, layer: Layer, via: string): boolean {
    if (g.layers.length >= (this.opts.maxGroupLayers ?? 48)) return false;
    if (this.loopInputs(layer).has(via)) return false;
    const outShape = this.info(layer.output).shape.join();
    const viaInfo = this.info(via);
    const identityMap = isPointwiseLayer(layer) && viaInfo.shape.join() === outShape;
    if (!identityMap && !isMovementLayer(layer)) return false;
    // Every earlier step must not read the group (it will run later now), including a layer a step already placed
    // took in (a matmul's fused residual add comes later in order, but its step runs earlier).
    for (const m of g.layers) {
      for (const r of this.readers(m.output)) {
        const ri = this.index.get(r)!;
        if ((ri < this.current || this.consumed.has(r)) && this.groupOf.get(r.output) !== g) return false;
      }
    }
    // Anything else reading `via` (or any other member) needs it stored by this kernel at the new root's coords.
    const viaExternal =
      this.isOutputish(via) || this.readers(via).some((r) => r !== layer && this.groupOf.get(r.output) !== g);
    if (viaExternal && !(identityMap && g.identity.has(via))) return false;
    if (!identityMap) {
      for (const m of g.layers) {
        if (m.output === via) continue;
        // (`layer` itself may read a member: through views of the root, or directly; it computes it in-kernel)
        if (
          this.isOutputish(m.output) ||
          this.readers(m.output).some((r) => r !== layer && this.groupOf.get(r.output) !== g)
        )
          return false;
      }
    }
    return true;
  }

  private placeElement(layer: Layer): void {
    for (const t of new Set(layer.inputs)) this.absorbViews(t, layer);
    const joinable: OpenGroup[] = [];
    for (const t of new Set(layer.inputs)) {
      const g = this.groupOf.get(t);
      if (!g || joinable.includes(g) || g.root !== t) continue;
      if (this.canJoin(g, layer, t)) joinable.push(g);
    }
    const outShape = this.info(layer.output).shape.join();
    const identityMapped = (t: string) => isPointwiseLayer(layer) && this.info(t).shape.join() === outShape;
    if (joinable.length === 0) {
      if (this.joinSibling(layer)) return;
      const g = this.newGroup([layer], layer.output);
      this.steps.push(g.step);
      return;
    }
    // Merge the groups, in schedule order, then the layer.
    const order = joinable.sort((a, b) => this.steps.indexOf(a.step) - this.steps.indexOf(b.step));
    const layers = order.flatMap((g) => g.layers);
    const identity = new Set<string>([layer.output]);
    for (const g of order) if (identityMapped(g.root)) for (const t of g.identity) identity.add(t);
    for (const g of order) this.steps.splice(this.steps.indexOf(g.step), 1);
    const merged = this.newGroup([...layers, layer], layer.output);
    merged.identity = identity;
    this.steps.push(merged.step);
  }

  /**
   * When `t` is a view of a group's root (reshapes and transposes of it no kernel materializes: Swin's window
   * partition of a rolled tensor) read only by `layer`, the view layers join the group, re-indexing the root's
   * values, so that `layer` can join through `t` and the root is never stored. Kept only if `layer` can then join;
   * otherwise the group is left as it was. TORCHC_FUSE_VIEWS=0 turns it off (for A/B timing).
   */
  private absorbViews(t: string, layer: Layer): void {
    if (process.env.TORCHC_FUSE_VIEWS === "0") return;
    const chain: Layer[] = [];
    let cur = t;
    while (this.infos.get(cur)?.viewOf !== undefined && chain.length < 8) {
      const p = this.producer.get(cur);
      const next = chain[0] ?? layer;
      const src = p?.inputs[0];
      if (!p || src === undefined || !isElementLayer(p) || this.outputs.has(cur)) return;
      if ((this.consumers.get(cur) ?? []).some((c) => c !== next)) return;
      chain.unshift(p);
      cur = src;
    }
    const g = this.groupOf.get(cur);
    if (chain.length === 0 || !g || g.root !== cur || this.outputs.has(cur)) return;
    if ((this.consumers.get(cur) ?? []).some((c) => c !== chain[0])) return;
    // Re-rooted at `t`, the kernel iterates over the view's coordinates: no other member may still need storing
    // (it would be stored at the wrong coordinates).
    for (const m of g.layers) {
      if (m.output === cur) continue;
      const outside = (r: Layer) => r !== layer && !chain.includes(r) && this.groupOf.get(r.output) !== g;
      if (this.isOutputish(m.output) || this.readers(m.output).some(outside)) return;
    }
    const saved = { layers: [...g.layers], root: g.root, identity: g.identity };
    g.layers.push(...chain);
    for (const l of chain) this.groupOf.set(l.output, g);
    g.root = t;
    g.step.group.root = t;
    g.identity = new Set([t]);
    if (this.canJoin(g, layer, t)) return;
    for (const l of chain) this.groupOf.delete(l.output);
    g.layers.splice(0, g.layers.length, ...saved.layers);
    g.root = saved.root;
    g.step.group.root = saved.root;
    g.identity = saved.identity;
  }

  /**
   * Horizontal fusion: an element layer that reads nothing of the last step's group but has its root's shape, and
   * whose readers are not element layers, becomes one more output of that kernel, stored at the same coordinates
   * (the q, k and v slices of one qkv tensor for attention: one launch instead of three). TORCHC_FUSE_SIBLINGS=0
   * keeps them apart (for A/B timing).
   */
  private joinSibling(layer: Layer): boolean {
    if (process.env.TORCHC_FUSE_SIBLINGS === "0") return false;
    if (!isPointwiseLayer(layer) && !isMovementLayer(layer)) return false;
    // Only values that go to library calls or rows kernels: an element reader would rather fuse with it.
    const element = (r: Layer) => isElementLayer(r) && this.infos.get(r.output)?.viewOf === undefined;
    if (this.readers(layer.output).some(element)) return false;
    const last = this.steps[this.steps.length - 1];
    if (last?.kind !== "element") return false;
    const g = this.groupOf.get((last as MutableGroupStep).group.root);
    if (!g || g.step !== last || g.layers.length >= (this.opts.maxGroupLayers ?? 48)) return false;
    if (this.info(g.root).shape.join() !== this.info(layer.output).shape.join()) return false;
    // Data movement makes a kernel scalar (codegen/element.ts vectorWidth): never slow down a vector group.
    if (isMovementLayer(layer) && !g.layers.some(isMovementLayer)) return false;
    // Independent of the group: no input is a member or a view of one.
    const members = new Set(g.layers.map((l) => l.output));
    if (layer.inputs.some((t) => members.has(t) || members.has(storageRoot(this.infos, t)))) return false;
    g.layers.push(layer);
    g.identity.add(layer.output);
    this.groupOf.set(layer.output, g);
    return true;
  }

  /** Stores of every group: its root and members read outside it. Called once all steps exist. */
  private finalizeOutputs(): void {
    for (const s of this.steps) {
      if (s.kind !== "element") continue;
      const g = (s as MutableGroupStep).group;
      const inside = new Set(g.layers.map((l) => l.output));
      const outs = [g.root];
      for (const l of g.layers) {
        if (l.output === g.root) continue;
        const external =
          this.isOutputish(l.output) ||
          this.readers(l.output).some((r) => !inside.has(r.output) || this.consumed.has(r));
        if (external) outs.push(l.output);
      }
      g.outputs = outs;
    }
  }

  // ------------------------------------------------------------------------------------- relayouts

  private matches(t: string, layout: Layout, storage: string): boolean {
    const i = this.info(t);
    return i.storage === storage && layoutKey(i.shape, i.layout) === layoutKey(i.shape, layout);
  }

  /** `src` in `layout`/`storage`: itself, or a copy made by a relayout step placed now. */
  private materialize(src: string, layout: Layout, storage: TensorInfo["storage"]): string {
    if (this.matches(src, layout, storage)) return src;
    const key = `${src}#${storage}:${layout.join("")}`;
    const known = this.relayouts.get(key);
    if (known) return known;
    const s = this.info(src);
    this.infos.set(key, {
      name: key,
      shape: s.shape,
      logicalDType: s.logicalDType,
      storage,
      layout: [...layout],
      role: "activation",
    });
    const copy = { type: "identity", name: `relayout(${src})`, inputs: [src], output: key } as Layer;
    this.steps.push(this.newGroup([copy], key).step);
    this.relayouts.set(key, key);
    return key;
  }

  /** A staging tensor in `layout`/`storage` for a library call that must end in `final`, plus the copy after. */
  private staging(
    final: string,
    layout: Layout,
    storage: TensorInfo["storage"],
  ): { target: string; copy?: () => void } {
    if (this.matches(final, layout, storage)) return { target: final };
    const f = this.info(final);
    const target = `${final}#staged`;
    this.infos.set(target, {
      name: target,
      shape: f.shape,
      logicalDType: f.logicalDType,
      storage,
      layout: [...layout],
      role: "activation",
    });
    return {
      target,
      copy: () => {
        const copy = {
          type: "identity",
          name: `unstage(${final})`,
          inputs: [target],
          output: final,
        } as Layer;
        this.steps.push(this.newGroup([copy], final).step);
      },
    };
  }

  // ------------------------------------------------------------------------------------- convolution

  private tryConv(layer: LayerOf<"convolution">): boolean {
    const int8 = this.int8Inputs.get(layer.inputs[0]);
    if (int8) {
      if (this.tryInt8Conv(layer, int8)) return true;
      this.placeDequantize(int8);
    }
    const [x, w] = layer.inputs;
    const wShape = this.info(w).shape;
    const xShape = this.info(x).shape;
    if (wShape.length !== 4) return false;
    if (this.producer.get(w)?.type !== "constant") return false;
    if (layer.inputs[2] !== undefined && this.producer.get(layer.inputs[2])?.type !== "constant")
      return false;
    const depthwise = layer.groups > 1 && wShape[1] === 1 && layer.groups === xShape[1];
    if (depthwise) {
      this.preferDepthwiseWeights(layer);
      return false;
    }
    if (preferDirectConv(this.rowsView(), layer)) return false;
    const out = this.info(layer.output);
    const nhwc = out.layout.join() === channelsLast(4).join();
    const pointLike = [2, 3].every((a) => xShape[a] === 1 && wShape[a] === 1 && out.shape[a] === 1);
    if (layer.groups === 1 && pointLike && layer.padding.every((p) => p === 0)) {
      this.placeGemv(layer, nhwc);
      return true;
    }
    if (this.foldedMeans.has(x))
      throw new Error(`internal: '${layer.name}' reads a folded spatial mean but is not a gemv`);
    const storage = storageDType(this.info(x).logicalDType, this.opts.precision, this.opts.keepFloat32);
    if (this.tryPointwise(layer, storage, nhwc)) return true;
    const layout: Layout = nhwc ? channelsLast(4) : identityLayout(4);
    const chain = this.convChain(layer, layout, storage);
    const before = this.steps.length;
    const xs = this.materialize(x, layout, storage);
    if (nhwc) this.info(w).layout = channelsLast(4);
    // the longest epilogue the library accepts
    const tries = Array.from({ length: chain.length + 1 }, (_, i) => ({ k: chain.length - i }));
    if (this.placeCudnnConv({ layer, src: x, xs, before, layout, storage, chain, tries })) return true;
    this.info(w).layout = identityLayout(4);
    return false;
  }

  /**
   * A cuDNN convolution reading quantize's int8 output (NHWC), with the longest epilogue the library accepts,
   * writing the next convolution's int8 input where it can (quantizedOutput), else the plan's float storage.
   */
  private tryInt8Conv(layer: LayerOf<"convolution">, int8: Int8ConvInput): boolean {
    const out = this.info(layer.output);
    if (layoutKey(out.shape, out.layout) !== layoutKey(out.shape, channelsLast(4))) return false;
    const storage = storageDType(out.logicalDType, this.opts.precision, this.opts.keepFloat32);
    const layout = channelsLast(4);
    const before = this.steps.length;
    const src = int8.quantize.output;
    const xs = this.materialize(src, layout, "int8");
    const chain = this.convChain(layer, layout, storage);
    // Longest epilogue first; for each, ending in the next convolution's quantize (int8 out) before float out.
    const tries: { k: number; q?: LayerOf<"quantize"> }[] = [];
    for (let k = chain.length; k >= 0; k--) {
      const q = this.quantizedOutput(layer, chain.slice(0, k));
      if (q) tries.push({ k, q });
      tries.push({ k });
    }
    return this.placeCudnnConv({ layer, src, xs, before, layout, storage, chain, tries, int8 });
  }

  /**
   * Offers the library `layer` reading `xs` with each of `tries` in turn (the first k layers of `chain` as its
   * epilogue, and for int8 steps the quantize it may end in) and places the first it accepts. When it accepts none,
   * the steps placed since `before` (the relayout of `src` into `xs`) are undone.
   */
  private placeCudnnConv(o: {
    readonly layer: LayerOf<"convolution">;
    readonly src: string;
    readonly xs: string;
    readonly before: number;
    readonly layout: Layout;
    readonly storage: TensorInfo["storage"];
    readonly chain: readonly { layer: Layer; op: ConvEpilogueOp }[];
    readonly tries: readonly { k: number; q?: LayerOf<"quantize"> }[];
    readonly int8?: Int8ConvInput;
  }): boolean {
    const nhwc = o.layout.join() === channelsLast(4).join();
    for (const { k, q } of o.tries) {
      const fused = o.chain.slice(0, k);
      const last = k === 0 ? o.layer.output : fused[k - 1].layer.output;
      const final = q ? q.output : last;
      const { target, copy } = this.staging(final, o.layout, q ? "int8" : o.storage);
      const step: ConvStep = {
        kind: "conv",
        layer: o.layer,
        x: o.xs,
        epilogue: fused.map((f) => f.op),
        fused: [...fused.map((f) => f.layer), ...(q ? [q] : [])],
        output: target,
        layout: nhwc ? "NHWC" : "NCHW",
        engine: "cudnn",
        ...(o.int8 ? { int8: o.int8 } : {}),
        ...(q ? { quantizeOutput: q } : {}),
      };
      if (!this.opts.convSupported(step)) {
        if (target !== final) this.infos.delete(target);
        continue;
      }
      this.steps.push(step);
      for (const l of step.fused) this.consumed.add(l);
      if (copy) copy();
      return true;
    }
    // Undo the relayout if nothing used it.
    this.steps.splice(o.before);
    if (o.xs !== o.src) {
      this.relayouts.delete(o.xs);
      this.infos.delete(o.xs);
    }
    return false;
  }

  /**
   * The quantize an int8 convolution's epilogue `chain` can end in: the only reader of the chain's output, itself
   * read (through its dequantize) only by int8 convolutions, when every op commutes with dividing by its scale.
   */
  private quantizedOutput(
    conv: LayerOf<"convolution">,
    chain: readonly { layer: Layer; op: ConvEpilogueOp }[],
  ): LayerOf<"quantize"> | undefined {
    const last = chain.length ? chain[chain.length - 1].layer.output : conv.output;
    if (this.isOutputish(last)) return undefined;
    const rs = this.readers(last);
    const q = rs.length === 1 ? rs[0] : undefined;
    if (q?.type !== "quantize" || q.inputs[0] !== last) return undefined;
    if (![...this.int8Inputs.values()].some((i) => i.quantize === q)) return undefined;
    const homogeneous = (op: ConvEpilogueOp) =>
      op.kind === "channel" || (op.kind === "act" && op.fn === "relu");
    return chain.every((f) => homogeneous(f.op)) ? q : undefined;
  }

  /** A dequantize the scheduler left out, placed now as an element step for a convolution refused in int8. */
  private placeDequantize(int8: Int8ConvInput): void {
    this.int8Inputs.delete(int8.dequantize.output);
    this.placeElement(int8.dequantize);
  }

  /**
   * Squeeze-excite's two 1×1 convolutions: a gemv whose input is the previous step's gemv output, read by nothing
   * else, runs in that step's kernel (ConvStep.next), one launch instead of two. TORCHC_MERGE_GEMV=0 keeps them
   * apart (for A/B timing).
   */
  private joinPreviousGemv(step: ConvStep): boolean {
    if (process.env.TORCHC_MERGE_GEMV === "0") return false;
    const prev = this.steps[this.steps.length - 1];
    if (prev?.kind !== "conv" || prev.engine !== "gemv" || prev.next !== undefined) return false;
    if (prev.output !== step.x || this.isOutputish(step.x)) return false;
    const readers = this.readers(step.x);
    if (readers.length !== 1 || readers[0] !== step.layer) return false;
    // The hidden vector of one sample lives in shared memory (fp32).
    if (this.info(step.x).shape[1] > MAX_EXCITE_HIDDEN) return false;
    if (this.info(step.x).shape[0] > MAX_EXCITE_BATCH) return false;
    this.steps[this.steps.length - 1] = { ...prev, next: step };
    return true;
  }

  /** A 1×1 convolution on 1×1 maps as a generated gemv kernel, with its activations. */
  private placeGemv(layer: LayerOf<"convolution">, nhwc: boolean): void {
    const x = layer.inputs[0];
    const out = this.info(layer.output);
    const acts = [];
    for (const f of this.convChain(layer, out.layout, out.storage)) {
      if (f.op.kind !== "act") break;
      acts.push(f);
    }
    const final = acts.length ? acts[acts.length - 1].layer.output : layer.output;
    const xMean = this.foldedMeans.get(x);
    const step: ConvStep = {
      kind: "conv",
      engine: "gemv",
      layer,
      x,
      ...(xMean ? { xMean } : {}),
      epilogue: acts.map((f) => f.op),
      fused: acts.map((f) => f.layer),
      output: final,
      layout: nhwc ? "NHWC" : "NCHW",
    };
    if (!this.joinPreviousGemv(step)) this.steps.push(step);
    for (const f of acts) this.consumed.add(f.layer);
  }

  /** A small 1×1 convolution as a generated kernel (pointwise-conv-rule.ts), with its epilogue and SE scale. */
  private tryPointwise(
    layer: LayerOf<"convolution">,
    storage: TensorInfo["storage"],
    nhwc: boolean,
  ): boolean {
    if (
      nhwc &&
      pointwiseGemmEligible(this.rowsView(), layer, storage) &&
      this.tryPointwiseGemm(layer, storage)
    )
      return true;
    const plan = pointwiseConvPlan(this.rowsView(), layer, storage);
    if (!plan) return false;
    const [x, w] = layer.inputs;
    const chain: { layer: Layer; op: ConvEpilogueOp }[] = [];
    // The kernel stores in whatever layout the output has (a network output may be NCHW).
    for (const f of this.convChain(layer, nhwc ? channelsLast(4) : identityLayout(4), storage)) {
      if (f.op.kind === "channel") break;
      chain.push(f);
    }
    if (plan.scale) {
      const g = this.groupOf.get(x);
      if (!g || !this.steps.includes(g.step)) return false;
      this.steps.splice(this.steps.indexOf(g.step), 1);
      for (const l of g.layers) this.groupOf.delete(l.output);
    }
    this.info(w).layout = [1, 2, 3, 0];
    this.steps.push({
      kind: "conv",
      engine: "pointwise",
      layer,
      x,
      ...(plan.scale ? { scale: plan.scale } : {}),
      epilogue: chain.map((f) => f.op),
      fused: chain.map((f) => f.layer),
      output: chain.length ? chain[chain.length - 1].layer.output : layer.output,
      layout: nhwc ? "NHWC" : "NCHW",
    });
    for (const f of chain) this.consumed.add(f.layer);
    return true;
  }

  /**
   * A 1×1 convolution as the tensor-core GEMM (codegen/pointwise-gemm.ts), only where the GEMM's epilogue (bias,
   * then SiLU or ReLU, then a residual add) takes all cuDNN would fuse: what it left (ResNet's add + ReLU) would
   * cost a pass of its own. Its output and residual are dense channels-last float16 tensors.
   */
  private tryPointwiseGemm(layer: LayerOf<"convolution">, storage: TensorInfo["storage"]): boolean {
    const chain = this.convChain(layer, channelsLast(4), storage);
    const act = chain.findIndex((f) => f.op.kind === "act");
    const add = chain.findIndex((f) => f.op.kind === "tensor");
    const takes = (f: (typeof chain)[number], i: number) =>
      f.op.kind === "act"
        ? i === 0 && (f.op.fn === "silu" || f.op.fn === "relu")
        : f.op.kind === "tensor" && f.op.op === "add" && i === add && (act < 0 || act < add);
    if (!chain.every(takes)) return false;
    const plain = (t: string) => denseChannelsLast(this.info(t), storage);
    const output = chain.at(-1)?.layer.output ?? layer.output;
    const residual = chain[add]?.op;
    if (!plain(output) || (residual?.kind === "tensor" && !plain(residual.tensor))) return false;
    this.steps.push({
      kind: "conv",
      engine: "gemm",
      layer,
      x: layer.inputs[0],
      epilogue: chain.map((f) => f.op),
      fused: chain.map((f) => f.layer),
      output,
      layout: "NHWC",
    });
    for (const f of chain) this.consumed.add(f.layer);
    return true;
  }

  private preferDepthwiseWeights(layer: LayerOf<"convolution">): void {
    const w = this.info(layer.inputs[1]);
    const out = this.info(layer.output);
    if (layoutKey(out.shape, out.layout) === layoutKey(out.shape, channelsLast(4))) w.layout = [2, 3, 0, 1];
  }

  /** The pointwise layers after `conv` that cuDNN could fuse, in order. */
  private convChain(
    conv: LayerOf<"convolution">,
    layout: Layout,
    storage: string,
  ): { layer: Layer; op: ConvEpilogueOp }[] {
    const chain: { layer: Layer; op: ConvEpilogueOp }[] = [];
    const convIndex = this.index.get(conv)!;
    let t = conv.output;
    const shape = this.info(t).shape;
    for (;;) {
      if (this.isOutputish(t)) break;
      const rs = this.readers(t);
      if (rs.length !== 1 || this.infos.get(rs[0].output)?.viewOf !== undefined) break;
      const next = rs[0];
      if (this.info(next.output).shape.join() !== shape.join()) break;
      let op: ConvEpilogueOp | undefined;
      if (next.type === "activation" && CONV_ACTS.has(next.fn.kind))
        op = { kind: "act", fn: next.fn.kind as ConvActivationKind };
      else if (
        next.type === "elementwise" &&
        (next.op === "add" || next.op === "mul") &&
        next.inputs[0] !== next.inputs[1]
      ) {
        const other = next.inputs[0] === t ? next.inputs[1] : next.inputs[0];
        const p = this.producer.get(other);
        if (p?.type === "constant") {
          const v = perChannel(this.net.constants[p.weight], shape);
          if (v) op = { kind: "channel", op: next.op, values: v };
        } else {
          const oi = this.info(other);
          const ready = p === undefined || this.index.get(p)! < convIndex;
          if (
            ready &&
            oi.shape.join() === shape.join() &&
            this.matches(other, layout, storage) &&
            oi.viewOf === undefined
          ) {
            op = { kind: "tensor", op: next.op, tensor: other };
          }
        }
      }
      if (!op) break;
      chain.push({ layer: next, op });
      t = next.output;
      if (chain.length >= 4) break;
    }
    return chain;
  }

  // ------------------------------------------------------------------------------------- matmul

  private matrixOk(t: string, storage: string): boolean {
    const i = this.info(t);
    if (i.storage !== storage) return false;
    const r = i.shape.length;
    const batchAxes = i.layout.slice(0, r - 2).filter((a) => i.shape[a] !== 1);
    const sorted = batchAxes.every((a, k) => a < r - 2 && (k === 0 || a > batchAxes[k - 1]));
    const last = i.layout.slice(r - 2);
    return sorted && last.every((a) => a >= r - 2);
  }

  private placeMatmul(layer: LayerOf<"matmul">): void {
    const [a0, b0] = layer.inputs;
    const storage = storageDType(this.info(a0).logicalDType, this.opts.precision, this.opts.keepFloat32);
    const fix = (t: string) =>
      this.matrixOk(t, storage) ? t : this.materialize(t, identityLayout(this.info(t).shape.length), storage);
    const a = fix(a0);
    const b = fix(b0);
    const out = this.info(layer.output);
    const batch = numel(out.shape.slice(0, -2));
    const bBatch = numel(this.info(b).shape.slice(0, -2));
    const aInfo = this.info(a);
    const aRowMajor =
      layoutKey(aInfo.shape, aInfo.layout) === layoutKey(aInfo.shape, identityLayout(aInfo.shape.length)) &&
      !layer.transposeA;
    const flat = batch === 1 || (bBatch === 1 && aRowMajor);
    const epilogue = flat ? this.matmulEpilogue(layer, storage) : [];
    const tryStep = (k: number): boolean => {
      const taken = epilogue.slice(0, k);
      const f = taken.map((e) => e.layer);
      const final = k === 0 ? layer.output : f[k - 1].output;
      const { target, copy } = this.staging(final, identityLayout(out.shape.length), storage);
      const role = <R extends MatmulEpilogueOp["role"]>(r: R) =>
        taken.find((e): e is Extract<MatmulEpilogueOp, { role: R }> => e.role === r);
      const step: MatmulStep = {
        kind: "matmul",
        layer,
        a,
        b,
        bias: role("bias")?.tensor,
        activation: role("act")?.fn ?? "none",
        ...(role("residual") ? { residual: role("residual")!.tensor } : {}),
        fused: f,
        output: target,
      };
      if (!this.opts.matmulSupported(step)) {
        if (target !== final) this.infos.delete(target);
        return false;
      }
      this.steps.push(step);
      for (const l of f) this.consumed.add(l);
      if (copy) copy();
      return true;
    };
    for (let k = epilogue.length; k >= 0; k--) if (tryStep(k)) return;
    throw new Error(`cuBLASLt cannot run matmul layer '${layer.name}'`);
  }

  /**
   * What a flat matmul's epilogue can take, in order: + row bias (a constant varying along the last axis only),
   * then relu / GELU (geluEpilogue; exact GELU kept apart for a quantized linear, or with sparse weights on), or
   * else + a residual of the output's shape where gemmResidualEnabled says so (cuBLASLt's beta·C, which it adds
   * before its activation, so never with one).
   */
  private matmulEpilogue(layer: LayerOf<"matmul">, storage: string): MatmulEpilogueOp[] {
    const out = this.info(layer.output);
    const n = out.shape[out.shape.length - 1];
    const ops: MatmulEpilogueOp[] = [];
    let t = layer.output;
    const only = (x: string) => {
      const rs = this.readers(x);
      return rs.length === 1 && !this.outputs.has(x) ? rs[0] : undefined;
    };
    const addOf = (x: string) => {
      const next = only(x);
      if (next?.type !== "elementwise" || next.op !== "add") return undefined;
      if (this.info(next.output).shape.join() !== out.shape.join()) return undefined;
      return { layer: next, other: next.inputs[0] === x ? next.inputs[1] : next.inputs[0] };
    };
    const biasAdd = addOf(t);
    if (biasAdd) {
      const oi = this.info(biasAdd.other);
      if (
        this.producer.get(biasAdd.other)?.type === "constant" &&
        oi.shape.at(-1) === n &&
        numel(oi.shape) === n &&
        oi.storage === storage
      ) {
        ops.push({ role: "bias", layer: biasAdd.layer, tensor: biasAdd.other });
        t = biasAdd.layer.output;
      }
    }
    const act = only(t);
    const keepExact =
      this.producer.get(layer.inputs[0])?.type === "dequantize" || this.opts.exactGeluApart === true;
    if (
      act?.type === "activation" &&
      (act.fn.kind === "relu" || geluEpilogue(act.fn.kind, storage, keepExact))
    ) {
      ops.push({ role: "act", layer: act, fn: act.fn.kind === "relu" ? "relu" : "gelu" });
      return ops;
    }
    // int8 and cuSPARSELt GEMMs that may replace the plan later add no residual (as for exact GELU above)
    const residual = gemmResidualEnabled(numel(out.shape)) && !keepExact ? addOf(t) : undefined;
    if (residual && this.residualOperandOk(residual.other, out.shape, storage))
      ops.push({ role: "residual", layer: residual.layer, tensor: residual.other });
    return ops;
  }

  /**
   * A residual cuBLASLt can read as C: the output's exact shape, storage and identity layout, plain memory, made
   * by a layer before the matmul (a later one, such as a cast the next norm's prologue would have taken in,
   * would be placed after the step that reads it).
   */
  private residualOperandOk(t: string, shape: readonly number[], storage: string): boolean {
    const i = this.info(t);
    const p = this.producer.get(t);
    if (p && p.type !== "constant" && this.index.get(p)! > this.current) return false;
    return (
      i.shape.join() === shape.join() &&
      i.storage === storage &&
      i.strides === undefined &&
      i.unaddressable !== true &&
      (i.offset ?? 0) === 0 &&
      layoutKey(i.shape, i.layout) === layoutKey(i.shape, identityLayout(i.shape.length))
    );
  }
}

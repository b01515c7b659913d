/**
 * Which element layers a rows kernel (layer norm, softmax) computes itself. Before it: the element group that makes
 * its input, when every member is pointwise math or data movement (a pre-norm block's residual add, the cast to
 * float32), reached through free views (same-storage casts); members read elsewhere (of the input's shape) are
 * stored by the rows kernel on its first pass. After it: a chain of same-shape pointwise layers that only it feeds (the cast back
 * to half precision, a quantize), whose other operands exist before the kernel runs (constants, inputs).
 */
import type { Layer, LayerOf } from "../../../network/layers/index.js";
import { isMovementLayer, isPointwiseLayer } from "../codegen/element.js";
import type { TensorInfo } from "../plan/tensors.js";

/** What the rules read of the schedule being built. */
export interface RowsScheduleView {
  info(t: string): TensorInfo;
  producer(t: string): Layer | undefined;
  consumers(t: string): readonly Layer[];
  /** Layers that read `t`'s memory, through views. */
  readers(t: string): readonly Layer[];
  isOutputish(t: string): boolean;
  /** Whether a step already placed computes `l` (it comes earlier in order, or a library call absorbed it). */
  placed(l: Layer): boolean;
  /** The open element group a tensor belongs to. */
  group(t: string): { readonly root: string; readonly layers: readonly Layer[] } | undefined;
}

export interface RowsPrologue {
  /** The root of the element group taken over (its step is removed). */
  readonly group: string;
  readonly layers: readonly Layer[];
  readonly stores: readonly string[];
}

const MAX_EPILOGUE = 8;

const sameShape = (v: RowsScheduleView, a: string, b: string) =>
  v.info(a).shape.join() === v.info(b).shape.join();

export function rowsPrologue(
  v: RowsScheduleView,
  layer: LayerOf<"normalization"> | LayerOf<"softmax">,
): RowsPrologue | undefined {
  const input = layer.inputs[0];
  // Free views between the group and the layer (same-storage casts) become members too.
  const views: Layer[] = [];
  let src = input;
  while (v.info(src).viewOf !== undefined) {
    const p = v.producer(src);
    if (!p || (p.type !== "cast" && p.type !== "identity")) return undefined;
    const from = p.inputs[0];
    if (!sameShape(v, from, src)) return undefined;
    views.unshift(p);
    src = from;
  }
  const g = v.group(src);
  if (!g || g.root !== src) return undefined;
  // Values at the row's coordinates, with no loops: pointwise math, data movement (the patch tokens'
  // concatenation with the class token) and gathers (token embeddings).
  const inline = (l: Layer) => isPointwiseLayer(l) || isMovementLayer(l) || l.type === "gather";
  if (!g.layers.every(inline)) return undefined;
  const layers = [...g.layers, ...views];
  const inside = new Set(layers.map((l) => l.output));
  const stores: string[] = [];
  for (const m of g.layers) {
    const outside = v.readers(m.output).filter((r) => r !== layer && !inside.has(r.output));
    // The group's values now appear when this kernel runs: nothing placed already may read them.
    if (outside.some((r) => v.placed(r))) return undefined;
    if (outside.length === 0 && !v.isOutputish(m.output)) continue;
    // A stored member is written at the row's coordinates: it must have the input's shape.
    if (!sameShape(v, m.output, input)) return undefined;
    stores.push(m.output);
  }
  return { group: g.root, layers, stores };
}

export function rowsEpilogue(v: RowsScheduleView, output: string): Layer[] {
  const chain: Layer[] = [];
  let t = output;
  while (chain.length < MAX_EPILOGUE && !v.isOutputish(t)) {
    const cs = v.consumers(t);
    if (cs.length !== 1) break;
    const c = cs[0];
    if (!isPointwiseLayer(c) || !sameShape(v, c.output, t) || v.info(c.output).viewOf !== undefined) break;
    const others = c.inputs.filter((i) => i !== t);
    if (!others.every((i) => v.producer(i) === undefined || v.producer(i)?.type === "constant")) break;
    chain.push(c);
    t = c.output;
  }
  return chain;
}

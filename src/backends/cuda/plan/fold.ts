/**
 * Build-time rewrites of a network before planning, all on the host, rebuilt through the NetworkBuilder (so
 * every layer it makes is type-checked by the layer's shape rule, like a converter's):
 *  - layers whose inputs are all constants are evaluated with the reference interpreter (weight reshapes,
 *    casts and transposes cost nothing at run time);
 *  - a chain of per-channel affines (scale layer, or elementwise mul/add/sub by a per-channel constant) right
 *    after a convolution with constant weights is folded into the convolution's weight and bias (the graph's
 *    fold-batch-norm covers batch norm; this covers affines converters or models spell otherwise);
 *  - layers whose outputs nothing reads are dropped, and constants are emitted only where a layer reads them.
 */
import type { DType } from "../../../ir/dtype.js";
import { numel, type Tensor, tensorFromNumbers, toFloat64Array } from "../../../ir/tensor.js";
import { NetworkBuilder } from "../../../network/builder.js";
import type { ConvolutionLayer, Layer } from "../../../network/layers/index.js";
import type { Network } from "../../../network/network.js";
import { LAYER_RUNNERS, type LayerRunner } from "../../../network/reference/index.js";

/** Constant outputs larger than this are left to the GPU (evaluating them on the host would be slow). */
const FOLD_LIMIT = 1 << 22;

export interface FoldStats {
  readonly constantsFolded: number;
  readonly affinesFolded: number;
  /** Layers of the input with nothing in the output: dead ones, and constants no remaining layer reads. */
  readonly layersDropped: number;
}

export function foldNetwork(net: Network): { network: Network; stats: FoldStats } {
  const live = liveLayers(net);
  const { values, folded: constantsFolded } = constantValues(net, live);
  const consumers = consumersOf(live);
  const b = new NetworkBuilder();
  const to = new Map<string, string>();
  for (const i of net.inputs) to.set(i, b.addInput(i, net.tensors[i]));
  // constants are emitted on first read, scoped by the layer that made them
  const read = (tensor: string): string => {
    let t = to.get(tensor);
    if (t === undefined) {
      const value = values.get(tensor);
      if (!value) throw new Error(`foldNetwork: tensor '${tensor}' is read before it is made`);
      t = b.withScope(producerName(live, tensor), () => b.constant(value));
      to.set(tensor, t);
    }
    return t;
  };
  const absorbed = new Set<Layer>();
  let affinesFolded = 0;
  let copied = 0;
  for (const layer of live) {
    if (absorbed.has(layer) || values.has(layer.output)) continue;
    const fold = layer.type === "convolution" ? affineChain(net, layer, values, consumers) : undefined;
    copied++;
    if (!fold) {
      to.set(layer.output, b.copy(layer, layer.inputs.map(read)));
      continue;
    }
    for (const l of fold.absorbed) absorbed.add(l);
    affinesFolded += fold.absorbed.length;
    const w = b.withScope(layer.name, () => b.constant(fold.weight));
    const bias = b.withScope(layer.name, () => b.constant(fold.bias));
    to.set(fold.output, b.copy(layer, [read(fold.input), w, bias]));
  }
  const network = b.build(net.outputs.map((o) => ({ tensor: read(o), as: o })));
  // what is left of the input: copied layers and the constants something still reads
  const constantsKept = live.filter((l) => values.has(l.output) && to.has(l.output)).length;
  const layersDropped = net.layers.length - copied - constantsKept - affinesFolded;
  return { network, stats: { constantsFolded, affinesFolded, layersDropped } };
}

/** The layers some network output depends on, in order. */
function liveLayers(net: Network): Layer[] {
  const live = new Set(net.outputs);
  const kept: Layer[] = [];
  for (let i = net.layers.length - 1; i >= 0; i--) {
    const l = net.layers[i];
    if (!live.has(l.output)) continue;
    kept.push(l);
    for (const inp of l.inputs) live.add(inp);
  }
  return kept.reverse();
}

function producerName(layers: readonly Layer[], tensor: string): string {
  return layers.find((l) => l.output === tensor)?.name ?? tensor;
}

/** The value of every tensor known at build time: constant layers, and layers of constants (evaluated). */
function constantValues(
  net: Network,
  layers: readonly Layer[],
): { values: Map<string, Tensor>; folded: number } {
  const values = new Map<string, Tensor>();
  let folded = 0;
  for (const layer of layers) {
    if (layer.type === "constant") {
      values.set(layer.output, net.constants[layer.weight]);
      continue;
    }
    if (layer.inputs.length === 0 || numel(net.tensors[layer.output].shape) > FOLD_LIMIT) continue;
    const inputs = layer.inputs.map((i) => values.get(i));
    if (!inputs.every((v): v is Tensor => v !== undefined)) continue;
    const runner = LAYER_RUNNERS[layer.type] as LayerRunner<Layer>;
    const env = { constant: (k: string) => net.constants[k] };
    values.set(layer.output, runner(layer, inputs, net.tensors[layer.output], env));
    folded++;
  }
  return { values, folded };
}

function consumersOf(layers: readonly Layer[]): Map<string, Layer[]> {
  const m = new Map<string, Layer[]>();
  for (const l of layers) for (const i of l.inputs) m.set(i, [...(m.get(i) ?? []), l]);
  return m;
}

/** A constant that broadcasts onto [N, C, …] varying at most along C: its C values, else undefined. */
export function perChannel(t: Tensor, outShape: readonly number[]): Float64Array | undefined {
  const c = outShape[1];
  const rank = outShape.length;
  if (t.shape.length > rank) return undefined;
  const full = [...new Array<number>(rank - t.shape.length).fill(1), ...t.shape];
  if (full.some((d, i) => d !== 1 && !(i === 1 && d === c))) return undefined;
  const v = toFloat64Array(t);
  if (v.length === 1) return new Float64Array(c).fill(v[0]);
  return v.length === c ? v : undefined;
}

interface Affine {
  scale: Float64Array;
  shift: Float64Array;
}

/**
 * The affines after `conv` (each the single reader of the one before, none a network output) folded into its
 * constant weight and bias: its input, the new weight and bias, the absorbed layers and the tensor it now makes.
 */
function affineChain(
  net: Network,
  conv: ConvolutionLayer,
  values: ReadonlyMap<string, Tensor>,
  consumers: ReadonlyMap<string, Layer[]>,
): { input: string; weight: Tensor; bias: Tensor; absorbed: Layer[]; output: string } | undefined {
  const wt = values.get(conv.inputs[1]);
  const bt = conv.inputs[2] === undefined ? undefined : values.get(conv.inputs[2]);
  if (!wt || (conv.inputs[2] !== undefined && !bt)) return undefined;
  const outShape = net.tensors[conv.output].shape;
  const cout = wt.shape[0];
  const per = numel(wt.shape) / cout;
  const absorbed: Layer[] = [];
  const affines: Affine[] = [];
  let at: string = conv.output;
  for (;;) {
    const users = consumers.get(at) ?? [];
    if (net.outputs.includes(at) || users.length !== 1) break;
    const aff = affineOf(net, values, users[0], at, outShape);
    if (!aff) break;
    affines.push(aff);
    absorbed.push(users[0]);
    at = users[0].output;
  }
  // Most convs have no affine after them: their weights are not read into doubles at all.
  if (absorbed.length === 0) return undefined;
  const wv = toFloat64Array(wt);
  const bv = bt ? toFloat64Array(bt) : new Float64Array(cout);
  for (const aff of affines) {
    for (let i = 0; i < wv.length; i++) wv[i] *= aff.scale[Math.floor(i / per)];
    for (let c = 0; c < cout; c++) bv[c] = bv[c] * aff.scale[c] + aff.shift[c];
  }
  const dtype: DType = wt.dtype;
  return {
    input: conv.inputs[0],
    weight: tensorFromNumbers(dtype, wt.shape, wv),
    bias: tensorFromNumbers(dtype, [cout], bv),
    absorbed,
    output: at,
  };
}

/** The per-channel affine y = x·scale + shift that `layer` applies to conv output `x`, if it is one. */
function affineOf(
  net: Network,
  values: ReadonlyMap<string, Tensor>,
  layer: Layer,
  x: string,
  outShape: readonly number[],
): Affine | undefined {
  const c = outShape[1];
  const ones = () => new Float64Array(c).fill(1);
  const zeros = () => new Float64Array(c);
  if (layer.type === "scale") {
    if (layer.channelAxis !== 1 || layer.inputs[0] !== x) return undefined;
    const s = values.get(layer.inputs[1]);
    const h = values.get(layer.inputs[2]);
    if (!s || !h) return undefined;
    // A scale layer's vectors run along its channel axis (length C, or 1 for a uniform value).
    const along = (t: Tensor): Float64Array | undefined => {
      const v = toFloat64Array(t);
      if (v.length === c) return v;
      return v.length === 1 ? new Float64Array(c).fill(v[0]) : undefined;
    };
    const scale = along(s);
    const shift = along(h);
    return scale && shift ? { scale, shift } : undefined;
  }
  if (layer.type !== "elementwise" || !["mul", "add", "sub"].includes(layer.op)) return undefined;
  const [a, b] = layer.inputs;
  if (a === b) return undefined;
  const other = a === x ? b : a;
  const t = values.get(other);
  if (!t || net.tensors[layer.output].shape.join() !== outShape.join()) return undefined;
  const v = perChannel(t, outShape);
  if (!v) return undefined;
  if (layer.op === "mul") return { scale: v, shift: zeros() };
  if (layer.op === "add") return { scale: ones(), shift: v };
  // sub: x - v, or v - x
  return a === x ? { scale: ones(), shift: v.map((e) => -e) } : { scale: ones().map(() => -1), shift: v };
}

/**
 * Build-time rewrites of a network before planning, all on the host:
 *  - layers whose inputs are all constants are evaluated with the reference interpreter (weight reshapes,
 *    casts and transposes cost nothing at run time);
 *  - a per-channel affine (scale layer, or elementwise mul/add/sub by a per-channel constant) right after a
 *    convolution with constant weights is folded into the convolution's weight and bias (inference batch norm);
 *  - layers whose outputs nothing reads are dropped.
 */
import type { DType } from "../../../ir/dtype.js";
import type { TensorType } from "../../../ir/graph.js";
import { numel, type Tensor, tensorFromNumbers, toFloat64Array } from "../../../ir/tensor.js";
import type { ConvolutionLayer, Layer } from "../../../network/layers/index.js";
import type { Network } from "../../../network/network.js";
import { LAYER_RUNNERS, type LayerRunner } from "../../../network/reference/index.js";

/** Constant outputs larger than this are left to the GPU (evaluating them on the host would be slow). */
const FOLD_LIMIT = 1 << 22;

export interface FoldStats {
  readonly constantsFolded: number;
  readonly affinesFolded: number;
  readonly layersDropped: number;
}

interface Work {
  layers: Layer[];
  constants: Record<string, Tensor>;
  tensors: Record<string, TensorType>;
}

export function foldNetwork(net: Network): { network: Network; stats: FoldStats } {
  const w: Work = { layers: [...net.layers], constants: { ...net.constants }, tensors: { ...net.tensors } };
  const constantsFolded = foldConstants(w, net);
  const affinesFolded = foldAffines(w, net);
  const before = w.layers.length;
  dropDead(w, net);
  materializeConstantOutputs(w, net);
  const network: Network = Object.freeze({
    inputs: net.inputs,
    outputs: net.outputs,
    layers: Object.freeze(w.layers),
    tensors: Object.freeze(w.tensors),
    constants: Object.freeze(w.constants),
  });
  return { network, stats: { constantsFolded, affinesFolded, layersDropped: before - w.layers.length } };
}

/**
 * A network output that folding turned into a constant still needs a step that writes the output buffer (the
 * engine's outputs are buffers the caller may bind): the constant moves to its own tensor, and an identity copies it.
 */
function materializeConstantOutputs(w: Work, net: Network): void {
  const outputs = new Set(net.outputs);
  w.layers = w.layers.flatMap((l) => {
    if (l.type !== "constant" || !outputs.has(l.output)) return [l];
    let source = `${l.output}#constant`;
    for (let i = 1; source in w.tensors; i++) source = `${l.output}#constant${i}`;
    w.tensors[source] = w.tensors[l.output];
    const constant = Object.freeze({ ...l, output: source }) as Layer;
    const copy = Object.freeze({
      type: "identity",
      name: `${l.name}/output`,
      inputs: [source],
      output: l.output,
    }) as unknown as Layer;
    return [constant, copy];
  });
}

function constantValue(w: Work, byOutput: Map<string, Layer>, tensor: string): Tensor | undefined {
  const l = byOutput.get(tensor);
  return l?.type === "constant" ? w.constants[l.weight] : undefined;
}

function freshKey(w: Work, base: string): string {
  let key = base;
  for (let i = 1; key in w.constants; i++) key = `${base}#${i}`;
  return key;
}

function constantLayer(w: Work, name: string, output: string, value: Tensor): Layer {
  const weight = freshKey(w, `${name}/folded`);
  w.constants[weight] = value;
  return Object.freeze({
    type: "constant",
    name,
    inputs: [],
    output,
    weight,
    dtype: value.dtype,
    shape: value.shape,
  }) as unknown as Layer;
}

function foldConstants(w: Work, net: Network): number {
  const byOutput = new Map<string, Layer>();
  let folded = 0;
  w.layers = w.layers.map((layer) => {
    let result = layer;
    if (
      layer.type !== "constant" &&
      layer.inputs.length > 0 &&
      numel(w.tensors[layer.output].shape) <= FOLD_LIMIT
    ) {
      const values = layer.inputs.map((i) => constantValue(w, byOutput, i));
      if (values.every((v): v is Tensor => v !== undefined)) {
        const runner = LAYER_RUNNERS[layer.type] as LayerRunner<Layer>;
        const out = runner(layer, values, net.tensors[layer.output], { constant: (k) => w.constants[k] });
        result = constantLayer(w, layer.name, layer.output, out);
        folded++;
      }
    }
    byOutput.set(result.output, result);
    return result;
  });
  return folded;
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

/** The per-channel affine y = x·scale + shift that `layer` applies to conv output `x`, if it is one. */
function affineOf(
  w: Work,
  byOutput: Map<string, Layer>,
  layer: Layer,
  x: string,
  outShape: readonly number[],
): Affine | undefined {
  const c = outShape[1];
  const ones = () => new Float64Array(c).fill(1);
  const zeros = () => new Float64Array(c);
  if (layer.type === "scale") {
    if (layer.channelAxis !== 1 || layer.inputs[0] !== x) return undefined;
    const s = constantValue(w, byOutput, layer.inputs[1]);
    const h = constantValue(w, byOutput, layer.inputs[2]);
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
  const t = constantValue(w, byOutput, other);
  if (!t || w.tensors[layer.output].shape.join() !== outShape.join()) return undefined;
  const v = perChannel(t, outShape);
  if (!v) return undefined;
  if (layer.op === "mul") return { scale: v, shift: zeros() };
  if (layer.op === "add") return { scale: ones(), shift: v };
  // sub: x - v, or v - x
  return a === x ? { scale: ones(), shift: v.map((e) => -e) } : { scale: ones().map(() => -1), shift: v };
}

function foldAffines(w: Work, net: Network): number {
  let folded = 0;
  for (let changed = true; changed; ) {
    changed = false;
    const byOutput = new Map(w.layers.map((l) => [l.output, l] as const));
    const consumers = consumersOf(w.layers);
    for (const conv of w.layers) {
      if (conv.type !== "convolution" || net.outputs.includes(conv.output)) continue;
      const users = consumers.get(conv.output) ?? [];
      if (users.length !== 1) continue;
      const wt = constantValue(w, byOutput, conv.inputs[1]);
      const bt = conv.inputs[2] === undefined ? undefined : constantValue(w, byOutput, conv.inputs[2]);
      if (!wt || (conv.inputs[2] !== undefined && !bt)) continue;
      const outShape = w.tensors[conv.output].shape;
      const aff = affineOf(w, byOutput, users[0], conv.output, outShape);
      if (!aff) continue;
      rewriteConv(w, conv, users[0], wt, bt, aff);
      folded++;
      changed = true;
      break;
    }
  }
  return folded;
}

function rewriteConv(
  w: Work,
  conv: ConvolutionLayer,
  user: Layer,
  wt: Tensor,
  bt: Tensor | undefined,
  aff: Affine,
): void {
  const cout = wt.shape[0];
  const per = numel(wt.shape) / cout;
  const wv = toFloat64Array(wt);
  for (let i = 0; i < wv.length; i++) wv[i] *= aff.scale[Math.floor(i / per)];
  const bv = bt ? toFloat64Array(bt) : new Float64Array(cout);
  for (let c = 0; c < cout; c++) bv[c] = bv[c] * aff.scale[c] + aff.shift[c];
  const dtype: DType = wt.dtype;
  const wName = `${conv.name}/w_folded`;
  const bName = `${conv.name}/b_folded`;
  const wLayer = constantLayer(w, wName, uniqueTensor(w, wName), tensorFromNumbers(dtype, wt.shape, wv));
  const bLayer = constantLayer(w, bName, uniqueTensor(w, bName), tensorFromNumbers(dtype, [cout], bv));
  w.tensors[wLayer.output] = { dtype, shape: wt.shape };
  w.tensors[bLayer.output] = { dtype, shape: [cout] };
  const newConv = Object.freeze({
    ...conv,
    inputs: [conv.inputs[0], wLayer.output, bLayer.output],
    output: user.output,
  }) as unknown as Layer;
  const at = w.layers.indexOf(conv);
  w.layers = w.layers.filter((l) => l !== conv && l !== user);
  w.layers.splice(Math.min(at, w.layers.length), 0, wLayer, bLayer, newConv);
  delete w.tensors[conv.output];
}

function uniqueTensor(w: Work, base: string): string {
  let name = base;
  for (let i = 1; name in w.tensors; i++) name = `${base}_${i}`;
  return name;
}

function dropDead(w: Work, net: Network): void {
  const live = new Set(net.outputs);
  const kept: Layer[] = [];
  for (let i = w.layers.length - 1; i >= 0; i--) {
    const l = w.layers[i];
    if (!live.has(l.output)) continue;
    kept.push(l);
    for (const inp of l.inputs) live.add(inp);
  }
  w.layers = kept.reverse();
  const used = new Set(w.layers.flatMap((l) => (l.type === "constant" ? [l.weight] : [])));
  for (const k of Object.keys(w.constants)) if (!used.has(k)) delete w.constants[k];
  const tensors = new Set([...net.inputs, ...w.layers.map((l) => l.output)]);
  for (const k of Object.keys(w.tensors)) if (!tensors.has(k)) delete w.tensors[k];
}

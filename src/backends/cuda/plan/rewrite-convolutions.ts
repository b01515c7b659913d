/**
 * The walk shared by the plan's convolution rewrites (patchify.ts, pointwise-matmul.ts): copy the network layer by
 * layer, replace each target convolution with what `rewrite` builds in its scope, and drop 4-D weights that only
 * targets read (the rewrites read a reshaped view of the constant instead, so it is neither uploaded nor refitted
 * twice).
 */
import { NetworkBuilder } from "../../../network/builder.js";
import type { ConvolutionLayer, Layer } from "../../../network/layers/index.js";
import type { Network } from "../../../network/network.js";

export function rewriteConvolutions(
  net: Network,
  isTarget: (l: Layer) => l is ConvolutionLayer,
  rewrite: (b: NetworkBuilder, conv: ConvolutionLayer, read: (t: string) => string) => string,
  /** Layers left out (their output is never read once the targets are rewritten). */
  skip: (l: Layer) => boolean = () => false,
): Network {
  const b = new NetworkBuilder();
  const to = new Map<string, string>();
  for (const i of net.inputs) to.set(i, b.addInput(i, net.tensors[i]));
  const mapped = (t: string) => {
    const r = to.get(t);
    if (r === undefined) throw new Error(`rewriteConvolutions: '${t}' is read before it is made`);
    return r;
  };
  const readers = new Set(net.outputs);
  for (const l of net.layers)
    for (const [slot, t] of l.inputs.entries()) if (!(slot === 1 && isTarget(l))) readers.add(t);
  for (const layer of net.layers) {
    if (skip(layer) || (layer.type === "constant" && !readers.has(layer.output))) continue;
    if (layer.type === "constant")
      to.set(
        layer.output,
        b.withScope(layer.name, () => b.constant(net.constants[layer.weight])),
      );
    else if (isTarget(layer))
      to.set(
        layer.output,
        b.withScope(layer.name, () => rewrite(b, layer, mapped)),
      );
    else to.set(layer.output, b.copy(layer, layer.inputs.map(mapped)));
  }
  return b.build(net.outputs.map((o) => ({ tensor: mapped(o), as: o })));
}

/**
 * What every plan rewrite of a convolution asks first: a 2-D convolution over a float16 input whose weight is a
 * constant (the reason when not, else null).
 */
export function fp16ConstantConvRefusal(
  net: Network,
  layer: ConvolutionLayer,
  weightIsConstant: boolean,
): string | null {
  const x = net.tensors[layer.inputs[0]];
  const w = net.tensors[layer.inputs[1]];
  if (x.shape.length !== 4 || w.shape.length !== 4) return "not a 2-D convolution";
  if (x.dtype !== "float16") return "not a float16 convolution";
  if (!weightIsConstant) return "the weight is not a constant";
  return null;
}

/** x [N, C, H, W] as pixel rows: [N·H·W, C], or [N, H·W, C] per sample (a view in the channels-last layout). */
export function pixelRows(b: NetworkBuilder, x: string, perSample: boolean): string {
  const [n, c, h, w] = b.typeOf(x).shape;
  return b.add({
    type: "shuffle",
    inputs: [x],
    firstTranspose: [0, 2, 3, 1],
    reshape: perSample ? [n, h * w, c] : [n * h * w, c],
    secondTranspose: null,
  });
}

/** Pixel rows of `c` channels back to [N, C, H, W] (a layout, not a copy, when the rows are channels-last). */
export function fromPixelRows(b: NetworkBuilder, y: string, [n, h, w]: readonly number[]): string {
  const c = b.typeOf(y).shape.at(-1)!;
  return b.add({
    type: "shuffle",
    inputs: [y],
    firstTranspose: null,
    reshape: [n, h, w, c],
    secondTranspose: [0, 3, 1, 2],
  });
}

/**
 * `conv`'s constant weight as a new constant of `shape` (the same values in the same order: a reshape, not a
 * copy of memory at run time).
 */
export function reshapedWeight(
  b: NetworkBuilder,
  net: Network,
  conv: ConvolutionLayer,
  shape: readonly number[],
): string {
  const layer = net.layers.find((l) => l.output === conv.inputs[1]);
  if (layer?.type !== "constant") throw new Error(`'${conv.name}' has no constant weight`);
  return b.constant({ ...net.constants[layer.weight], shape: [...shape] });
}

// Converters of the composite ops (src/ops/composite.ts) with the same recipes the lowering pass uses
// (src/ops/composite-lowering.ts), emitted as layers. The default pipeline decomposes these ops before
// conversion; these converters serve graphs lowered with other pipelines and keep the catalogue convertible.
import { isFloating, promoteTypes } from "../../ir/dtype.js";
import type { Tensor } from "../../ir/tensor.js";
import { numel, tensorFromNumbers } from "../../ir/tensor.js";
import type { NetworkBuilder } from "../../network/builder.js";
import {
  type AaResizeArgs,
  type AddcArgs,
  type AsStridedArgs,
  aaGeometry,
  einsumSizes,
  normAxes,
  parseEinsum,
  type RepeatInterleaveArgs,
  type ResizeKind,
  type ScatterArgs,
  scatterPositions,
  type VectorNormArgs,
} from "../../ops/composite.js";
import {
  type Emitter,
  lowerAaResize,
  lowerAddc,
  lowerAsStrided,
  lowerEinsum,
  lowerRepeatInterleave,
  lowerScatter,
  lowerVectorNorm,
  STRIDED_VIEW_OPS,
} from "../../ops/composite-lowering.js";
import { binary, unary } from "../impl/elementwise.js";
import { matmul } from "../impl/matmul.js";
import { broadcastTo, cast, permute, reshape, scalar } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter, refuse, SUPPORTED } from "../types.js";
import { outType } from "./common.js";
import { reduceAxes } from "./reduce.js";

/** The emitter over network layers. */
function layerEmitter(net: NetworkBuilder): Emitter<string> {
  return {
    shape: (v) => net.typeOf(v).shape,
    dtype: (v) => net.typeOf(v).dtype,
    permute: (v, perm) => permute(net, v, perm),
    reshape: (v, shape) => reshape(net, v, shape),
    expand: (v, shape) => broadcastTo(net, v, shape),
    bmm: (a, b) => net.add({ type: "matmul", inputs: [a, b], transposeA: false, transposeB: false }),
    reduce: (op, v, axes, keepdim) => reduceAxes(net, op, v, axes, keepdim),
    unary: (op, v) => unary(net, op, v),
    binary: (op, a, b) => binary(net, op, a, b, promoteTypes(net.typeOf(a).dtype, net.typeOf(b).dtype)),
    scalar: (op, v, c) => binary(net, op, v, scalar(net, net.typeOf(v).dtype, c)),
    nonzero: (v, dtype) => cast(net, binary(net, "ne", v, scalar(net, net.typeOf(v).dtype, 0)), dtype),
    cast: (v, dtype) => cast(net, v, dtype),
    constant: (t: Tensor) => net.constant(t),
    linear: (x, w) => matmul(net, x, net.constant(w), true),
    choose: (mask, x, y) => net.add({ type: "select", inputs: [net.constant(mask), x, y] }),
    take: (v, positions, shape) => {
      const n = numel(net.typeOf(v).shape);
      const flat = reshape(net, v, [n]);
      const idx = net.constant(tensorFromNumbers("int64", shape, positions));
      return net.add({ type: "gather", inputs: [flat, idx], axis: 0, mode: "default" });
    },
  };
}

const addc = (divide: boolean): ConverterSpec<AddcArgs> => ({
  name: divide ? "addcdiv" : "addcmul",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const e = layerEmitter(net.net);
    const out = outType(node, net).dtype;
    const [s, t1, t2] = [a.self, a.tensor1, a.tensor2].map((t) => cast(net.net, net.input(t), out));
    return [lowerAddc(e, s, t1, t2, Number(a.value.value), divide)];
  },
});

const vectorNorm: ConverterSpec<VectorNormArgs> = {
  name: "vector-norm",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const x = net.input(a.self);
    const axes = normAxes(node.op, a.dim, net.typeOf(a.self).shape.length);
    return [lowerVectorNorm(layerEmitter(net.net), x, a.ord, axes, a.keepdim, a.dtype)];
  },
};

const einsum: ConverterSpec<{ readonly equation: string; readonly tensors: readonly string[] }> = {
  name: "einsum-bmm",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const shapes = a.tensors.map((t) => net.typeOf(t).shape);
    const spec = parseEinsum(
      node.op,
      a.equation,
      shapes.map((s) => s.length),
    );
    const sizes = einsumSizes(node.op, spec, shapes);
    const v = lowerEinsum(
      layerEmitter(net.net),
      spec,
      sizes,
      a.tensors.map((t) => net.input(t)),
    );
    return [v];
  },
};

const asStrided: ConverterSpec<AsStridedArgs> = {
  name: "as-strided",
  supports: (_node, a, ctx) => {
    const producer = ctx.graph.nodes.find((n) => n.outputs.includes(a.self))?.op;
    return producer !== undefined && STRIDED_VIEW_OPS.has(producer)
      ? refuse(`as_strided of a ${producer} result reads that view's base storage; LibTorch runs it`)
      : SUPPORTED;
  },
  convert: (_node, a, net) => [lowerAsStrided(layerEmitter(net.net), net.input(a.self), a)],
};

const scatter: ConverterSpec<ScatterArgs> = {
  name: "scatter-select",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const { positions } = scatterPositions(node.op, a, net.typeOf(a.self).shape);
    return [lowerScatter(layerEmitter(net.net), net.input(a.self), net.input(a.src), positions)];
  },
};

const aaResize = (kind: ResizeKind): ConverterSpec<AaResizeArgs> => ({
  name: kind === "cubic" ? "bicubic-matmul" : `${kind}-aa-matmul`,
  supports: (_node, a, ctx) =>
    isFloating(ctx.typeOf(a.input).dtype) ? SUPPORTED : refuse("a separable resize needs a float input"),
  convert: (node, a, net) => {
    const { out, scale } = aaGeometry(node.op, a, net.typeOf(a.input).shape);
    return [lowerAaResize(layerEmitter(net.net), net.input(a.input), kind, out, scale, a.alignCorners)];
  },
});

const repeatInterleave: ConverterSpec<RepeatInterleaveArgs> = {
  name: "repeat-interleave-broadcast",
  supports: () => SUPPORTED,
  convert: (_node, a, net) => [lowerRepeatInterleave(layerEmitter(net.net), net.input(a.self), a)],
};

export const COMPOSITE_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.addcmul.default", addc(false)),
  converter("aten.addcdiv.default", addc(true)),
  converter("aten.linalg_vector_norm.default", vectorNorm),
  converter("aten.einsum.default", einsum),
  converter("aten.as_strided.default", asStrided),
  converter("aten.slice_scatter.default", scatter),
  converter("aten.select_scatter.default", scatter),
  converter("aten._upsample_bilinear2d_aa.default", aaResize("bilinear")),
  converter("aten._upsample_bilinear2d_aa.vec", aaResize("bilinear")),
  converter("aten._upsample_bicubic2d_aa.default", aaResize("bicubic")),
  converter("aten._upsample_bicubic2d_aa.vec", aaResize("bicubic")),
  converter("aten.upsample_bicubic2d.default", aaResize("cubic")),
  converter("aten.upsample_bicubic2d.vec", aaResize("cubic")),
  converter("aten.repeat_interleave.self_int", repeatInterleave),
];

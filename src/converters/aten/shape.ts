import { broadcastTo, cast, normalizeDim, permute, reshape, transposeAxes } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter, SUPPORTED } from "../types.js";
import { outType } from "./common.js";

// Views and copies: the node's static result type already says the shape, so each becomes one shuffle,
// one broadcast, or nothing at all.

/** Any op whose result is its input under a new shape (view, reshape, squeeze, flatten, clone, …). */
const reshapeToResult: ConverterSpec<{ readonly self: string }> = {
  name: "reshape",
  supports: () => SUPPORTED,
  convert: (node, a, net) => [reshape(net.net, net.input(a.self), outType(node, net).shape)],
};

const permuteSpec: ConverterSpec<{ readonly self: string; readonly dims: readonly number[] }> = {
  name: "permute",
  supports: () => SUPPORTED,
  convert: (_node, a, net) => {
    const rank = net.typeOf(a.self).shape.length;
    return [
      permute(
        net.net,
        net.input(a.self),
        a.dims.map((d) => normalizeDim(d, rank)),
      ),
    ];
  },
};

const transpose: ConverterSpec<{ readonly self: string; readonly dim0: number; readonly dim1: number }> = {
  name: "transpose",
  supports: () => SUPPORTED,
  convert: (_node, a, net) => {
    if (net.typeOf(a.self).shape.length === 0) return [net.input(a.self)];
    return [transposeAxes(net.net, net.input(a.self), a.dim0, a.dim1)];
  },
};

const t: ConverterSpec<{ readonly self: string }> = {
  name: "transpose",
  supports: () => SUPPORTED,
  convert: (_node, a, net) => {
    const x = net.input(a.self);
    return [net.typeOf(a.self).shape.length === 2 ? permute(net.net, x, [1, 0]) : x];
  },
};

const expand: ConverterSpec<{ readonly self: string }> = {
  name: "broadcast",
  supports: () => SUPPORTED,
  convert: (node, a, net) => [broadcastTo(net.net, net.input(a.self), outType(node, net).shape)],
};

/** copy(self, src): src broadcast to self's shape, in self's dtype. */
const copy: ConverterSpec<{ readonly self: string; readonly src: string }> = {
  name: "copy",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const out = outType(node, net);
    return [broadcastTo(net.net, cast(net.net, net.input(a.src), out.dtype), out.shape)];
  },
};

export const SHAPE_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.view.default", reshapeToResult),
  converter("aten._unsafe_view.default", reshapeToResult),
  converter("aten.reshape.default", reshapeToResult),
  converter("aten.view_as.default", reshapeToResult),
  converter("aten.reshape_as.default", reshapeToResult),
  converter("aten.flatten.using_ints", reshapeToResult),
  converter("aten.unflatten.int", reshapeToResult),
  converter("aten.unsqueeze.default", reshapeToResult),
  converter("aten.squeeze.default", reshapeToResult),
  converter("aten.squeeze.dim", reshapeToResult),
  converter("aten.squeeze.dims", reshapeToResult),
  converter("aten.alias.default", reshapeToResult),
  converter("aten.detach.default", reshapeToResult),
  converter("aten.lift_fresh_copy.default", reshapeToResult),
  converter("aten.clone.default", reshapeToResult),
  converter("aten.contiguous.default", reshapeToResult),
  converter("aten.permute.default", permuteSpec),
  converter("aten.transpose.int", transpose),
  converter("aten.swapaxes.default", transpose),
  converter("aten.swapdims.default", transpose),
  converter("aten.t.default", t),
  converter("aten.expand.default", expand),
  converter("aten.expand_as.default", expand),
  converter("aten.copy.default", copy),
];

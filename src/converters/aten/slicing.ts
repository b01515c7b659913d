import type { NetworkBuilder } from "../../network/builder.js";
import { flip, resolveSlice, selectIndex, sliceAxis } from "../impl/slice.js";
import { broadcastTo, normalizeDim, reshape } from "../impl/tensors.js";
import {
  type AnyCandidate,
  type ConversionNet,
  type ConverterSpec,
  converter,
  refuse,
  SUPPORTED,
} from "../types.js";
import { outType } from "./common.js";

interface Slice {
  readonly self: string;
  readonly dim: number;
  readonly start: number | null;
  readonly end: number | null;
  readonly step: number;
}

const slice: ConverterSpec<Slice> = {
  name: "slice",
  supports: (_node, a) => (a.step >= 1 ? SUPPORTED : refuse(`slice step ${a.step} must be positive`)),
  convert: (_node, a, net) => {
    const shape = net.typeOf(a.self).shape;
    const d = normalizeDim(a.dim, shape.length);
    const [s, e] = resolveSlice(shape[d], a.start, a.end);
    return [sliceAxis(net.net, net.input(a.self), d, s, e, a.step)];
  },
};

const narrow: ConverterSpec<{
  readonly self: string;
  readonly dim: number;
  readonly start: number;
  readonly length: number;
}> = {
  name: "slice",
  supports: () => SUPPORTED,
  convert: (_node, a, net) => {
    const shape = net.typeOf(a.self).shape;
    const d = normalizeDim(a.dim, shape.length);
    const s = a.start < 0 ? a.start + shape[d] : a.start;
    return [sliceAxis(net.net, net.input(a.self), d, s, s + a.length, 1)];
  },
};

const select: ConverterSpec<{ readonly self: string; readonly dim: number; readonly index: number }> = {
  name: "select",
  supports: () => SUPPORTED,
  convert: (_node, a, net) => [selectIndex(net.net, net.input(a.self), a.dim, a.index)],
};

/** Consecutive pieces along `dim` whose lengths are the outputs' sizes there (split, chunk, unbind). */
function pieces(
  net: ConversionNet,
  outputs: readonly string[],
  self: string,
  dim: number,
  squeeze: boolean,
): string[] {
  const shape = net.typeOf(self).shape;
  const d = normalizeDim(dim, shape.length);
  const x = net.input(self);
  let at = 0;
  return outputs.map((o) => {
    const out = net.typeOf(o).shape;
    const len = squeeze ? 1 : out[d];
    const p = sliceAxis(net.net, x, d, at, at + len, 1);
    at += len;
    return squeeze ? reshape(net.net, p, out) : p;
  });
}

const split: ConverterSpec<{ readonly self: string; readonly dim: number }> = {
  name: "split",
  supports: () => SUPPORTED,
  convert: (node, a, net) => pieces(net, node.outputs, a.self, a.dim, false),
};

const unbind: ConverterSpec<{ readonly self: string; readonly dim: number }> = {
  name: "unbind",
  supports: () => SUPPORTED,
  convert: (node, a, net) => pieces(net, node.outputs, a.self, a.dim, true),
};

const flipSpec: ConverterSpec<{ readonly self: string; readonly dims: readonly number[] }> = {
  name: "flip",
  supports: () => SUPPORTED,
  convert: (_node, a, net) => [flip(net.net, net.input(a.self), a.dims)],
};

/** Rolls one axis: the last k elements move to the front (two slices and a concatenation). */
function rollAxis(net: NetworkBuilder, x: string, d: number, shift: number): string {
  const n = net.typeOf(x).shape[d];
  const k = n === 0 ? 0 : ((shift % n) + n) % n;
  if (k === 0) return x;
  const tail = sliceAxis(net, x, d, n - k, n, 1);
  const head = sliceAxis(net, x, d, 0, n - k, 1);
  return net.add({ type: "concatenation", inputs: [tail, head], axis: d }, "roll");
}

/**
 * A roll over several dims as one concatenation tree of 2^k slices of `x` itself (each slice cut along every
 * rolled dim), so the whole roll is one element kernel: rolling one dim after another made each later roll read
 * the previous one's concatenation twice, which kept them apart (Swin's shifted windows: two copies per roll).
 */
function rollAxes(
  net: NetworkBuilder,
  x: string,
  dims: readonly number[],
  shifts: readonly number[],
): string {
  const shape = net.typeOf(x).shape;
  const by = new Map<number, number>();
  for (const [i, d] of dims.entries()) by.set(d, (by.get(d) ?? 0) + shifts[i]);
  const rolled = [...by]
    .map(([d, s]) => ({ d, k: shape[d] === 0 ? 0 : ((s % shape[d]) + shape[d]) % shape[d] }))
    .filter((r) => r.k !== 0);
  if (rolled.length === 0) return x;
  if (rolled.length === 1) return rollAxis(net, x, rolled[0].d, rolled[0].k);
  const piece = (level: number, starts: number[], ends: number[]): string => {
    if (level === rolled.length) {
      return net.add({ type: "slice", inputs: [x], starts, ends, steps: shape.map(() => 1) }, "roll");
    }
    const { d, k } = rolled[level];
    const n = shape[d];
    const cut = (lo: number, hi: number) =>
      piece(
        level + 1,
        starts.map((v, a) => (a === d ? lo : v)),
        ends.map((v, a) => (a === d ? hi : v)),
      );
    return net.add({ type: "concatenation", inputs: [cut(n - k, n), cut(0, n - k)], axis: d }, "roll");
  };
  return piece(
    0,
    shape.map(() => 0),
    [...shape],
  );
}

const roll: ConverterSpec<{
  readonly self: string;
  readonly shifts: readonly number[];
  readonly dims: readonly number[];
}> = {
  name: "roll",
  supports: (_node, a) =>
    a.dims.length === 0 || a.dims.length === a.shifts.length
      ? SUPPORTED
      : refuse(`${a.shifts.length} shifts for ${a.dims.length} dims`),
  convert: (_node, a, net) => {
    const shape = net.typeOf(a.self).shape;
    const x = net.input(a.self);
    if (a.dims.length === 0) {
      const flat = reshape(net.net, x, [shape.reduce((p, d) => p * d, 1)]);
      return [reshape(net.net, rollAxis(net.net, flat, 0, a.shifts[0]), shape)];
    }
    return [
      rollAxes(
        net.net,
        x,
        a.dims.map((d) => normalizeDim(d, shape.length)),
        a.shifts,
      ),
    ];
  },
};

/** repeat: view as [1, s0, 1, s1, …], broadcast to [r0, s0, r1, s1, …], merge pairs. */
const repeat: ConverterSpec<{ readonly self: string; readonly repeats: readonly number[] }> = {
  name: "repeat",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const s = net.typeOf(a.self).shape;
    const r = a.repeats;
    const padded = [...new Array<number>(r.length - s.length).fill(1), ...s];
    const x = reshape(
      net.net,
      net.input(a.self),
      padded.flatMap((d) => [1, d]),
    );
    const b = broadcastTo(
      net.net,
      x,
      padded.flatMap((d, i) => [r[i], d]),
    );
    return [reshape(net.net, b, outType(node, net).shape)];
  },
};

export const SLICING_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.slice.Tensor", slice),
  converter("aten.narrow.default", narrow),
  converter("aten.select.int", select),
  converter("aten.split.Tensor", split),
  converter("aten.split.sizes", split),
  converter("aten.split_with_sizes.default", split),
  converter("aten.chunk.default", split),
  converter("aten.unbind.int", unbind),
  converter("aten.flip.default", flipSpec),
  converter("aten.roll.default", roll),
  converter("aten.repeat.default", repeat),
];

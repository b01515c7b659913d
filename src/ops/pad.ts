import { numel, type Shape, stridesOf, type Tensor } from "../ir/tensor.js";
import { fromF64, gather, nums, tt } from "./data.js";
import { defineOp, OpArgError, opTable } from "./schema.js";

export type PadMode = "constant" | "reflect" | "replicate" | "circular";

/** Per-dim [lo, hi] from PyTorch's pad list, which starts at the last dim. */
function padPairs(op: string, rank: number, pad: readonly number[]): [number, number][] {
  if (pad.length % 2 !== 0 || pad.length / 2 > rank)
    throw new OpArgError(op, "pad", `[${pad.join(", ")}] does not fit a ${rank}-d tensor`);
  const pairs: [number, number][] = Array.from({ length: rank }, () => [0, 0]);
  for (let i = 0; i < pad.length / 2; i++) pairs[rank - 1 - i] = [pad[2 * i], pad[2 * i + 1]];
  return pairs;
}

function padShape(op: string, shape: Shape, pad: readonly number[], mode: PadMode): number[] {
  const pairs = padPairs(op, shape.length, pad);
  return shape.map((s, d) => {
    const [lo, hi] = pairs[d];
    if (mode === "reflect" && (lo >= s || hi >= s))
      throw new OpArgError(op, "pad", `reflect padding (${lo}, ${hi}) must be smaller than the dim (${s})`);
    const out = s + lo + hi;
    if (out < 0)
      throw new OpArgError(op, "pad", `padding (${lo}, ${hi}) leaves dim ${d} of size ${s} negative`);
    return out;
  });
}

function source(i: number, size: number, mode: PadMode): number {
  if (i >= 0 && i < size) return i;
  switch (mode) {
    case "constant":
      return -1;
    case "reflect":
      return i < 0 ? -i : 2 * (size - 1) - i;
    case "replicate":
      return i < 0 ? 0 : size - 1;
    case "circular":
      return ((i % size) + size) % size;
  }
}

export function pad(op: string, t: Tensor, padList: readonly number[], mode: PadMode, value: number): Tensor {
  const out = padShape(op, t.shape, padList, mode);
  const pairs = padPairs(op, t.shape.length, padList);
  const ist = stridesOf(t.shape);
  const ost = stridesOf(out);
  const n = numel(out);
  const idx = new Int32Array(n);
  let filled = false;
  for (let i = 0; i < n; i++) {
    let off = 0;
    for (let d = 0; d < out.length; d++) {
      const s = source((Math.floor(i / ost[d]) % out[d]) - pairs[d][0], t.shape[d], mode);
      if (s < 0) {
        off = -1;
        break;
      }
      off += s * ist[d];
    }
    idx[i] = off;
    if (off < 0) filled = true;
  }
  if (!filled) return gather(t, out, idx);
  const x = nums(t);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = idx[i] < 0 ? value : x[idx[i]];
  return fromF64(t.dtype, out, v);
}

function modeOf(op: string, m: string): PadMode {
  if (m === "constant" || m === "reflect" || m === "replicate" || m === "circular") return m;
  throw new OpArgError(op, "mode", `'${m}' is not constant, reflect, replicate or circular`);
}

/** reflection_padNd / replication_padNd: only the last N dims take padding. */
function fixedPad<const N extends string>(name: N, dims: number, mode: PadMode) {
  return defineOp({
    name,
    schema: `Tensor self, SymInt[${2 * dims}] padding`,
    read: (r) => ({ self: r.tensor("self"), padding: r.ints("padding") }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      return [tt(t.dtype, padShape(name, t.shape, a.padding, mode))];
    },
    evaluate: (a, valueAt) => [pad(name, valueAt(a.self), a.padding, mode, 0)],
  });
}

export const PAD_OPS = opTable(
  defineOp({
    name: "aten.constant_pad_nd.default",
    schema: "Tensor self, SymInt[] pad, Scalar value=0",
    read: (r) => ({ self: r.tensor("self"), pad: r.ints("pad"), value: r.scalar("value").value }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      return [tt(t.dtype, padShape("aten.constant_pad_nd.default", t.shape, a.pad, "constant"))];
    },
    evaluate: (a, valueAt) => [
      pad("aten.constant_pad_nd.default", valueAt(a.self), a.pad, "constant", a.value),
    ],
  }),
  defineOp({
    name: "aten.pad.default",
    schema: 'Tensor self, SymInt[] pad, str mode="constant", float? value=None',
    read: (r) => ({
      self: r.tensor("self"),
      pad: r.ints("pad"),
      mode: modeOf("aten.pad.default", r.str("mode")),
      value: r.optFloat("value") ?? 0,
    }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      return [tt(t.dtype, padShape("aten.pad.default", t.shape, a.pad, a.mode))];
    },
    evaluate: (a, valueAt) => [pad("aten.pad.default", valueAt(a.self), a.pad, a.mode, a.value)],
  }),
  fixedPad("aten.reflection_pad1d.default", 1, "reflect"),
  fixedPad("aten.reflection_pad2d.default", 2, "reflect"),
  fixedPad("aten.reflection_pad3d.default", 3, "reflect"),
  fixedPad("aten.replication_pad1d.default", 1, "replicate"),
  fixedPad("aten.replication_pad2d.default", 2, "replicate"),
  fixedPad("aten.replication_pad3d.default", 3, "replicate"),
);

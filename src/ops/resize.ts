import type { Shape, Tensor } from "../ir/tensor.js";
import { f64, fromF64, gather, tt } from "./data.js";
import { type ArgReader, defineOp, OpArgError, opTable } from "./schema.js";

export interface ResizeArgs {
  readonly self: string;
  readonly outputSize: number[] | null;
  /** Per spatial dim: the user's scale factor (PyTorch then samples at 1/scale), or null. */
  readonly scales: (number | null)[];
  readonly alignCorners: boolean;
}

function outSize(op: string, shape: Shape, a: ResizeArgs): [number, number] {
  if (shape.length !== 4 && shape.length !== 3)
    throw new OpArgError(op, "self", `expected a 4-d (or 3-d) input, got [${shape.join(", ")}]`);
  const [h, w] = shape.slice(-2);
  if (a.outputSize) {
    if (a.outputSize.length !== 2)
      throw new OpArgError(op, "output_size", `expected 2 values, got ${a.outputSize.length}`);
    return [a.outputSize[0], a.outputSize[1]];
  }
  const [sh, sw] = a.scales;
  if (sh === null || sw === null)
    throw new OpArgError(op, "scale_factors", "either output_size or scale_factors is required");
  return [Math.floor(h * sh), Math.floor(w * sw)];
}

/** PyTorch computes the sampling step in float32: 1/scale when a scale was given, else in/out. */
function step(inSize: number, out: number, scale: number | null): number {
  return Math.fround(scale !== null && scale > 0 ? 1 / scale : inSize / out);
}

function nearestIndex(out: number, inSize: number, scale: number | null): Int32Array {
  const idx = new Int32Array(out);
  const s = step(inSize, out, scale);
  for (let i = 0; i < out; i++) {
    if (out === inSize) idx[i] = i;
    else if (out === 2 * inSize) idx[i] = i >> 1;
    else idx[i] = Math.min(Math.floor(Math.fround(i * s)), inSize - 1);
  }
  return idx;
}

function nearest(op: string, t: Tensor, a: ResizeArgs): Tensor {
  const [OH, OW] = outSize(op, t.shape, a);
  const [H, W] = t.shape.slice(-2);
  const lead = t.shape.slice(0, -2);
  const planes = lead.reduce((p, d) => p * d, 1);
  const hi = nearestIndex(OH, H, a.scales[0]);
  const wi = nearestIndex(OW, W, a.scales[1]);
  const idx = new Int32Array(planes * OH * OW);
  for (let p = 0; p < planes; p++)
    for (let y = 0; y < OH; y++)
      for (let x = 0; x < OW; x++) idx[(p * OH + y) * OW + x] = p * H * W + hi[y] * W + wi[x];
  return gather(t, [...lead, OH, OW], idx);
}

/** Source positions and weights of bilinear sampling along one dim (area_pixel_compute_source_index). */
function linearTaps(out: number, inSize: number, alignCorners: boolean, scale: number | null) {
  const s = alignCorners ? (out > 1 ? (inSize - 1) / (out - 1) : 0) : step(inSize, out, scale);
  const i0 = new Int32Array(out);
  const i1 = new Int32Array(out);
  const l1 = new Float64Array(out);
  for (let i = 0; i < out; i++) {
    const src = alignCorners ? s * i : Math.max(s * (i + 0.5) - 0.5, 0);
    const f = Math.min(Math.floor(src), inSize - 1);
    i0[i] = f;
    i1[i] = f < inSize - 1 ? f + 1 : f;
    l1[i] = src - f;
  }
  return { i0, i1, l1 };
}

function bilinear(op: string, t: Tensor, a: ResizeArgs): Tensor {
  const [OH, OW] = outSize(op, t.shape, a);
  const [H, W] = t.shape.slice(-2);
  const lead = t.shape.slice(0, -2);
  const planes = lead.reduce((p, d) => p * d, 1);
  const x = f64(t);
  const th = linearTaps(OH, H, a.alignCorners, a.scales[0]);
  const tw = linearTaps(OW, W, a.alignCorners, a.scales[1]);
  const out = new Float64Array(planes * OH * OW);
  for (let p = 0; p < planes; p++) {
    const b = p * H * W;
    for (let y = 0; y < OH; y++) {
      const r0 = b + th.i0[y] * W;
      const r1 = b + th.i1[y] * W;
      const ly = th.l1[y];
      for (let xx = 0; xx < OW; xx++) {
        const c0 = tw.i0[xx];
        const c1 = tw.i1[xx];
        const lx = tw.l1[xx];
        const top = (1 - lx) * x[r0 + c0] + lx * x[r0 + c1];
        const bot = (1 - lx) * x[r1 + c0] + lx * x[r1 + c1];
        out[(p * OH + y) * OW + xx] = (1 - ly) * top + ly * bot;
      }
    }
  }
  return fromF64(t.dtype, [...lead, OH, OW], out);
}

function resizeOp<const N extends string>(
  name: N,
  schema: string,
  read: (r: ArgReader) => ResizeArgs,
  run: typeof nearest,
) {
  return defineOp({
    name,
    schema,
    read,
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      return [tt(t.dtype, [...t.shape.slice(0, -2), ...outSize(name, t.shape, a)])];
    },
    evaluate: (a, valueAt) => [run(name, valueAt(a.self), a)],
  });
}

function vecScales(r: ArgReader): (number | null)[] {
  const s = r.optFloats("scale_factors");
  if (s === null) return [null, null];
  if (s.length !== 2) r.fail("scale_factors", `expected 2 values, got ${s.length}`);
  return s;
}

export const RESIZE_OPS = opTable(
  resizeOp(
    "aten.upsample_nearest2d.default",
    "Tensor self, SymInt[2] output_size, float? scales_h=None, float? scales_w=None",
    (r) => ({
      self: r.tensor("self"),
      outputSize: r.ints("output_size"),
      scales: [r.optFloat("scales_h"), r.optFloat("scales_w")],
      alignCorners: false,
    }),
    nearest,
  ),
  resizeOp(
    "aten.upsample_nearest2d.vec",
    "Tensor input, SymInt[]? output_size, float[]? scale_factors",
    (r) => ({
      self: r.tensor("input"),
      outputSize: r.optInts("output_size"),
      scales: vecScales(r),
      alignCorners: false,
    }),
    nearest,
  ),
  resizeOp(
    "aten.upsample_bilinear2d.default",
    "Tensor self, SymInt[2] output_size, bool align_corners, float? scales_h=None, float? scales_w=None",
    (r) => ({
      self: r.tensor("self"),
      outputSize: r.ints("output_size"),
      scales: [r.optFloat("scales_h"), r.optFloat("scales_w")],
      alignCorners: r.bool("align_corners"),
    }),
    bilinear,
  ),
  resizeOp(
    "aten.upsample_bilinear2d.vec",
    "Tensor input, SymInt[]? output_size, bool align_corners, float[]? scale_factors",
    (r) => ({
      self: r.tensor("input"),
      outputSize: r.optInts("output_size"),
      scales: vecScales(r),
      alignCorners: r.bool("align_corners"),
    }),
    bilinear,
  ),
);

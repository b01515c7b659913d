// Composite ops that real networks use and that the lowering pipeline decomposes into the core set
// (src/passes/decompositions/composite.ts): addcmul/addcdiv (timm ConvNeXt-V2), linalg_vector_norm (XCiT,
// EdgeNeXt), einsum (MaxViT), as_strided (core ATen's adaptive pooling), and the antialiased resizes (timm's
// position-embedding resampling). Each reference is written from PyTorch's definition in float64.
import { isFloating } from "../ir/dtype.js";
import { numel, type Shape, stridesOf, type Tensor } from "../ir/tensor.js";
import {
  broadcastShapes,
  expandNums,
  f64,
  fromF64,
  normDim,
  reducedShape,
  resultType,
  scalarDtype,
  tt,
} from "./data.js";
import { type ArgReader, defineOp, OpArgError, opTable, type ScalarValue } from "./schema.js";
import type { TypeOf } from "./types.js";
import { stridedIndex } from "./view.js";

// ------------------------------------------------------------------------------------------ addcmul / addcdiv

export interface AddcArgs {
  readonly self: string;
  readonly tensor1: string;
  readonly tensor2: string;
  readonly value: ScalarValue;
}

function addcType(name: string, a: AddcArgs, typeOf: TypeOf) {
  const types = [a.self, a.tensor1, a.tensor2].map((t) => typeOf(t));
  const dtype = resultType(...types.map((t) => ({ dtype: t.dtype, shape: t.shape, wrapped: false })));
  if (name === "aten.addcdiv.default" && !isFloating(dtype))
    throw new OpArgError(name, "tensor1", "integer division with addcdiv is not supported (as in PyTorch)");
  if (!isFloating(dtype) && isFloating(scalarDtype(a.value)))
    throw new OpArgError(name, "value", `a float value for ${dtype} tensors`);
  return tt(dtype, broadcastShapes(name, ...types.map((t) => t.shape)));
}

/** self + value·t1·t2 (addcmul) or self + value·t1/t2 (addcdiv), evaluated left to right as ATen's CPU kernel. */
function addcOp<const N extends string>(name: N, divide: boolean) {
  return defineOp({
    name,
    schema: "Tensor self, Tensor tensor1, Tensor tensor2, *, Scalar value=1",
    read: (r): AddcArgs => ({
      self: r.tensor("self"),
      tensor1: r.tensor("tensor1"),
      tensor2: r.tensor("tensor2"),
      value: r.scalar("value"),
    }),
    infer: (a, typeOf) => [addcType(name, a, typeOf)],
    evaluate: (a, valueAt) => {
      const out = addcType(name, a, (t) => valueAt(t));
      const [s, t1, t2] = [a.self, a.tensor1, a.tensor2].map((t) => expandNums(valueAt(t), out.shape));
      const v = Number(a.value.value);
      const n = numel(out.shape);
      const res = new Float64Array(n);
      for (let i = 0; i < n; i++) res[i] = s[i] + (divide ? (v * t1[i]) / t2[i] : v * t1[i] * t2[i]);
      return [fromF64(out.dtype, out.shape, res)];
    },
  });
}

// ------------------------------------------------------------------------------------------ linalg_vector_norm

export interface VectorNormArgs {
  readonly self: string;
  readonly ord: number;
  readonly dim: readonly number[] | null;
  readonly keepdim: boolean;
  readonly dtype: ReturnType<typeof scalarDtype> | null;
}

/** The reduced axes: all of them for None or [] (as PyTorch), else the normalized, sorted, distinct list. */
export function normAxes(op: string, dim: readonly number[] | null, rank: number): number[] {
  if (dim === null || dim.length === 0) return Array.from({ length: rank }, (_, i) => i);
  const axes = dim.map((d) => normDim(op, d, Math.max(rank, 1)));
  if (new Set(axes).size !== axes.length) throw new OpArgError(op, "dim", `repeated dims [${dim}]`);
  return axes.sort((x, y) => x - y);
}

const VECTOR_NORM = "aten.linalg_vector_norm.default";

function vectorNormType(a: VectorNormArgs, typeOf: TypeOf) {
  const t = typeOf(a.self);
  if (!isFloating(t.dtype))
    throw new OpArgError(VECTOR_NORM, "self", `expected a floating point tensor, got ${t.dtype}`);
  const axes = normAxes(VECTOR_NORM, a.dim, t.shape.length);
  if (a.ord < 0 || !Number.isFinite(a.ord))
    for (const ax of axes)
      if (t.shape[ax] === 0)
        throw new OpArgError(VECTOR_NORM, "ord", `ord=${a.ord} over an empty dimension is undefined`);
  return { type: tt(a.dtype ?? t.dtype, reducedShape(t.shape, axes, a.keepdim)), axes };
}

/** ‖x‖_ord over `axes`: Σ|x|^p)^(1/p); max |x| (inf); min |x| (−inf); the count of nonzeros (0). */
export function vectorNorm(x: Tensor, ord: number, axes: readonly number[]): Float64Array {
  const v = f64(x);
  const shape = x.shape;
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const n = numel(outShape);
  const acc = new Float64Array(n).fill(
    ord === Number.POSITIVE_INFINITY ? 0 : ord === Number.NEGATIVE_INFINITY ? Number.POSITIVE_INFINITY : 0,
  );
  const outStrides = stridesOf(outShape);
  const coord = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < v.length; i++) {
    let o = 0;
    for (let k = 0; k < shape.length; k++) if (!axes.includes(k)) o += coord[k] * outStrides[k];
    const m = Math.abs(v[i]);
    if (ord === Number.POSITIVE_INFINITY) acc[o] = Number.isNaN(m) || m > acc[o] ? m : acc[o];
    else if (ord === Number.NEGATIVE_INFINITY) acc[o] = Number.isNaN(m) || m < acc[o] ? m : acc[o];
    else if (ord === 0) acc[o] += m !== 0 ? 1 : 0;
    else if (ord === 1) acc[o] += m;
    else if (ord === 2) acc[o] += m * m;
    else acc[o] += m ** ord;
    for (let k = shape.length - 1; k >= 0; k--) {
      if (++coord[k] < shape[k]) break;
      coord[k] = 0;
    }
  }
  if (ord !== 0 && ord !== 1 && Number.isFinite(ord))
    for (let i = 0; i < n; i++) acc[i] = ord === 2 ? Math.sqrt(acc[i]) : acc[i] ** (1 / ord);
  return acc;
}

// ------------------------------------------------------------------------------------------ einsum

/** An einsum equation with its ellipses expanded for the given operand ranks. */
export interface EinsumSpec {
  /** Per operand, one label per dim (ellipsis dims get labels "0", "1", … right-aligned across operands). */
  readonly inputs: readonly (readonly string[])[];
  readonly output: readonly string[];
}

const isLetter = (c: string) => /^[a-zA-Z]$/.test(c);

/** Parses `equation` for operands of `ranks` (PyTorch's rules: implicit output = sorted labels seen once). */
export function parseEinsum(op: string, equation: string, ranks: readonly number[]): EinsumSpec {
  const eq = equation.replace(/\s+/g, "");
  const arrow = eq.indexOf("->");
  const lhs = arrow < 0 ? eq : eq.slice(0, arrow);
  const terms = lhs.split(",");
  if (terms.length !== ranks.length)
    throw new OpArgError(op, "equation", `${terms.length} operand terms for ${ranks.length} tensors`);
  const read = (term: string, where: string) => {
    const labels: string[] = [];
    let ellipsis = false;
    for (let i = 0; i < term.length; i++) {
      if (term.startsWith("...", i)) {
        if (ellipsis) throw new OpArgError(op, "equation", `two ellipses in ${where}`);
        ellipsis = true;
        labels.push("...");
        i += 2;
      } else if (isLetter(term[i])) labels.push(term[i]);
      else throw new OpArgError(op, "equation", `invalid subscript '${term[i]}' in ${where}`);
    }
    return labels;
  };
  const raw = terms.map((t, i) => read(t, `operand ${i}`));
  // Ellipsis dims are labelled by their distance from the ellipsis' right end ("0" is its last dim), so they
  // line up right-aligned across operands, as broadcasting does.
  let ellipsisRank = 0;
  const fixed = raw.map((labels, i) => {
    const letters = labels.filter((l) => l !== "...").length;
    const pos = labels.indexOf("...");
    if (pos < 0 ? ranks[i] !== letters : ranks[i] < letters)
      throw new OpArgError(
        op,
        "equation",
        `operand ${i} has rank ${ranks[i]}, the equation gives it ${letters} subscripts`,
      );
    if (pos < 0) return labels;
    const e = ranks[i] - letters;
    ellipsisRank = Math.max(ellipsisRank, e);
    const ell = Array.from({ length: e }, (_, k) => `${e - 1 - k}`);
    return [...labels.slice(0, pos), ...ell, ...labels.slice(pos + 1)];
  });
  const ellipsisLabels = Array.from({ length: ellipsisRank }, (_, k) => `${ellipsisRank - 1 - k}`);
  let output: string[];
  if (arrow >= 0) {
    const out = read(eq.slice(arrow + 2), "the output");
    const seen = new Set<string>();
    for (const l of out) {
      if (l !== "..." && !fixed.some((ls) => ls.includes(l)))
        throw new OpArgError(op, "equation", `output subscript '${l}' does not appear in the operands`);
      if (seen.has(l)) throw new OpArgError(op, "equation", `output subscript '${l}' appears twice`);
      seen.add(l);
    }
    output = out.flatMap((l) => (l === "..." ? ellipsisLabels : [l]));
  } else {
    const counts = new Map<string, number>();
    for (const ls of fixed) for (const l of ls) if (isLetter(l)) counts.set(l, (counts.get(l) ?? 0) + 1);
    const once = [...counts].filter(([, c]) => c === 1).map(([l]) => l);
    output = [...ellipsisLabels, ...once.sort()];
  }
  return { inputs: fixed, output };
}

/** The size of every label (1-sized dims broadcast; any other mismatch is an error). */
export function einsumSizes(op: string, spec: EinsumSpec, shapes: readonly Shape[]): Map<string, number> {
  const sizes = new Map<string, number>();
  spec.inputs.forEach((labels, i) => {
    labels.forEach((l, d) => {
      const n = shapes[i][d];
      const known = sizes.get(l);
      if (known === undefined || known === 1) sizes.set(l, n);
      else if (n !== known && n !== 1)
        throw new OpArgError(op, "tensors", `subscript '${l}' has sizes ${known} and ${n}`);
    });
  });
  return sizes;
}

const EINSUM = "aten.einsum.default";

function einsumType(a: { equation: string; tensors: readonly string[] }, typeOf: TypeOf) {
  const types = a.tensors.map((t) => typeOf(t));
  if (types.length === 0) throw new OpArgError(EINSUM, "tensors", "no operands");
  const dtype = types[0].dtype;
  if (types.some((t) => t.dtype !== dtype))
    throw new OpArgError(EINSUM, "tensors", `operands of different dtypes (${types.map((t) => t.dtype)})`);
  const spec = parseEinsum(
    EINSUM,
    a.equation,
    types.map((t) => t.shape.length),
  );
  const sizes = einsumSizes(
    EINSUM,
    spec,
    types.map((t) => t.shape),
  );
  return {
    spec,
    sizes,
    type: tt(
      dtype,
      spec.output.map((l) => sizes.get(l) ?? 1),
    ),
  };
}

// ------------------------------------------------------------------------------------------ as_strided

export interface AsStridedArgs {
  readonly self: string;
  readonly size: readonly number[];
  readonly stride: readonly number[];
  readonly storageOffset: number;
}

const AS_STRIDED = "aten.as_strided.default";

/** Flat (row-major) positions in `self`'s storage that as_strided reads, in output order. */
/** Checks (size, stride, offset) against a storage of `selfNumel` elements, without building the index. */
export function checkAsStrided(a: AsStridedArgs, selfNumel: number): void {
  if (a.size.length !== a.stride.length)
    throw new OpArgError(AS_STRIDED, "stride", `${a.stride.length} strides for ${a.size.length} dims`);
  if (a.stride.some((s) => s < 0)) throw new OpArgError(AS_STRIDED, "stride", "negative strides");
  if (numel(a.size) === 0) return;
  // Strides are non-negative, so the last element read is the largest offset.
  const last = a.size.reduce((o, d, k) => o + (d - 1) * a.stride[k], a.storageOffset);
  if (last >= selfNumel)
    throw new OpArgError(
      AS_STRIDED,
      "size",
      `reads element ${last} of a storage of ${selfNumel} (torchc treats the input as its own contiguous storage)`,
    );
}

/** The storage position of each element of the as_strided view (checked first). */
export function asStridedIndex(a: AsStridedArgs, selfNumel: number): Int32Array {
  checkAsStrided(a, selfNumel);
  return stridedIndex(a.size, a.stride, a.storageOffset);
}

// ------------------------------------------------------------------------------------------ antialiased resize

export type AaKind = "bilinear" | "bicubic";
/** The separable resizes lowered to two constant matrix products: the antialiased ones and plain bicubic ("cubic"). */
export type ResizeKind = AaKind | "cubic";

/** PIL's filters as ATen's UpSampleKernel.cpp uses them with antialias=True (Keys cubic with a = −0.5). */
export function aaFilter(kind: AaKind, x: number): number {
  const t = Math.abs(x);
  if (kind === "bilinear") return t < 1 ? 1 - t : 0;
  const a = -0.5;
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

/** area_pixel_compute_scale: input/output (or 1/scale when given), or (in−1)/(out−1) with align_corners. */
export function aaScale(
  inSize: number,
  outSize: number,
  alignCorners: boolean,
  scale: number | null,
): number {
  if (alignCorners) return outSize > 1 ? (inSize - 1) / (outSize - 1) : 0;
  return scale !== null && scale > 0 ? 1 / scale : inSize / outSize;
}

/**
 * The [out, in] weight matrix of one axis: the filter's support widened by the downsampling factor, centred on
 * scale·(i + 0.5), each row normalized to sum 1 (ATen's _compute_indices_min_size_weights_aa).
 */
export function aaWeights(kind: AaKind, inSize: number, outSize: number, scale: number): Float64Array {
  const interp = kind === "bilinear" ? 2 : 4;
  const support = scale >= 1 ? (interp / 2) * scale : interp / 2;
  const maxSize = Math.ceil(support) * 2 + 1;
  const invscale = scale >= 1 ? 1 / scale : 1;
  const w = new Float64Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.max(Math.min(Math.trunc(center + support + 0.5), inSize) - xmin, 0), maxSize);
    let total = 0;
    const row: number[] = [];
    for (let j = 0; j < xsize; j++) {
      const v = aaFilter(kind, (j + xmin - center + 0.5) * invscale);
      row.push(v);
      total += v;
    }
    for (let j = 0; j < xsize; j++) w[i * inSize + xmin + j] = total !== 0 ? row[j] / total : row[j];
  }
  return w;
}

/** Keys' cubic convolution with a = −0.75, as ATen's non-antialiased bicubic uses it (UpSample.h). */
function cubicCoefficients(t: number): [number, number, number, number] {
  const A = -0.75;
  const near = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
  const far = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return [far(t + 1), near(t), near(1 - t), far(2 - t)];
}

/**
 * The [out, in] weight matrix of plain bicubic along one axis: four taps around the source position
 * (align_corners ? scale·i : scale·(i + 0.5) − 0.5, not clamped), indices clamped to the edge as ATen does.
 */
export function cubicWeights(
  inSize: number,
  outSize: number,
  scale: number,
  alignCorners: boolean,
): Float64Array {
  const w = new Float64Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    const real = alignCorners ? scale * i : scale * (i + 0.5) - 0.5;
    const base = Math.floor(real);
    const c = cubicCoefficients(real - base);
    for (let k = 0; k < 4; k++) {
      const j = Math.min(Math.max(base - 1 + k, 0), inSize - 1);
      w[i * inSize + j] += c[k];
    }
  }
  return w;
}

/** The weight matrix of one axis for any separable resize kind. */
export function resizeWeights(
  kind: ResizeKind,
  inSize: number,
  outSize: number,
  scale: number,
  alignCorners: boolean,
): Float64Array {
  return kind === "cubic"
    ? cubicWeights(inSize, outSize, scale, alignCorners)
    : aaWeights(kind, inSize, outSize, scale);
}

export interface AaResizeArgs {
  readonly input: string;
  readonly outputSize: readonly number[] | null;
  readonly alignCorners: boolean;
  /** Per spatial axis (h, w): the scale factor the caller gave, or null. */
  readonly scales: readonly (number | null)[];
}

/** Output size and per-axis source scale of a 2-D antialiased resize. */
export function aaGeometry(op: string, a: AaResizeArgs, shape: Shape): { out: number[]; scale: number[] } {
  if (shape.length !== 4) throw new OpArgError(op, "input", `expected a 4-D input, got [${shape}]`);
  const inHW = shape.slice(2);
  let out: number[];
  if (a.outputSize !== null) {
    if (a.outputSize.length !== 2)
      throw new OpArgError(op, "output_size", `expected 2 sizes, got [${a.outputSize}]`);
    out = [...a.outputSize];
  } else {
    if (a.scales.some((s) => s === null))
      throw new OpArgError(op, "scale_factors", "needs output_size or scale_factors");
    out = inHW.map((d, i) => Math.floor(d * (a.scales[i] as number)));
  }
  if (out.some((d) => d <= 0) || inHW.some((d) => d <= 0))
    throw new OpArgError(op, "output_size", `input [${inHW}] and output [${out}] must be positive`);
  return { out, scale: inHW.map((d, i) => aaScale(d, out[i], a.alignCorners, a.scales[i])) };
}

/** Applies per-axis weight matrices [out, in] to the last two dims of an [N, C, H, W] tensor. */
export function applySeparable(
  x: Tensor,
  wh: Float64Array,
  ww: Float64Array,
  outH: number,
  outW: number,
): Float64Array {
  const [N, C, H, W] = x.shape;
  const v = f64(x);
  const tmp = new Float64Array(N * C * H * outW);
  for (let p = 0; p < N * C; p++)
    for (let h = 0; h < H; h++)
      for (let o = 0; o < outW; o++) {
        let s = 0;
        for (let w = 0; w < W; w++) s += ww[o * W + w] * v[(p * H + h) * W + w];
        tmp[(p * H + h) * outW + o] = s;
      }
  const out = new Float64Array(N * C * outH * outW);
  for (let p = 0; p < N * C; p++)
    for (let o = 0; o < outH; o++)
      for (let c = 0; c < outW; c++) {
        let s = 0;
        for (let h = 0; h < H; h++) s += wh[o * H + h] * tmp[(p * H + h) * outW + c];
        out[(p * outH + o) * outW + c] = s;
      }
  return out;
}

function aaInfer(op: string, a: AaResizeArgs, typeOf: TypeOf) {
  const t = typeOf(a.input);
  if (!isFloating(t.dtype)) throw new OpArgError(op, "input", `expected floating point, got ${t.dtype}`);
  const { out } = aaGeometry(op, a, t.shape);
  return [tt(t.dtype, [t.shape[0], t.shape[1], ...out])];
}

function aaEvaluate(kind: ResizeKind, op: string, a: AaResizeArgs, x: Tensor) {
  const { out, scale } = aaGeometry(op, a, x.shape);
  const wh = resizeWeights(kind, x.shape[2], out[0], scale[0], a.alignCorners);
  const ww = resizeWeights(kind, x.shape[3], out[1], scale[1], a.alignCorners);
  return [fromF64(x.dtype, [x.shape[0], x.shape[1], ...out], applySeparable(x, wh, ww, out[0], out[1]))];
}

/** `_upsample_*2d_aa.default`: an explicit output size and optional per-axis scales. */
function aaOp<const N extends string>(kind: ResizeKind, name: N) {
  return defineOp({
    name,
    schema:
      "Tensor self, SymInt[2] output_size, bool align_corners, float? scales_h=None, float? scales_w=None",
    read: (r): AaResizeArgs => ({
      input: r.tensor("self"),
      outputSize: r.ints("output_size"),
      alignCorners: r.bool("align_corners"),
      scales: [r.optFloat("scales_h"), r.optFloat("scales_w")],
    }),
    infer: (a, typeOf) => aaInfer(name, a, typeOf),
    evaluate: (a, valueAt) => aaEvaluate(kind, name, a, valueAt(a.input)),
  });
}

/** `_upsample_*2d_aa.vec`: an output size or scale factors. */
function aaVecOp<const N extends string>(kind: ResizeKind, name: N) {
  return defineOp({
    name,
    schema: "Tensor input, SymInt[]? output_size, bool align_corners, float[]? scale_factors",
    read: (r): AaResizeArgs => {
      const f = r.optFloats("scale_factors");
      return {
        input: r.tensor("input"),
        outputSize: r.optInts("output_size"),
        alignCorners: r.bool("align_corners"),
        scales: f === null ? [null, null] : f.length === 1 ? [f[0], f[0]] : f,
      };
    },
    infer: (a, typeOf) => aaInfer(name, a, typeOf),
    evaluate: (a, valueAt) => aaEvaluate(kind, name, a, valueAt(a.input)),
  });
}

// ------------------------------------------------------------------------------------------ repeat_interleave

export interface RepeatInterleaveArgs {
  readonly self: string;
  readonly repeats: number;
  /** null: the input is flattened first. */
  readonly dim: number | null;
  readonly outputSize: number | null;
}

const REPEAT_INTERLEAVE = "aten.repeat_interleave.self_int";

/** The result's shape, and the axis of the (flattened, when dim is None) input that repeats. */
export function repeatInterleaveGeometry(
  a: RepeatInterleaveArgs,
  shape: Shape,
): { src: number[]; axis: number; out: number[] } {
  if (a.repeats < 0)
    throw new OpArgError(REPEAT_INTERLEAVE, "repeats", `must be non-negative, got ${a.repeats}`);
  const src = a.dim === null ? [numel(shape)] : [...shape];
  const axis = a.dim === null ? 0 : normDim(REPEAT_INTERLEAVE, a.dim, shape.length);
  if (src.length === 0) src.push(1);
  const out = src.map((d, i) => (i === axis ? d * a.repeats : d));
  if (a.outputSize !== null && a.outputSize !== out[axis])
    throw new OpArgError(
      REPEAT_INTERLEAVE,
      "output_size",
      `${a.outputSize} but the result has ${out[axis]} along dim ${axis}`,
    );
  return { src, axis, out };
}

function repeatInterleave(a: RepeatInterleaveArgs, x: Tensor): Tensor {
  const { src, axis, out } = repeatInterleaveGeometry(a, x.shape);
  const v = f64(x);
  const inner = src.slice(axis + 1).reduce((p, d) => p * d, 1);
  const outer = src.slice(0, axis).reduce((p, d) => p * d, 1);
  const res: number[] = [];
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < src[axis]; i++)
      for (let r = 0; r < a.repeats; r++)
        for (let k = 0; k < inner; k++) res.push(v[(o * src[axis] + i) * inner + k]);
  return fromF64(x.dtype, out, res);
}

const repeatInterleaveOp = defineOp({
  name: REPEAT_INTERLEAVE,
  schema: "Tensor self, SymInt repeats, int? dim=None, *, SymInt? output_size=None",
  read: (r): RepeatInterleaveArgs => ({
    self: r.tensor("self"),
    repeats: r.int("repeats"),
    dim: r.optInt("dim"),
    outputSize: r.optInt("output_size"),
  }),
  infer: (a, typeOf) => {
    const t = typeOf(a.self);
    return [tt(t.dtype, repeatInterleaveGeometry(a, t.shape).out)];
  },
  evaluate: (a, valueAt) => [repeatInterleave(a, valueAt(a.self))],
});

// ------------------------------------------------------------------------------------------ slice/select_scatter

export interface ScatterArgs {
  readonly self: string;
  readonly src: string;
  readonly dim: number;
  /** slice_scatter: start, end (None = open), step; select_scatter: index. */
  readonly start: number | null;
  readonly end: number | null;
  readonly step: number;
  readonly index: number | null;
}

/** The indices along `dim` that `src` replaces, and the shape `src` must have (cheap: no per-element work). */
function scatterIndex(
  op: string,
  a: ScatterArgs,
  shape: Shape,
): { dim: number; idx: number[]; srcShape: number[] } {
  const dim = normDim(op, a.dim, shape.length);
  const size = shape[dim];
  let idx: number[];
  if (a.index !== null) {
    if (a.index < -size || a.index >= size)
      throw new OpArgError(op, "index", `${a.index} out of range for size ${size}`);
    idx = [a.index < 0 ? a.index + size : a.index];
  } else {
    if (a.step < 1) throw new OpArgError(op, "step", `must be positive, got ${a.step}`);
    const clamp = (v: number | null, dflt: number) =>
      v === null ? dflt : Math.min(Math.max(v < 0 ? v + size : v, 0), size);
    const start = clamp(a.start, 0);
    const end = Math.max(clamp(a.end, size), start);
    idx = [];
    for (let k = start; k < end; k += a.step) idx.push(k);
  }
  const srcShape =
    a.index !== null ? shape.filter((_, d) => d !== dim) : shape.map((n, d) => (d === dim ? idx.length : n));
  return { dim, idx, srcShape };
}

/** Flat (row-major) positions in `self` of the slice or selected plane that `src` replaces, in src order. */
export function scatterPositions(
  op: string,
  a: ScatterArgs,
  shape: Shape,
): { positions: Float64Array; srcShape: number[] } {
  const { dim, idx, srcShape } = scatterIndex(op, a, shape);
  const size = shape[dim];
  const outer = shape.slice(0, dim).reduce((p, n) => p * n, 1);
  const inner = shape.slice(dim + 1).reduce((p, n) => p * n, 1);
  const positions = new Float64Array(outer * idx.length * inner);
  let k = 0;
  for (let o = 0; o < outer; o++)
    for (const j of idx) for (let i = 0; i < inner; i++) positions[k++] = (o * size + j) * inner + i;
  return { positions, srcShape };
}

function scatterOp<const N extends string>(name: N, schema: string, read: (r: ArgReader) => ScatterArgs) {
  const check = (a: ScatterArgs, self: Shape, src: Shape) => {
    const { srcShape } = scatterIndex(name, a, self);
    if (srcShape.join() !== src.join())
      throw new OpArgError(name, "src", `expected shape [${srcShape}], got [${src}]`);
  };
  return defineOp({
    name,
    schema,
    read,
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      check(a, t.shape, typeOf(a.src).shape);
      return [tt(t.dtype, t.shape)];
    },
    evaluate: (a, valueAt) => {
      const x = valueAt(a.self);
      const src = valueAt(a.src);
      check(a, x.shape, src.shape);
      const out = Float64Array.from(f64(x));
      const v = f64(src);
      scatterPositions(name, a, x.shape).positions.forEach((p, k) => {
        out[p] = v[k];
      });
      return [fromF64(x.dtype, x.shape, out)];
    },
  });
}

export const COMPOSITE_OPS = opTable(
  addcOp("aten.addcmul.default", false),
  addcOp("aten.addcdiv.default", true),
  defineOp({
    name: "aten.linalg_vector_norm.default",
    schema: "Tensor self, Scalar ord=2, int[1]? dim=None, bool keepdim=False, *, ScalarType? dtype=None",
    read: (r): VectorNormArgs => ({
      self: r.tensor("self"),
      ord: Number(r.scalar("ord").value),
      dim: r.optInts("dim"),
      keepdim: r.bool("keepdim"),
      dtype: r.optDtype("dtype"),
    }),
    infer: (a, typeOf) => [vectorNormType(a, typeOf).type],
    evaluate: (a, valueAt) => {
      const x = valueAt(a.self);
      const { type, axes } = vectorNormType(a, () => x);
      return [fromF64(type.dtype, type.shape, vectorNorm(x, a.ord, axes))];
    },
  }),
  defineOp({
    name: "aten.einsum.default",
    schema: "str equation, Tensor[] tensors, *, int[]? path=None",
    read: (r) => ({ equation: r.str("equation"), tensors: r.tensors("tensors") }),
    infer: (a, typeOf) => [einsumType(a, typeOf).type],
    evaluate: (a, valueAt) => {
      const xs = a.tensors.map((t) => valueAt(t));
      const { spec, sizes, type } = einsumType(a, (t) => valueAt(t));
      const labels = [...sizes.keys()];
      const extent = labels.map((l) => sizes.get(l) as number);
      const pos = new Map(labels.map((l, i) => [l, i] as const));
      const vals = xs.map((x) => f64(x));
      const strides = xs.map((x, i) => {
        const s = stridesOf(x.shape);
        // a size-1 dim broadcast against a larger label size reads its only element
        return spec.inputs[i].map((l, d) => ({
          at: pos.get(l) as number,
          stride: x.shape[d] === 1 ? 0 : s[d],
        }));
      });
      const outStrides = stridesOf(type.shape);
      const outMap = spec.output.map((l, d) => ({ at: pos.get(l) as number, stride: outStrides[d] }));
      const out = new Float64Array(numel(type.shape));
      const total = numel(extent);
      const c = new Array<number>(labels.length).fill(0);
      for (let i = 0; i < total; i++) {
        let prod = 1;
        for (let k = 0; k < xs.length; k++) {
          let o = 0;
          for (const m of strides[k]) o += c[m.at] * m.stride;
          prod *= vals[k][o];
        }
        let oo = 0;
        for (const m of outMap) oo += c[m.at] * m.stride;
        out[oo] += prod;
        for (let k = labels.length - 1; k >= 0; k--) {
          if (++c[k] < extent[k]) break;
          c[k] = 0;
        }
      }
      return [fromF64(type.dtype, type.shape, out)];
    },
  }),
  defineOp({
    name: "aten.as_strided.default",
    schema: "Tensor(a) self, SymInt[] size, SymInt[] stride, SymInt? storage_offset=None",
    read: (r): AsStridedArgs => ({
      self: r.tensor("self"),
      size: r.ints("size"),
      stride: r.ints("stride"),
      storageOffset: r.optInt("storage_offset") ?? 0,
    }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      checkAsStrided(a, numel(t.shape));
      return [tt(t.dtype, a.size)];
    },
    evaluate: (a, valueAt) => {
      const x = valueAt(a.self);
      const idx = asStridedIndex(a, numel(x.shape));
      const v = f64(x);
      return [
        fromF64(
          x.dtype,
          a.size,
          Array.from(idx, (i) => v[i]),
        ),
      ];
    },
  }),
  scatterOp(
    "aten.slice_scatter.default",
    "Tensor self, Tensor src, int dim=0, SymInt? start=None, SymInt? end=None, SymInt step=1",
    (r) => ({
      self: r.tensor("self"),
      src: r.tensor("src"),
      dim: r.int("dim"),
      start: r.optInt("start"),
      end: r.optInt("end"),
      step: r.int("step"),
      index: null,
    }),
  ),
  scatterOp("aten.select_scatter.default", "Tensor self, Tensor src, int dim, SymInt index", (r) => ({
    self: r.tensor("self"),
    src: r.tensor("src"),
    dim: r.int("dim"),
    start: null,
    end: null,
    step: 1,
    index: r.int("index"),
  })),
  aaOp("bilinear", "aten._upsample_bilinear2d_aa.default"),
  aaVecOp("bilinear", "aten._upsample_bilinear2d_aa.vec"),
  aaOp("bicubic", "aten._upsample_bicubic2d_aa.default"),
  aaVecOp("bicubic", "aten._upsample_bicubic2d_aa.vec"),
  aaOp("cubic", "aten.upsample_bicubic2d.default"),
  aaVecOp("cubic", "aten.upsample_bicubic2d.vec"),
  repeatInterleaveOp,
);

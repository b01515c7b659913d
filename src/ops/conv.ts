import type { TensorType } from "../ir/graph.js";
import type { Shape, Tensor } from "../ir/tensor.js";
import { f64, fromF64, tt } from "./data.js";
import { type ArgReader, defineOp, OpArgError, opTable } from "./schema.js";
import type { TypeOf, ValueOf } from "./types.js";

/** Every convolution overload reduces to this record (1-d and 2-d; padding may be asymmetric for "same"). */
export interface ConvArgs {
  readonly input: string;
  readonly weight: string;
  readonly bias: string | null;
  readonly stride: readonly number[];
  /** Explicit padding per spatial dim, or "same"/"valid" (conv1d/conv2d `.padding` overloads). */
  readonly padding: readonly number[] | "same" | "valid";
  readonly dilation: readonly number[];
  readonly transposed: boolean;
  readonly outputPadding: readonly number[];
  readonly groups: number;
}

interface Geometry {
  readonly batched: boolean;
  readonly n: number;
  readonly c: number;
  readonly inSize: number[];
  readonly k: number[];
  readonly oc: number;
  readonly padLo: number[];
  readonly padHi: number[];
  readonly outSize: number[];
}

function expand(op: string, arg: string, v: readonly number[], rank: number): number[] {
  if (v.length === rank) return [...v];
  if (v.length === 1) return Array.from({ length: rank }, () => v[0]);
  throw new OpArgError(op, arg, `has ${v.length} values for ${rank} spatial dims`);
}

function geometry(op: string, a: ConvArgs, x: Shape, w: Shape): Geometry {
  const rank = w.length - 2;
  if (rank < 1 || rank > 2)
    throw new OpArgError(op, "weight", `${w.length}-d weight: only 1-d and 2-d convolutions are supported`);
  const batched = x.length === rank + 2;
  if (!batched && x.length !== rank + 1)
    throw new OpArgError(
      op,
      "input",
      `expected a ${rank + 2}-d (or unbatched ${rank + 1}-d) input, got [${x.join(", ")}]`,
    );
  const n = batched ? x[0] : 1;
  const c = x[batched ? 1 : 0];
  const inSize = x.slice(x.length - rank);
  const k = w.slice(2);
  const stride = expand(op, "stride", a.stride, rank);
  const dilation = expand(op, "dilation", a.dilation, rank);
  const g = a.groups;
  if (g < 1 || c % g !== 0)
    throw new OpArgError(op, "groups", `${g} groups do not divide ${c} input channels`);
  let padLo: number[];
  let padHi: number[];
  if (a.padding === "valid") {
    padLo = padHi = new Array(rank).fill(0);
  } else if (a.padding === "same") {
    if (stride.some((s) => s !== 1)) throw new OpArgError(op, "padding", "'same' needs stride 1");
    // PyTorch pads the extra odd element at the end.
    padLo = k.map((kk, i) => Math.floor((dilation[i] * (kk - 1)) / 2));
    padHi = k.map((kk, i) => dilation[i] * (kk - 1) - padLo[i]);
  } else {
    padLo = padHi = expand(op, "padding", a.padding, rank);
  }
  let oc: number;
  let outSize: number[];
  if (a.transposed) {
    if (w[0] !== c)
      throw new OpArgError(
        op,
        "weight",
        `transposed weight [${w.join(", ")}] does not take ${c} input channels`,
      );
    oc = w[1] * g;
    const op_ = expand(op, "output_padding", a.outputPadding.length ? a.outputPadding : [0], rank);
    outSize = inSize.map(
      (s, i) => (s - 1) * stride[i] - padLo[i] - padHi[i] + dilation[i] * (k[i] - 1) + op_[i] + 1,
    );
  } else {
    if (w[1] * g !== c)
      throw new OpArgError(
        op,
        "weight",
        `weight [${w.join(", ")}] with ${g} groups does not take ${c} input channels`,
      );
    oc = w[0];
    if (oc % g !== 0) throw new OpArgError(op, "groups", `${g} groups do not divide ${oc} output channels`);
    outSize = inSize.map(
      (s, i) => Math.floor((s + padLo[i] + padHi[i] - dilation[i] * (k[i] - 1) - 1) / stride[i]) + 1,
    );
  }
  if (outSize.some((s) => s <= 0))
    throw new OpArgError(
      op,
      "input",
      `output size [${outSize.join(", ")}] is empty for input [${x.join(", ")}]`,
    );
  return { batched, n, c, inSize, k, oc, padLo, padHi, outSize };
}

function inferConv(op: string, a: ConvArgs, typeOf: TypeOf): TensorType[] {
  const x = typeOf(a.input);
  const g = geometry(op, a, x.shape, typeOf(a.weight).shape);
  return [tt(x.dtype, [...(g.batched ? [g.n] : []), g.oc, ...g.outSize])];
}

/** [lo, hi) of output positions o whose input position o*s + off lies in [0, size). */
function validRange(off: number, s: number, size: number, outLen: number): [number, number] {
  const lo = Math.max(0, Math.ceil(-off / s));
  const hi = Math.min(outLen, Math.floor((size - 1 - off) / s) + 1);
  return [lo, Math.max(lo, hi)];
}

/** 1-d convolutions run as 2-d ones with a height of 1: sizes, strides, dilations and padding per plane axis. */
function planeGeometry(g: Geometry, a: ConvArgs) {
  const two = g.k.length === 2;
  const [H, W] = two ? g.inSize : [1, g.inSize[0]];
  const [KH, KW] = two ? g.k : [1, g.k[0]];
  const [OH, OW] = two ? g.outSize : [1, g.outSize[0]];
  return {
    H,
    W,
    KH,
    KW,
    OH,
    OW,
    sh: two ? a.stride[0] : 1,
    sw: a.stride[a.stride.length - 1],
    dh: two ? a.dilation[0] : 1,
    dw: a.dilation[a.dilation.length - 1],
    ph: two ? g.padLo[0] : 0,
    pw: g.padLo[g.padLo.length - 1],
    cg: g.c / a.groups,
    ocg: g.oc / a.groups,
  };
}

function forward(x: Float64Array, w: Float64Array, out: Float64Array, g: Geometry, a: ConvArgs): void {
  const { H, W, KH, KW, OH, OW, sh, sw, dh, dw, ph, pw, cg, ocg } = planeGeometry(g, a);
  const HW = H * W;
  const OHW = OH * OW;
  const pointwise =
    KH === 1 && KW === 1 && sh === 1 && sw === 1 && ph === 0 && pw === 0 && OH === H && OW === W;
  const ohR = Array.from({ length: KH }, (_, kh) => validRange(kh * dh - ph, sh, H, OH));
  const owR = Array.from({ length: KW }, (_, kw) => validRange(kw * dw - pw, sw, W, OW));
  for (let n = 0; n < g.n; n++) {
    for (let oc = 0; oc < g.oc; oc++) {
      const grp = Math.floor(oc / ocg);
      const o = (n * g.oc + oc) * OHW;
      for (let icg = 0; icg < cg; icg++) {
        const xb = (n * g.c + grp * cg + icg) * HW;
        const wb = (oc * cg + icg) * KH * KW;
        if (pointwise) {
          const wv = w[wb];
          for (let i = 0; i < OHW; i++) out[o + i] += wv * x[xb + i];
          continue;
        }
        for (let kh = 0; kh < KH; kh++) {
          const [oh0, oh1] = ohR[kh];
          for (let kw = 0; kw < KW; kw++) {
            const wv = w[wb + kh * KW + kw];
            const [ow0, ow1] = owR[kw];
            const offW = kw * dw - pw;
            for (let oh = oh0; oh < oh1; oh++) {
              const xr = xb + (oh * sh + kh * dh - ph) * W + offW;
              const or = o + oh * OW;
              for (let ow = ow0; ow < ow1; ow++) out[or + ow] += wv * x[xr + ow * sw];
            }
          }
        }
      }
    }
  }
}

/** Transposed convolution as the scatter of each input pixel through the kernel. */
function transposed(x: Float64Array, w: Float64Array, out: Float64Array, g: Geometry, a: ConvArgs): void {
  const { H, W, KH, KW, OH, OW, sh, sw, dh, dw, ph, pw, cg, ocg } = planeGeometry(g, a);
  // input position i lands at output i*s + k*d - p: valid inputs are those whose target is inside the output.
  const ihR = Array.from({ length: KH }, (_, kh) => validRange(kh * dh - ph, sh, OH, H));
  const iwR = Array.from({ length: KW }, (_, kw) => validRange(kw * dw - pw, sw, OW, W));
  for (let n = 0; n < g.n; n++) {
    for (let ic = 0; ic < g.c; ic++) {
      const grp = Math.floor(ic / cg);
      const xb = (n * g.c + ic) * H * W;
      for (let j = 0; j < ocg; j++) {
        const oc = grp * ocg + j;
        const o = (n * g.oc + oc) * OH * OW;
        const wb = (ic * ocg + j) * KH * KW;
        for (let kh = 0; kh < KH; kh++) {
          const [ih0, ih1] = ihR[kh];
          for (let kw = 0; kw < KW; kw++) {
            const wv = w[wb + kh * KW + kw];
            const [iw0, iw1] = iwR[kw];
            const offW = kw * dw - pw;
            for (let ih = ih0; ih < ih1; ih++) {
              const or = o + (ih * sh + kh * dh - ph) * OW + offW;
              const xr = xb + ih * W;
              for (let iw = iw0; iw < iw1; iw++) out[or + iw * sw] += wv * x[xr + iw];
            }
          }
        }
      }
    }
  }
}

export function convolve(op: string, a: ConvArgs, x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const g = geometry(op, a, x.shape, w.shape);
  const rank = g.k.length;
  const args: ConvArgs = {
    ...a,
    stride: expand(op, "stride", a.stride, rank),
    dilation: expand(op, "dilation", a.dilation, rank),
  };
  const plane = g.outSize.reduce((p, s) => p * s, 1);
  const out = new Float64Array(g.n * g.oc * plane);
  if (b) {
    const bv = f64(b);
    if (bv.length !== g.oc)
      throw new OpArgError(op, "bias", `${bv.length} values for ${g.oc} output channels`);
    for (let n = 0; n < g.n; n++)
      for (let c = 0; c < g.oc; c++) out.fill(bv[c], (n * g.oc + c) * plane, (n * g.oc + c + 1) * plane);
  }
  (a.transposed ? transposed : forward)(f64(x), f64(w), out, g, args);
  return fromF64(x.dtype, [...(g.batched ? [g.n] : []), g.oc, ...g.outSize], out);
}

function convOp<const N extends string>(name: N, schema: string, read: (r: ArgReader) => ConvArgs) {
  return defineOp({
    name,
    schema,
    read,
    infer: (a, typeOf) => inferConv(name, a, typeOf),
    evaluate: (a, valueAt: ValueOf) => [
      convolve(name, a, valueAt(a.input), valueAt(a.weight), a.bias === null ? null : valueAt(a.bias)),
    ],
  });
}

// Readers write their records out field by field: an object spread there costs ~0.6 µs per later field on
// Node 20 (measured while loading models, issue 9), against ~20 ns written out.
export function readPadded(r: ArgReader): ConvArgs {
  return {
    input: r.tensor("input"),
    weight: r.tensor("weight"),
    bias: r.optTensor("bias"),
    stride: r.ints("stride"),
    padding: r.ints("padding"),
    dilation: r.ints("dilation"),
    transposed: false,
    outputPadding: [],
    groups: r.int("groups"),
  };
}

function readPadMode(r: ArgReader): ConvArgs {
  const p = r.str("padding");
  if (p !== "same" && p !== "valid") r.fail("padding", `'${p}' is not 'same' or 'valid'`);
  return {
    input: r.tensor("input"),
    weight: r.tensor("weight"),
    bias: r.optTensor("bias"),
    stride: r.ints("stride"),
    padding: p,
    dilation: r.ints("dilation"),
    transposed: false,
    outputPadding: [],
    groups: r.int("groups"),
  };
}

function readGeneral(r: ArgReader): ConvArgs {
  return {
    input: r.tensor("input"),
    weight: r.tensor("weight"),
    bias: r.optTensor("bias"),
    stride: r.ints("stride"),
    padding: r.ints("padding"),
    dilation: r.ints("dilation"),
    transposed: r.bool("transposed"),
    outputPadding: r.ints("output_padding"),
    groups: r.int("groups"),
  };
}

function readTransposed(r: ArgReader): ConvArgs {
  return {
    input: r.tensor("input"),
    weight: r.tensor("weight"),
    bias: r.optTensor("bias"),
    stride: r.ints("stride"),
    padding: r.ints("padding"),
    dilation: r.ints("dilation"),
    transposed: true,
    outputPadding: r.ints("output_padding"),
    groups: r.int("groups"),
  };
}

const GENERAL =
  "Tensor input, Tensor weight, Tensor? bias, SymInt[] stride, SymInt[] padding, SymInt[] dilation, bool transposed, SymInt[] output_padding, SymInt groups";

export const CONV_OPS = opTable(
  convOp(
    "aten.conv2d.default",
    "Tensor input, Tensor weight, Tensor? bias=None, SymInt[2] stride=[1, 1], SymInt[2] padding=[0, 0], SymInt[2] dilation=[1, 1], SymInt groups=1",
    readPadded,
  ),
  convOp(
    "aten.conv2d.padding",
    'Tensor input, Tensor weight, Tensor? bias=None, SymInt[2] stride=[1, 1], str padding="valid", SymInt[2] dilation=[1, 1], SymInt groups=1',
    readPadMode,
  ),
  convOp(
    "aten.conv1d.default",
    "Tensor input, Tensor weight, Tensor? bias=None, SymInt[1] stride=[1], SymInt[1] padding=[0], SymInt[1] dilation=[1], SymInt groups=1",
    readPadded,
  ),
  convOp(
    "aten.conv1d.padding",
    'Tensor input, Tensor weight, Tensor? bias=None, SymInt[1] stride=[1], str padding="valid", SymInt[1] dilation=[1], SymInt groups=1',
    readPadMode,
  ),
  convOp("aten.convolution.default", GENERAL, readGeneral),
  convOp(
    "aten._convolution.default",
    `${GENERAL}, bool benchmark, bool deterministic, bool cudnn_enabled, bool allow_tf32`,
    readGeneral,
  ),
  convOp(
    "aten._convolution.deprecated",
    `${GENERAL}, bool benchmark, bool deterministic, bool cudnn_enabled`,
    readGeneral,
  ),
  convOp(
    "aten.conv_transpose2d.input",
    "Tensor input, Tensor weight, Tensor? bias=None, SymInt[2] stride=[1, 1], SymInt[2] padding=[0, 0], SymInt[2] output_padding=[0, 0], SymInt groups=1, SymInt[2] dilation=[1, 1]",
    readTransposed,
  ),
  convOp(
    "aten.conv_transpose1d.default",
    "Tensor input, Tensor weight, Tensor? bias=None, SymInt[1] stride=[1], SymInt[1] padding=[0], SymInt[1] output_padding=[0], SymInt groups=1, SymInt[1] dilation=[1]",
    readTransposed,
  ),
);

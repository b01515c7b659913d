/**
 * Convolution geometry for the cuDNN graph builder: validated spec → output size, and the logical NCHW/KCRS
 * dims and the strides that express NHWC or NCHW memory layouts (cuDNN dims are always logical N,C,H,W).
 * Pure: no native calls.
 */
import { checkInt, checkOneOf, fail } from "./validate.js";

export type ConvLayout = "NHWC" | "NCHW";
export type ConvDType = "float16" | "bfloat16" | "float32";
/** A pointwise activation cuDNN can fuse after a convolution (gelu_erf is exact GELU, gelu_tanh its approximation). */
export type ConvActivationKind = "relu" | "silu" | "sigmoid" | "tanh" | "gelu_erf" | "gelu_tanh";
export type ConvActivation = "none" | ConvActivationKind;
export type Dims4 = readonly [number, number, number, number];

export interface ConvSpec {
  /** Memory layout of x, y and w (w is KRSC for NHWC, KCRS for NCHW). */
  layout: ConvLayout;
  dtype: ConvDType;
  /** Input batch, channels, height, width. */
  n: number;
  c: number;
  h: number;
  w: number;
  /** Output channels. */
  k: number;
  /** Kernel height and width. */
  r: number;
  s: number;
  stride?: number | readonly [number, number];
  /** Symmetric [h, w], or [top, left, bottom, right]. */
  padding?: number | readonly [number, number] | readonly [number, number, number, number];
  dilation?: number | readonly [number, number];
  groups?: number;
  /** Adds a per-output-channel bias [K] after the convolution. */
  bias?: boolean;
  activation?: ConvActivation;
}

export interface TensorGeometry {
  readonly dims: readonly [number, number, number, number];
  readonly strides: readonly [number, number, number, number];
  /** Bytes the tensor spans in memory. */
  readonly bytes: number;
}

export interface ConvGeometry {
  readonly layout: ConvLayout;
  readonly dtype: ConvDType;
  readonly stride: readonly [number, number];
  readonly prePadding: readonly [number, number];
  readonly postPadding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly groups: number;
  readonly bias: boolean;
  readonly activation: ConvActivation;
  readonly outH: number;
  readonly outW: number;
  readonly x: TensorGeometry;
  readonly w: TensorGeometry;
  readonly b: TensorGeometry;
  readonly y: TensorGeometry;
}

const ELEMENT_BYTES: Readonly<Record<ConvDType, number>> = { float16: 2, bfloat16: 2, float32: 4 };
const ACTIVATIONS: readonly ConvActivation[] = [
  "none",
  "relu",
  "silu",
  "sigmoid",
  "tanh",
  "gelu_erf",
  "gelu_tanh",
];
const DIM_MAX = 2 ** 31 - 1;

function pair(
  name: string,
  v: number | readonly number[] | undefined,
  dflt: number,
  min: number,
): [number, number] {
  if (v === undefined) return [dflt, dflt];
  if (typeof v === "number") return [checkInt(name, v, min, DIM_MAX), checkInt(name, v, min, DIM_MAX)];
  if (!Array.isArray(v) || v.length !== 2) fail(`${name} must be a number or [h, w]`);
  return [checkInt(`${name}[0]`, v[0], min, DIM_MAX), checkInt(`${name}[1]`, v[1], min, DIM_MAX)];
}

function padding(v: ConvSpec["padding"]): { pre: [number, number]; post: [number, number] } {
  if (Array.isArray(v) && v.length === 4) {
    const [t, l, b, r] = v.map((x, i) => checkInt(`padding[${i}]`, x, 0, DIM_MAX));
    return { pre: [t!, l!], post: [b!, r!] };
  }
  const p = pair("padding", v as number | readonly number[] | undefined, 0, 0);
  return { pre: p, post: [p[0], p[1]] };
}

/** Strides of logical [N, C, H, W] (or [K, C, R, S]) dims stored NHWC (KRSC) or NCHW (KCRS). */
export function layoutStrides(layout: ConvLayout, [, c, h, w]: Dims4): [number, number, number, number] {
  return layout === "NHWC" ? [h * w * c, 1, w * c, c] : [c * h * w, h * w, w, 1];
}

/** Strides of a per-channel [1, K, 1, 1] operand (bias, channel constants). */
export function channelStrides(layout: ConvLayout, k: number): [number, number, number, number] {
  return layout === "NHWC" ? [k, 1, k, k] : [k, 1, 1, 1];
}

function tensor(layout: ConvLayout, dims: [number, number, number, number], es: number): TensorGeometry {
  const [n, c, h, w] = dims;
  return { dims, strides: layoutStrides(layout, dims), bytes: n * c * h * w * es };
}

/** Validates `spec` and works out every tensor's dims, strides and size. */
export function convGeometry(spec: ConvSpec): ConvGeometry {
  if (spec === null || typeof spec !== "object") fail("conv spec must be an object");
  const layout = checkOneOf("layout", spec.layout, ["NHWC", "NCHW"] as const);
  const dtype = checkOneOf("dtype", spec.dtype, ["float16", "bfloat16", "float32"] as const);
  const activation = checkOneOf("activation", spec.activation ?? "none", ACTIVATIONS);
  const n = checkInt("n", spec.n, 1, DIM_MAX);
  const c = checkInt("c", spec.c, 1, DIM_MAX);
  const h = checkInt("h", spec.h, 1, DIM_MAX);
  const w = checkInt("w", spec.w, 1, DIM_MAX);
  const k = checkInt("k", spec.k, 1, DIM_MAX);
  const r = checkInt("r", spec.r, 1, DIM_MAX);
  const s = checkInt("s", spec.s, 1, DIM_MAX);
  const groups = checkInt("groups", spec.groups ?? 1, 1, DIM_MAX);
  if (c % groups !== 0 || k % groups !== 0) fail(`groups (${groups}) must divide c (${c}) and k (${k})`);
  const stride = pair("stride", spec.stride, 1, 1);
  const dilation = pair("dilation", spec.dilation, 1, 1);
  const pad = padding(spec.padding);
  const out = (size: number, i: 0 | 1, kernel: number) =>
    Math.floor((size + pad.pre[i] + pad.post[i] - dilation[i] * (kernel - 1) - 1) / stride[i]) + 1;
  const outH = out(h, 0, r);
  const outW = out(w, 1, s);
  if (outH < 1 || outW < 1)
    fail(`the kernel (${r}×${s}) does not fit the padded input (${h}×${w}): output ${outH}×${outW}`);
  const es = ELEMENT_BYTES[dtype];
  const bias: TensorGeometry = {
    dims: [1, k, 1, 1],
    strides: channelStrides(layout, k),
    bytes: k * es,
  };
  return {
    layout,
    dtype,
    stride,
    prePadding: pad.pre,
    postPadding: pad.post,
    dilation,
    groups,
    bias: spec.bias === true,
    activation,
    outH,
    outW,
    x: tensor(layout, [n, c, h, w], es),
    w: tensor(layout, [k, c / groups, r, s], es),
    b: bias,
    y: tensor(layout, [n, k, outH, outW], es),
  };
}

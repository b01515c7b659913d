import type { TensorType } from "../ir/graph.js";
import type { Shape, Tensor } from "../ir/tensor.js";
import { f64, fromF64, tt } from "./data.js";
import { type ArgReader, defineOp, OpArgError, opTable } from "./schema.js";

/** Planes (N·C, or C unbatched) and the spatial size of a 3-d or 4-d pooling input. */
function planes(op: string, shape: Shape): { planes: number; h: number; w: number; lead: number[] } {
  if (shape.length !== 3 && shape.length !== 4)
    throw new OpArgError(op, "self", `expected a 3-d or 4-d input, got [${shape.join(", ")}]`);
  const lead = shape.slice(0, -2);
  return {
    planes: lead.reduce((p, d) => p * d, 1),
    h: shape[shape.length - 2],
    w: shape[shape.length - 1],
    lead,
  };
}

/** PyTorch's pooling_output_shape: a ceil-mode window must start inside the input or its left padding. */
export function poolOutSize(size: number, k: number, s: number, p: number, d: number, ceil: boolean): number {
  const num = size + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  let out = Math.floor(num / s) + 1;
  if (ceil && (out - 1) * s >= size + p) out--;
  return out;
}

export interface PoolArgs {
  readonly self: string;
  readonly kernel: number[];
  readonly stride: number[];
  readonly padding: number[];
  readonly dilation: number[];
  readonly ceilMode: boolean;
  readonly countIncludePad: boolean;
  readonly divisorOverride: number | null;
}

function two(r: ArgReader, name: string, v: number[]): number[] {
  if (v.length === 1) return [v[0], v[0]];
  if (v.length !== 2) r.fail(name, `expected 1 or 2 values, got ${v.length}`);
  return v;
}

function readPool(r: ArgReader, avg: boolean): PoolArgs {
  const kernel = two(r, "kernel_size", r.ints("kernel_size"));
  const s = r.ints("stride");
  return {
    self: r.tensor("self"),
    kernel,
    stride: s.length === 0 ? kernel : two(r, "stride", s),
    padding: two(r, "padding", r.ints("padding")),
    dilation: avg ? [1, 1] : two(r, "dilation", r.ints("dilation")),
    ceilMode: r.bool("ceil_mode"),
    countIncludePad: avg ? r.bool("count_include_pad") : false,
    divisorOverride: avg ? r.optInt("divisor_override") : null,
  };
}

function poolShape(op: string, a: PoolArgs, shape: Shape): { oh: number; ow: number; out: number[] } {
  const { h, w, lead } = planes(op, shape);
  a.padding.forEach((p, i) => {
    if (p > a.kernel[i] / 2)
      throw new OpArgError(op, "padding", `pad ${p} should be at most half of kernel ${a.kernel[i]}`);
  });
  const oh = poolOutSize(h, a.kernel[0], a.stride[0], a.padding[0], a.dilation[0], a.ceilMode);
  const ow = poolOutSize(w, a.kernel[1], a.stride[1], a.padding[1], a.dilation[1], a.ceilMode);
  if (oh <= 0 || ow <= 0)
    throw new OpArgError(op, "self", `output size ${oh}x${ow} is empty for input [${shape.join(", ")}]`);
  return { oh, ow, out: [...lead, oh, ow] };
}

function maxPool(op: string, a: PoolArgs, t: Tensor): Tensor[] {
  const { planes: np, h: H, w: W } = planes(op, t.shape);
  const { oh: OH, ow: OW, out: shape } = poolShape(op, a, t.shape);
  const x = f64(t);
  const [kh, kw] = a.kernel;
  const [sh, sw] = a.stride;
  const [ph, pw] = a.padding;
  const [dh, dw] = a.dilation;
  const vals = new Float64Array(np * OH * OW);
  const idx = new Float64Array(np * OH * OW);
  for (let p = 0; p < np; p++) {
    const xb = p * H * W;
    for (let oh = 0; oh < OH; oh++) {
      let h0 = oh * sh - ph;
      const h1 = Math.min(h0 + (kh - 1) * dh + 1, H);
      while (h0 < 0) h0 += dh;
      for (let ow = 0; ow < OW; ow++) {
        let w0 = ow * sw - pw;
        const w1 = Math.min(w0 + (kw - 1) * dw + 1, W);
        while (w0 < 0) w0 += dw;
        let best = -Infinity;
        let bi = h0 * W + w0;
        for (let y = h0; y < h1; y += dh) {
          for (let xx = w0; xx < w1; xx += dw) {
            const v = x[xb + y * W + xx];
            if (v > best || Number.isNaN(v)) {
              best = v;
              bi = y * W + xx;
            }
          }
        }
        const o = (p * OH + oh) * OW + ow;
        vals[o] = best;
        idx[o] = bi;
      }
    }
  }
  return [fromF64(t.dtype, shape, vals), fromF64("int64", shape, idx)];
}

function avgPool(op: string, a: PoolArgs, t: Tensor): Tensor {
  const { planes: np, h: H, w: W } = planes(op, t.shape);
  const { oh: OH, ow: OW, out: shape } = poolShape(op, a, t.shape);
  const x = f64(t);
  const [kh, kw] = a.kernel;
  const [sh, sw] = a.stride;
  const [ph, pw] = a.padding;
  const out = new Float64Array(np * OH * OW);
  for (let p = 0; p < np; p++) {
    const xb = p * H * W;
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        let h0 = oh * sh - ph;
        let w0 = ow * sw - pw;
        let h1 = Math.min(h0 + kh, H + ph);
        let w1 = Math.min(w0 + kw, W + pw);
        const poolSize = (h1 - h0) * (w1 - w0);
        h0 = Math.max(h0, 0);
        w0 = Math.max(w0, 0);
        h1 = Math.min(h1, H);
        w1 = Math.min(w1, W);
        let s = 0;
        for (let y = h0; y < h1; y++) for (let xx = w0; xx < w1; xx++) s += x[xb + y * W + xx];
        const div = a.divisorOverride ?? (a.countIncludePad ? poolSize : (h1 - h0) * (w1 - w0));
        out[(p * OH + oh) * OW + ow] = s / div;
      }
    }
  }
  return fromF64(t.dtype, shape, out);
}

function adaptiveShape(op: string, shape: Shape, size: number[]): number[] {
  const { h, w, lead } = planes(op, shape);
  if (size.length !== 2) throw new OpArgError(op, "output_size", `expected 2 values, got ${size.length}`);
  return [...lead, size[0] < 0 ? h : size[0], size[1] < 0 ? w : size[1]];
}

export function adaptiveAvgPool(op: string, t: Tensor, size: number[]): Tensor {
  const { planes: np, h: H, w: W } = planes(op, t.shape);
  const shape = adaptiveShape(op, t.shape, size);
  const OH = shape[shape.length - 2];
  const OW = shape[shape.length - 1];
  const x = f64(t);
  const out = new Float64Array(np * OH * OW);
  for (let p = 0; p < np; p++) {
    const xb = p * H * W;
    for (let oh = 0; oh < OH; oh++) {
      const h0 = Math.floor((oh * H) / OH);
      const h1 = Math.ceil(((oh + 1) * H) / OH);
      for (let ow = 0; ow < OW; ow++) {
        const w0 = Math.floor((ow * W) / OW);
        const w1 = Math.ceil(((ow + 1) * W) / OW);
        let s = 0;
        for (let y = h0; y < h1; y++) for (let xx = w0; xx < w1; xx++) s += x[xb + y * W + xx];
        out[(p * OH + oh) * OW + ow] = s / ((h1 - h0) * (w1 - w0));
      }
    }
  }
  return fromF64(t.dtype, shape, out);
}

const MAX_SCHEMA =
  "Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, int[2] dilation=1, bool ceil_mode=False";
const AVG_SCHEMA =
  "Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, bool ceil_mode=False, bool count_include_pad=True, int? divisor_override=None";

function adaptiveOp<const N extends string>(name: N) {
  return defineOp({
    name,
    schema: "Tensor self, SymInt[2] output_size",
    read: (r) => ({ self: r.tensor("self"), outputSize: r.ints("output_size") }),
    infer: (a, typeOf): TensorType[] => {
      const t = typeOf(a.self);
      return [tt(t.dtype, adaptiveShape(name, t.shape, a.outputSize))];
    },
    evaluate: (a, valueAt) => [adaptiveAvgPool(name, valueAt(a.self), a.outputSize)],
  });
}

export const POOL_OPS = opTable(
  defineOp({
    name: "aten.max_pool2d.default",
    schema: MAX_SCHEMA,
    read: (r) => readPool(r, false),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      return [tt(t.dtype, poolShape("aten.max_pool2d.default", a, t.shape).out)];
    },
    evaluate: (a, valueAt) => [maxPool("aten.max_pool2d.default", a, valueAt(a.self))[0]],
  }),
  defineOp({
    name: "aten.max_pool2d_with_indices.default",
    schema: MAX_SCHEMA,
    returns: 2,
    read: (r) => readPool(r, false),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      const { out } = poolShape("aten.max_pool2d_with_indices.default", a, t.shape);
      return [tt(t.dtype, out), tt("int64", out)];
    },
    evaluate: (a, valueAt) => maxPool("aten.max_pool2d_with_indices.default", a, valueAt(a.self)),
  }),
  defineOp({
    name: "aten.avg_pool2d.default",
    schema: AVG_SCHEMA,
    read: (r) => readPool(r, true),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      return [tt(t.dtype, poolShape("aten.avg_pool2d.default", a, t.shape).out)];
    },
    evaluate: (a, valueAt) => [avgPool("aten.avg_pool2d.default", a, valueAt(a.self))],
  }),
  adaptiveOp("aten.adaptive_avg_pool2d.default"),
  adaptiveOp("aten._adaptive_avg_pool2d.default"),
);

/**
 * Which matmul steps of an engine are quantized linear layers that can run as real int8 GEMMs
 * (kernels/quantized-linear.ts), read off the planned network: the converter of torchc.quantized_linear
 * (src/converters/aten/quantized-layers.ts) emits quantize → dequantize on the input and a float weight
 * f32((q − 0) · s[c]); both are recovered here exactly or the step is refused with the reason (it then keeps
 * the simulated float GEMM).
 */
import { float16BitsToNumber, numberToFloat16Bits } from "../../ir/half.js";
import { numel, type Tensor, toFloat64Array } from "../../ir/tensor.js";
import type { Layer, LayerOf } from "../../network/layers/index.js";
import { samePerTensorQuantization } from "../../network/layers/quantize.js";
import type { MatmulStep } from "./fuse/steps.js";
import { matmulGeometry } from "./kernels/matmul-cublaslt.js";
import type { Int8LinearSpec } from "./kernels/quantized-linear.js";
import type { EnginePlan, PlannedNetwork } from "./plan.js";

const f32 = Math.fround;

/**
 * Symmetric int8 values and one scale per row that give back every element of the weight `w` [N, …]: f32(q · s[c])
 * for a float32 weight, half(f32(q · s[c])) for one an fp16 compile stored in half. A row's q is round(w / g) with
 * g its largest magnitude over 127 (or 128); its scale is one that reproduces every element exactly when there is
 * one (GRID_ULPS below for when there is not).
 */
export function int8Grid(w: Tensor): { q: Int8Array; scales: Float32Array } | string {
  if (w.dtype !== "float32" && w.dtype !== "float16") return `the weight is ${w.dtype}, not float32`;
  if (w.shape.length < 2) return `the weight has shape [${w.shape}], not [N, K]`;
  // a convolution's [K, C, R, S] weight is K rows of C·R·S values
  const n = w.shape[0];
  const k = numel(w.shape) / n;
  const v = toFloat64Array(w);
  const q = new Int8Array(n * k);
  const scales = new Float32Array(n);
  const storage = w.dtype === "float16" ? HALF : SINGLE;
  for (let c = 0; c < n; c++) {
    const row = v.subarray(c * k, (c + 1) * k);
    const fit = rowGrid(row, storage);
    if (fit === undefined)
      return `row ${c} of the ${w.dtype === "float16" ? "float16 " : ""}weight is not on an int8 grid`;
    scales[c] = fit.s;
    q.set(fit.q, c * k);
  }
  return { q, scales };
}

/**
 * How far from the stored weight a recovered grid value may be, in units in the last place of the storage type
 * (per element: the gap from |w| to the next larger value). Exact recovery fails for weights that were rounded
 * twice after quantization: f32(q · s) rounded to half (ties and the float32 step can land either side of a half
 * rounding boundary), or a per-output-channel factor (batch norm folded into a quantized layer) multiplied in
 * before the rounding: each element is then within an ulp of q · s' for the row's scale s' = s · factor, but no
 * single float32 s' may give back all of a row's thousands of elements bit for bit. Such a row is accepted: the
 * int8 convolution then computes with values within one ulp of the fp16 weight the float convolution would read
 * (2^-10 relative in fp16, below the noise of fp16 arithmetic with fp32 accumulation) and closer to the
 * quantized values q · s' the layer was meant to have. A row that is not on any int8 grid (ordinary float
 * weights) misses by up to half a grid step, ~30 ulps for its largest elements, far outside this.
 */
export const GRID_ULPS = 1;

interface Storage {
  /** The stored value of a real x (float32; or half, through float32 as an fp16 compile stores q · s). */
  readonly round: (x: number) => number;
  /** The gap from |v| to the next larger stored magnitude. */
  readonly ulp: (v: number) => number;
  /** The reals that round to a stored v > 0: [v − below, v + above]. */
  readonly radius: (v: number) => { below: number; above: number };
}

const half = (x: number) => float16BitsToNumber(numberToFloat16Bits(x));

function ulpOf(v: number, mantissaBits: number, minExp: number): number {
  const a = Math.abs(v);
  const e = a === 0 ? minExp : Math.max(minExp, Math.floor(Math.log2(a)));
  // Math.log2 can be off by one at the edges of a binade: step to the exponent with 2^e ≤ a < 2^(e+1)
  const exp = a >= 2 ** (e + 1) ? e + 1 : a < 2 ** e && e > minExp ? e - 1 : e;
  return 2 ** (exp - mantissaBits);
}

function radiusOf(
  v: number,
  ulp: (v: number) => number,
  minNormal: number,
): { below: number; above: number } {
  const up = ulp(v);
  const a = Math.abs(v);
  // at a power of two above the subnormals, the gap below is half the gap above
  const pow2 = a > minNormal && 2 ** Math.round(Math.log2(a)) === a;
  return { below: (pow2 ? up / 2 : up) / 2, above: up / 2 };
}

const HALF: Storage = {
  round: half,
  ulp: (v) => ulpOf(v, 10, -14),
  radius: (v) => radiusOf(v, HALF.ulp, 2 ** -14),
};

const SINGLE: Storage = {
  round: f32,
  ulp: (v) => ulpOf(v, 23, -126),
  radius: (v) => radiusOf(v, SINGLE.ulp, 2 ** -126),
};

/**
 * The common case first, without allocations: a row stored once from f32(q · s) with s = f32(amax / 127) (or 128),
 * or a float32 step or two from it, reproduced bit for bit. Fills q and returns s, or undefined (q then holds junk).
 */
function exactGrid(row: Float64Array, amax: number, st: Storage, q: Int8Array): number | undefined {
  const cell = new Float32Array(1);
  const bits = new Uint32Array(cell.buffer);
  for (const levels of [127, 128]) {
    cell[0] = amax / levels;
    const base = bits[0];
    for (const d of [0, -1, 1, -2, 2]) {
      bits[0] = base + d;
      const s = cell[0];
      let ok = s > 0;
      for (let i = 0; ok && i < row.length; i++) {
        const qi = Math.round(row[i] / s);
        ok = qi >= -128 && qi <= 127 && st.round(f32(qi * s)) === row[i];
        q[i] = qi;
      }
      if (ok) return s;
    }
  }
  return undefined;
}

/**
 * The int8 values and float32 scale of one row (see int8Grid), or undefined when none is within GRID_ULPS of
 * every element. Scales tried: the middle of the interval every element allows (exact when the row was stored
 * once, from f32(q · s)), the least-squares scale of the row for its q, and float32 neighbours of both.
 */
function rowGrid(row: Float64Array, st: Storage): { q: Int8Array; s: number } | undefined {
  let amax = 0;
  for (const x of row) amax = Math.max(amax, Math.abs(x));
  const q = new Int8Array(row.length);
  if (amax === 0) return { q, s: 1 };
  const exact = exactGrid(row, amax, st, q);
  if (exact !== undefined) return { q, s: exact };
  let best: { s: number; err: number } | undefined;
  for (const levels of [127, 128]) {
    const guess = amax / levels;
    let inRange = true;
    let lo = 0;
    let hi = Number.POSITIVE_INFINITY;
    let qx = 0;
    let qq = 0;
    for (let i = 0; i < row.length; i++) {
      const qi = Math.round(row[i] / guess);
      if (qi < -128 || qi > 127) {
        inRange = false;
        break;
      }
      q[i] = qi;
      if (qi === 0) continue;
      qx += qi * row[i];
      qq += qi * qi;
      // the scales for which the real q · s rounds to the stored value
      const { below, above } = st.radius(row[i]);
      const [a, b] = row[i] > 0 ? [row[i] - below, row[i] + above] : [row[i] - above, row[i] + below];
      const [x, y] = [a / qi, b / qi].sort((m, n) => m - n);
      lo = Math.max(lo, x);
      hi = Math.min(hi, y);
    }
    if (!inRange) continue;
    const seeds = lo <= hi ? [(lo + hi) / 2, qx / qq] : [qx / qq];
    for (const s of scaleCandidates(seeds)) {
      const err = maxUlpError(row, q, s, st, best ? Math.min(best.err, GRID_ULPS) : GRID_ULPS);
      if (err === 0) return { q, s };
      if (err <= GRID_ULPS && (!best || err < best.err)) best = { s, err };
    }
    if (best) return { q, s: best.s };
  }
  return undefined;
}

/** Each seed rounded to float32, and its two float32 neighbours on either side. */
function scaleCandidates(seeds: readonly number[]): number[] {
  const cell = new Float32Array(1);
  const bits = new Uint32Array(cell.buffer);
  const out: number[] = [];
  for (const seed of seeds) {
    cell[0] = seed;
    const base = bits[0];
    for (const d of [0, -1, 1, -2, 2]) {
      bits[0] = base + d;
      if (cell[0] > 0 && Number.isFinite(cell[0]) && !out.includes(cell[0])) out.push(cell[0]);
    }
  }
  return out;
}

/**
 * The largest |stored(q · s) − w| over the row, in ulps of w; the scan stops (returning Infinity) once an
 * element misses by more than `limit`.
 */
function maxUlpError(row: Float64Array, q: Int8Array, s: number, st: Storage, limit: number): number {
  let worst = 0;
  for (let i = 0; i < row.length; i++) {
    const d = Math.abs(st.round(f32(q[i] * s)) - row[i]);
    if (d === 0) continue;
    const e = d / st.ulp(row[i]);
    if (e > limit) return Number.POSITIVE_INFINITY;
    worst = Math.max(worst, e);
  }
  return worst;
}

/** The quantize of a per-tensor dequantize(quantize(x)) producing `t`, or why `t` is not one. */
export function roundTripQuantize(
  producer: (t: string) => Layer | undefined,
  t: string,
): LayerOf<"quantize"> | string {
  const dq = producer(t);
  if (dq?.type !== "dequantize" || dq.axis !== null) return "the input is dequantized per channel";
  const q = producer(dq.inputs[0]);
  if (q?.type !== "quantize" || q.axis !== null) return "the input is not dequantize(quantize(x))";
  return samePerTensorQuantization(q, dq) ? q : "quantize and dequantize parameters differ";
}

/**
 * A quantized layer's int8 weight (rows = output channels) and float32 bias (one per output, or null), read off
 * the planned network's constants, or why they cannot be.
 */
export function int8LayerOperands(
  plan: PlannedNetwork,
  producer: (t: string) => Layer | undefined,
  weight: string,
  bias: string | undefined,
): { grid: { q: Int8Array; scales: Float32Array }; bias: Float32Array | null } | string {
  const constant = (t: string): Tensor | undefined => {
    const l = producer(t);
    return l?.type === "constant" ? plan.network.constants[l.weight] : undefined;
  };
  const w = constant(weight);
  if (!w) return "the weight is not a constant";
  const grid = int8Grid(w);
  if (typeof grid === "string") return grid;
  if (bias === undefined) return { grid, bias: null };
  const b = constant(bias);
  if (!b || numel(b.shape) !== w.shape[0]) return "the bias is not a constant of one value per output";
  return { grid, bias: Float32Array.from(toFloat64Array(b)) };
}

/** A matmul step: a float layer, a quantized layer with its int8 spec, or a quantized layer refused with why. */
export type QuantizedMatmulSite =
  | { readonly kind: "float" }
  | { readonly kind: "refused"; readonly reason: string }
  | { readonly kind: "int8"; readonly spec: Int8LinearSpec };

/** What a matmul step is to the int8 path (see QuantizedMatmulSite). */
export function quantizedMatmulSite(step: MatmulStep, plan: EnginePlan): QuantizedMatmulSite {
  const net = plan.network;
  const producer = (t: string): Layer | undefined => net.layers.find((l) => l.output === t);
  const dq = producer(step.a);
  if (dq?.type !== "dequantize") return { kind: "float" };
  const spec = int8Spec(step, plan, producer);
  return typeof spec === "string" ? { kind: "refused", reason: spec } : { kind: "int8", spec };
}

function int8Spec(
  step: MatmulStep,
  plan: EnginePlan,
  producer: (t: string) => Layer | undefined,
): Int8LinearSpec | string {
  if (step.activation === "gelu") return "a fused gelu epilogue (the int8 path applies ReLU only)";
  const q = roundTripQuantize(producer, step.a);
  if (typeof q === "string") return q;
  const info = (t: string) => plan.infos.get(t)!;
  const g = matmulGeometry(step, info);
  if (typeof g === "string") return g;
  if (g.batch !== 1 || g.aT || !g.bT) return "not x · wᵀ with one batch (batch axes folded into rows)";
  const ops = int8LayerOperands(plan, producer, step.b, step.bias);
  if (typeof ops === "string") return ops;
  const { grid, bias } = ops;
  return {
    kind: "int8",
    m: g.m,
    inFeatures: g.k,
    outFeatures: g.n,
    dtype: g.dtype,
    inputScale: q.scale[0],
    inputZeroPoint: q.zeroPoint[0],
    qmin: q.qmin,
    qmax: q.qmax,
    weight: grid.q,
    weightScales: grid.scales,
    bias,
    activation: step.activation,
  };
}

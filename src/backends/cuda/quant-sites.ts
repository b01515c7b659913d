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
 * Symmetric int8 values and one scale per row that give back every element of the weight `w` [N, …] exactly:
 * f32(q · s[c]) for a float32 weight, half(f32(q · s[c])) for one an fp16 compile stored in half. A row's scale
 * is found from its largest magnitude over 127 (or 128); q is then round(w / s).
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
  const scaleOf = w.dtype === "float16" ? halfRowScale : rowScale;
  for (let c = 0; c < n; c++) {
    const row = v.subarray(c * k, (c + 1) * k);
    const s = scaleOf(row);
    if (s === undefined)
      return `row ${c} of the ${w.dtype === "float16" ? "float16 " : ""}weight is not on an int8 grid`;
    scales[c] = s;
    for (let i = 0; i < k; i++) q[c * k + i] = Math.round(row[i] / s);
  }
  return { q, scales };
}

/** Half of a float16 value's unit in the last place (the rounding radius around it). */
function halfUlp16(v: number): number {
  const a = Math.abs(v);
  return a < 2 ** -14 ? 2 ** -25 : 2 ** (Math.floor(Math.log2(a)) - 11);
}

const half = (x: number) => float16BitsToNumber(numberToFloat16Bits(x));

/**
 * The scale of a row stored in half: q is still exact (|q| ≤ 128 keeps the half's rounding far below half a
 * step), and the float32 scale is taken from the intersection of the scales every element allows, so that
 * half(f32(q · s)) gives back each value.
 */
function halfRowScale(row: Float64Array): number | undefined {
  let amax = 0;
  for (const x of row) amax = Math.max(amax, Math.abs(x));
  if (amax === 0) return 1;
  for (const levels of [127, 128]) {
    const guess = amax / levels;
    const qs = Array.from(row, (x) => Math.round(x / guess));
    if (qs.some((x) => x < -128 || x > 127)) continue;
    let lo = 0;
    let hi = Number.POSITIVE_INFINITY;
    for (const [i, qi] of qs.entries()) {
      if (qi === 0) continue;
      const h = halfUlp16(row[i]);
      const [a, b] = [(row[i] - h) / qi, (row[i] + h) / qi].sort((x, y) => x - y);
      lo = Math.max(lo, a);
      hi = Math.min(hi, b);
    }
    if (!(lo <= hi)) continue;
    const s = f32((lo + hi) / 2);
    if (s > 0 && qs.every((x, i) => (x === 0 ? row[i] === 0 : half(f32(x * s)) === row[i]))) return s;
  }
  return undefined;
}

function rowScale(row: Float64Array): number | undefined {
  let amax = 0;
  for (const x of row) amax = Math.max(amax, Math.abs(x));
  if (amax === 0) return 1;
  const cells = new Float32Array(1);
  const bits = new Uint32Array(cells.buffer);
  for (const levels of [127, 128]) {
    cells[0] = amax / levels;
    const base = bits[0];
    for (const d of [0, -1, 1, -2, 2]) {
      bits[0] = base + d;
      const s = cells[0];
      if (s > 0 && onGrid(row, s)) return s;
    }
  }
  return undefined;
}

function onGrid(row: Float64Array, s: number): boolean {
  for (const x of row) {
    const q = Math.round(x / s);
    if (q < -128 || q > 127 || f32(q * s) !== x) return false;
  }
  return true;
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

// The arithmetic of PyTorch's affine quantization, element by element, in the precision PyTorch's CPU kernels
// use: float32 unless the scales are float64 tensors. Shared by the op references and the calibrator.
import { roundHalfEven } from "./math.js";

const f32 = Math.fround;

/** quantized_decomposed.quantize_*: clamp(round_half_even(x · (1/scale)) + zp, qmin, qmax). */
export function quantizeValue(
  x: number,
  invScale: number,
  zeroPoint: number,
  qmin: number,
  qmax: number,
  wide = false,
): number {
  // a float32 tensor times a Python float: the factor is rounded to float32, then the product
  const scaled = wide ? x * invScale : f32(x * f32(invScale));
  return Math.min(Math.max(roundHalfEven(scaled) + zeroPoint, qmin), qmax);
}

/** quantized_decomposed.dequantize_*: (q − zp) · scale, rounded to float32 unless the scales are float64. */
export function dequantizeValue(q: number, scale: number, zeroPoint: number, wide = false): number {
  // PyTorch multiplies a float32 tensor by the scale: the scale is rounded to float32 first
  return wide ? (q - zeroPoint) * scale : f32((q - zeroPoint) * f32(scale));
}

/**
 * aten.fake_quantize_*_affine: (clamp(zp + nearbyint(x · inv), qmin, qmax) − zp) · scale with
 * inv = 1.0f / scale in float32, as aten/src/ATen/native/quantized/cpu/kernels does.
 */
export function fakeQuantizeValue(
  x: number,
  scale: number,
  zeroPoint: number,
  qmin: number,
  qmax: number,
): number {
  const s = f32(scale);
  const inv = f32(1 / s);
  const q = Math.min(Math.max(zeroPoint + roundHalfEven(f32(x * inv)), qmin), qmax);
  return f32((q - zeroPoint) * s);
}

/** The largest finite float8 E4M3 (fn: no infinities) value. */
export const E4M3_MAX = 448;

/**
 * Rounds to the nearest float8 E4M3fn value (round half to even, saturating at ±448, as cuBLASLt's and
 * `torch.Tensor.to(torch.float8_e4m3fn)` after clamping do): 3 mantissa bits, exponents −6…8, subnormals
 * in steps of 2⁻⁹.
 */
export function roundToE4M3(x: number): number {
  if (Number.isNaN(x)) return x;
  const a = Math.min(Math.abs(x), E4M3_MAX);
  if (a === 0) return x < 0 ? -0 : 0;
  const e = Math.max(Math.floor(Math.log2(a)), -6);
  const step = 2 ** (e - 3);
  const r = Math.min(roundHalfEven(a / step) * step, E4M3_MAX);
  return x < 0 ? -r : r;
}

/**
 * The float8 E4M3fn byte of `x` (rounded as roundToE4M3): sign, 4 exponent bits (bias 7), 3 mantissa bits;
 * exponent field 0 holds the subnormals (multiples of 2⁻⁹), NaN is 0x7F. What fp8 weights are stored as.
 */
export function e4m3Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7f;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const r = Math.abs(roundToE4M3(x));
  if (r === 0) return sign;
  if (r < 2 ** -6) return sign | (r / 2 ** -9);
  let e = Math.floor(Math.log2(r));
  if (2 ** e > r) e--;
  else if (2 ** (e + 1) <= r) e++;
  return sign | ((e + 7) << 3) | ((r / 2 ** e - 1) * 8);
}

/** The value of a float8 E4M3fn byte (the inverse of e4m3Bits). */
export function e4m3Value(bits: number): number {
  const sign = bits & 0x80 ? -1 : 1;
  const exp = (bits >> 3) & 0xf;
  const mant = bits & 7;
  if (exp === 0xf && mant === 7) return Number.NaN;
  return sign * (exp === 0 ? mant * 2 ** -9 : (1 + mant / 8) * 2 ** (exp - 7));
}

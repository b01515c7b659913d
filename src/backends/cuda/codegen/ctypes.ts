/**
 * C types for generated CUDA: the type a dtype is stored as, the type arithmetic on it uses, conversions
 * between the two, literals, and the header every generated program starts with.
 */
import type { DType } from "../../../ir/dtype.js";

/** Storage type in device memory. */
export function storageCType(dtype: DType): string {
  switch (dtype) {
    case "float32":
      return "float";
    case "float64":
      return "double";
    case "float16":
      return "__half";
    case "bfloat16":
      return "__nv_bfloat16";
    case "int64":
      return "long long";
    case "int32":
      return "int";
    case "int16":
      return "short";
    case "int8":
      return "signed char";
    case "uint8":
      return "unsigned char";
    case "bool":
      return "unsigned char";
  }
}

/** Arithmetic type for a logical dtype: half types compute in float. */
export function computeCType(dtype: DType): string {
  switch (dtype) {
    case "float32":
    case "float16":
    case "bfloat16":
      return "float";
    case "float64":
      return "double";
    case "int64":
      return "long long";
    case "bool":
      return "bool";
    default:
      return "int";
  }
}

/** Converts a loaded storage value to the compute type of `logical`. */
export function fromStorage(expr: string, storage: DType, logical: DType): string {
  const ct = computeCType(logical);
  if (storage === "float16") return ct === "float" ? `__half2float(${expr})` : `(${ct})__half2float(${expr})`;
  if (storage === "bfloat16")
    return ct === "float" ? `__bfloat162float(${expr})` : `(${ct})__bfloat162float(${expr})`;
  if (storage === "bool") return ct === "bool" ? `(${expr} != 0)` : `(${ct})(${expr} != 0)`;
  return `(${ct})(${expr})`;
}

/** Converts a compute value of `logical` to its storage type. */
export function toStorage(expr: string, storage: DType, logical: DType): string {
  if (storage === "float16") return `__float2half_rn((float)(${expr}))`;
  if (storage === "bfloat16") return `__float2bfloat16_rn((float)(${expr}))`;
  if (storage === "bool") return `(unsigned char)((${expr}) != 0)`;
  if (logical === "bool") return `(${storageCType(storage)})((${expr}) ? 1 : 0)`;
  return `(${storageCType(storage)})(${expr})`;
}

/**
 * Converts a compute value between logical dtypes with PyTorch's `.to` rules: float → int truncates toward
 * zero, anything → bool is "nonzero", bool → number is 0/1.
 */
export function convert(expr: string, from: DType, to: DType): string {
  if (from === to) return expr;
  const ct = computeCType(to);
  if (to === "bool") return `((${expr}) != 0)`;
  if (computeCType(from) === ct) return expr;
  return `((${ct})(${expr}))`;
}

export function isFloatDType(d: DType): boolean {
  return d === "float32" || d === "float16" || d === "bfloat16" || d === "float64";
}

/** A float literal that C parses exactly (also inf and nan). */
export function floatLiteral(v: number, ctype = "float"): string {
  if (Number.isNaN(v))
    return ctype === "double" ? "__longlong_as_double(0x7ff8000000000000LL)" : "__int_as_float(0x7fc00000)";
  if (v === Number.POSITIVE_INFINITY)
    return ctype === "double" ? "__longlong_as_double(0x7ff0000000000000LL)" : "__int_as_float(0x7f800000)";
  if (v === Number.NEGATIVE_INFINITY)
    return ctype === "double" ? "__longlong_as_double(0xfff0000000000000LL)" : "__int_as_float(0xff800000)";
  if (ctype === "double") return Number.isInteger(v) && Math.abs(v) < 1e15 ? `${v}.0` : v.toPrecision(17);
  // A float constant is the float nearest v; subnormals (and anything NVRTC would call out of range) by bits.
  const f = Math.fround(v);
  if (f !== 0 && Math.abs(f) < 1.1754943508222875e-38) {
    const bits = new Uint32Array(new Float32Array([f]).buffer)[0];
    return `__int_as_float(0x${bits.toString(16).padStart(8, "0")})`;
  }
  if (Object.is(f, -0)) return "-0.0f";
  return Number.isInteger(f) && Math.abs(f) < 1e15 ? `${f}.0f` : `${f.toPrecision(9)}f`;
}

/** A literal of `dtype`'s compute type. */
export function literal(v: number, dtype: DType): string {
  const ct = computeCType(dtype);
  if (ct === "float" || ct === "double") return floatLiteral(v, ct);
  if (ct === "bool") return v !== 0 ? "true" : "false";
  if (ct === "long long") return `${Math.trunc(v)}LL`;
  return `${Math.trunc(v)}`;
}

/** The lowest value of a compute type (identity of max). */
export function lowest(dtype: DType): string {
  const ct = computeCType(dtype);
  if (ct === "float" || ct === "double") return floatLiteral(Number.NEGATIVE_INFINITY, ct);
  if (ct === "long long") return "(-9223372036854775807LL - 1)";
  if (ct === "bool") return "false";
  return "(-2147483647 - 1)";
}

export function highest(dtype: DType): string {
  const ct = computeCType(dtype);
  if (ct === "float" || ct === "double") return floatLiteral(Number.POSITIVE_INFINITY, ct);
  if (ct === "long long") return "9223372036854775807LL";
  if (ct === "bool") return "true";
  return "2147483647";
}

/** The prelude of every generated program: fp16/bf16 types and a few helpers with PyTorch semantics. */
export const PRELUDE = `#include <cuda_fp16.h>
#include <cuda_bf16.h>
#define TC_INF __int_as_float(0x7f800000)
__device__ __forceinline__ float tc_sigmoid(float x) { return 1.0f / (1.0f + __expf(-x)); }
__device__ __forceinline__ double tc_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
template <typename T> __device__ __forceinline__ T tc_max(T a, T b) { return (a != a || b != b) ? (a != a ? a : b) : (a > b ? a : b); }
template <typename T> __device__ __forceinline__ T tc_min(T a, T b) { return (a != a || b != b) ? (a != a ? a : b) : (a < b ? a : b); }
template <typename T> __device__ __forceinline__ T tc_remainder(T a, T b) { T m = fmod(a, b); if (m != (T)0 && ((b < (T)0) != (m < (T)0))) m += b; return m; }
template <typename T> __device__ __forceinline__ T tc_iremainder(T a, T b) { if (b == 0) return 0; T m = a % b; if (m != 0 && ((b < 0) != (m < 0))) m += b; return m; }
template <typename T> __device__ __forceinline__ T tc_ifloordiv(T a, T b) { if (b == 0) return 0; T q = a / b; if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1; return q; }
template <typename T> __device__ __forceinline__ T tc_idiv(T a, T b) { return b == 0 ? (T)0 : a / b; }
template <typename T> __device__ __forceinline__ T tc_floordiv(T a, T b) {
  if (b == (T)0) return a / b;
  T mod = fmod(a, b); T div = (a - mod) / b;
  if (mod != (T)0 && ((b < (T)0) != (mod < (T)0))) div -= (T)1;
  if (div == (T)0) return copysign((T)0, a / b);
  T fl = floor(div); if (div - fl > (T)0.5) fl += (T)1; return fl;
}
template <typename T> __device__ __forceinline__ T tc_ipow(T a, T b) { if (b < 0) return a == 1 ? 1 : (a == -1 ? ((b & 1) ? -1 : 1) : 0); T r = 1; while (b) { if (b & 1) r *= a; a *= a; b >>= 1; } return r; }
template <typename T> __device__ __forceinline__ T tc_sign(T x) { return x != x ? x : (T)((x > (T)0) - (x < (T)0)); }
__device__ __forceinline__ float tc_softplus(float x, float beta, float threshold) { return x * beta > threshold ? x : log1pf(expf(x * beta)) / beta; }
__device__ __forceinline__ float tc_gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float tc_gelu_tanh(float x) { return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x))); }
__device__ __forceinline__ float tc_warp_sum(float v) { for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o); return v; }
__device__ __forceinline__ float tc_warp_max(float v) { for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o)); return v; }
`;

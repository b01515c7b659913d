/**
 * The kernels around a quantized GEMM (device/blaslt-quant.ts), one NVRTC program:
 * - activation quantize: fp32/fp16 → int8 (per tensor: clamp(rint(x · (1/s)) + zp, qmin, qmax), stored minus
 *   an offset of 128 for uint8 ranges so the GEMM's signed int8 holds it) and fp32/fp16 → E4M3 bytes (x · (1/s),
 *   rounded as src/ops/quantize-math.ts's roundToE4M3, saturating at ±448);
 * - the int32 epilogue: out = float(acc) · alpha[n] + bias[n] (then ReLU when asked), rounded per step as the
 *   reference (src/ops/quantized-layers.ts) does, for plans whose cuBLASLt result is int32;
 * - a bias add for plans whose cuBLASLt epilogue could not take the bias.
 * Kernels are launched without programmatic dependent launch (they do not wait on griddepcontrol).
 */
import type { Kernel } from "../device/module.js";

export type QuantIoDType = "float32" | "float16";

const C_TYPE: Readonly<Record<QuantIoDType, string>> = { float32: "float", float16: "__half" };
const SUFFIX: Readonly<Record<QuantIoDType, string>> = { float32: "f32", float16: "f16" };

/** Kernel names in the program, per role and I/O type. */
export const QUANT_KERNEL = {
  int8: (t: QuantIoDType) => `tc_quantize_i8_${SUFFIX[t]}`,
  fp8: (t: QuantIoDType) => `tc_quantize_e4m3_${SUFFIX[t]}`,
  int32Epilogue: (t: QuantIoDType) => `tc_int32_epilogue_${SUFFIX[t]}`,
  addBias: (t: QuantIoDType) => `tc_add_bias_${SUFFIX[t]}`,
} as const;

export type QuantKernelName = ReturnType<(typeof QUANT_KERNEL)[keyof typeof QUANT_KERNEL]>;

export const QUANT_KERNEL_NAMES: readonly QuantKernelName[] = (["float32", "float16"] as const).flatMap(
  (t) => [QUANT_KERNEL.int8(t), QUANT_KERNEL.fp8(t), QUANT_KERNEL.int32Epilogue(t), QUANT_KERNEL.addBias(t)],
);

/** Threads per block of every kernel here (grid-stride loops). */
export const QUANT_BLOCK = 256;

const E4M3 = `
__device__ __forceinline__ unsigned char tc_e4m3(float y) {
  if (y != y) return 0x7f;  // NaN
  unsigned char s = (__float_as_uint(y) >> 31) ? 0x80 : 0;
  float a = fminf(fabsf(y), 448.f);
  if (a == 0.f) return s;
  int ex;
  frexpf(a, &ex);
  int e = ex - 1 > -6 ? ex - 1 : -6;
  float step = ldexpf(1.f, e - 3);
  float r = fminf(rintf(a / step) * step, 448.f);  // a / step is exact: step is a power of two
  if (r == 0.f) return s;
  if (r < ldexpf(1.f, -6)) return s | (unsigned char)rintf(r * 512.f);  // subnormal: multiples of 2^-9
  frexpf(r, &ex);
  e = ex - 1;
  int mant = (int)rintf(ldexpf(r, -e) * 8.f) - 8;
  return s | (unsigned char)(((e + 7) << 3) | mant);
}`;

function kernels(t: QuantIoDType): string {
  const T = C_TYPE[t];
  const load = t === "float16" ? "__half2float" : "";
  const store = t === "float16" ? "__float2half_rn" : "";
  const loop =
    "for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)";
  return `
extern "C" __global__ void ${QUANT_KERNEL.int8(t)}(const ${T} *__restrict__ x, signed char *__restrict__ q,
    float inv, int zp, int qmin, int qmax, int offset, long long n) {
  ${loop} {
    float v = rintf(__fmul_rn(${load}(x[i]), inv)) + (float)zp;
    q[i] = (signed char)((int)fminf(fmaxf(v, (float)qmin), (float)qmax) - offset);
  }
}
extern "C" __global__ void ${QUANT_KERNEL.fp8(t)}(const ${T} *__restrict__ x, unsigned char *__restrict__ q,
    float inv, long long n) {
  ${loop} q[i] = tc_e4m3(__fmul_rn(${load}(x[i]), inv));
}
extern "C" __global__ void ${QUANT_KERNEL.int32Epilogue(t)}(const int *__restrict__ acc, ${T} *__restrict__ out,
    const float *__restrict__ alpha, const float *__restrict__ bias, int relu, int cols, long long n) {
  ${loop} {
    int c = (int)(i % cols);
    float y = __fmul_rn((float)acc[i], alpha[c]);
    if (bias) y = __fadd_rn(y, bias[c]);
    if (relu) y = fmaxf(y, 0.f);
    out[i] = ${store}(y);
  }
}
extern "C" __global__ void ${QUANT_KERNEL.addBias(t)}(${T} *__restrict__ out, const float *__restrict__ bias,
    int cols, long long n) {
  ${loop} out[i] = ${store}(__fadd_rn(${load}(out[i]), bias[i % cols]));
}`;
}

/** The whole program (both I/O types). */
export function quantKernelSource(): string {
  return `#include <cuda_fp16.h>\n${E4M3}\n${kernels("float32")}\n${kernels("float16")}\n`;
}

/** Blocks for a grid-stride loop over `n` elements (at most 8 per SM-sized wave of 132 SMs). */
export function quantGrid(n: number): number {
  return Math.max(1, Math.min(Math.ceil(n / QUANT_BLOCK), 132 * 8));
}

export type QuantKernels = Readonly<Record<QuantKernelName, Kernel>>;

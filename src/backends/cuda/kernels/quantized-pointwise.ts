/**
 * A quantized 1×1 convolution as an int8 GEMM: with channels last, input [N,H,W,C] is the row-major matrix
 * [N·H·W, C] and the weight [K,C,1,1] the matrix [K,C], so conv = x · wᵀ, exactly nn.Linear over channels
 * (quantized-linear.ts). Only the convolutions where that identity holds qualify; the others are refused with
 * the reason (they keep the simulated float path).
 */
import type { Int8LinearSpec } from "./quantized-linear.js";

export interface PointwiseGeometry {
  readonly layout: "NHWC" | "NCHW";
  readonly n: number;
  readonly c: number;
  readonly h: number;
  readonly w: number;
  /** Output channels. */
  readonly k: number;
  /** Kernel size [r, s]. */
  readonly kernel: readonly number[];
  readonly stride: readonly number[];
  readonly padding: readonly number[];
  readonly groups: number;
}

/** Why the convolution is not an int8 GEMM over channels, or null. */
export function pointwiseRefusal(g: PointwiseGeometry): string | null {
  if (g.kernel.some((d) => d !== 1))
    return `a ${g.kernel.join("×")} kernel (only 1×1 convolutions run as int8 GEMMs)`;
  if (g.stride.some((d) => d !== 1)) return `stride ${g.stride.join("×")} (a 1×1 GEMM needs stride 1)`;
  if (g.padding.some((d) => d !== 0)) return `padding ${g.padding.join("×")} (a 1×1 GEMM needs none)`;
  if (g.groups !== 1) return `${g.groups} groups (a grouped convolution is not one GEMM)`;
  if (g.layout !== "NHWC") return "NCHW layout (the GEMM reads channels last)";
  return null;
}

/** The layer spec of a qualifying 1×1 convolution: M = N·H·W rows, C in, K out. */
export function pointwiseLinearSpec(
  g: PointwiseGeometry,
  q: Omit<Int8LinearSpec, "kind" | "m" | "inFeatures" | "outFeatures">,
): Int8LinearSpec {
  const why = pointwiseRefusal(g);
  if (why) throw new Error(`1×1 convolution as int8 GEMM: ${why}`);
  return { ...q, kind: "int8", m: g.n * g.h * g.w, inFeatures: g.c, outFeatures: g.k };
}

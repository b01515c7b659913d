// The torchc.quantized_linear / torchc.quantized_convolution references (the int8 oracle) on host values, shared
// by the CPU quantization tests (test/quant) and the GPU one (test/gpu/quant-kernels.ts): no vitest here.
import type { Arg } from "../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { getOp } from "../../src/ops/index.js";

const T = (name: string): Arg => ({ kind: "tensor", name });

/** How the activation is quantized: its scale, zero point (default 0) and range (default int8's [-128, 127]). */
export interface ActivationQuant {
  readonly scale: number;
  readonly zeroPoint?: number;
  readonly qmin?: number;
  readonly qmax?: number;
}

/** The reference's operands: x (float32), w (int8, symmetric), s (its per-channel scales) and b (the bias). */
export type QuantOperands = Readonly<Record<"x" | "w" | "s" | "b", Tensor>>;

/**
 * The output of `op` (torchc.quantized_linear.default or torchc.quantized_convolution.default) on `tensors`;
 * `extra` holds the op's other arguments (a convolution's stride, padding, dilation and groups).
 */
export function quantizedReference(
  op: string,
  tensors: QuantOperands,
  q: ActivationQuant,
  extra: Record<string, Arg> = {},
): Float64Array {
  const def = getOp(op)!;
  const a = def.parse({
    input: T("x"),
    input_scale: { kind: "float", value: q.scale },
    input_zero_point: { kind: "int", value: q.zeroPoint ?? 0 },
    input_quant_min: { kind: "int", value: q.qmin ?? -128 },
    input_quant_max: { kind: "int", value: q.qmax ?? 127 },
    weight: T("w"),
    weight_scales: T("s"),
    weight_zero_points: { kind: "none" },
    bias: T("b"),
    ...extra,
  });
  return toFloat64Array(def.evaluate(a, (v) => tensors[v as keyof QuantOperands])[0]);
}

/** A linear layer on host values: x [m, k], int8 weights w [n, k] with per-channel scales, and a bias [n]. */
export interface HostQuantLinear {
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly x: ArrayLike<number>;
  readonly w: ArrayLike<number>;
  readonly scales: ArrayLike<number>;
  readonly bias: ArrayLike<number>;
}

/** torchc.quantized_linear's reference output [m, n] for `l`. */
export function quantizedLinearReference(l: HostQuantLinear, q: ActivationQuant): Float64Array {
  const tensors = {
    x: tensorFromNumbers("float32", [l.m, l.k], l.x),
    w: tensorFromNumbers("int8", [l.n, l.k], l.w),
    s: tensorFromNumbers("float32", [l.n], l.scales),
    b: tensorFromNumbers("float32", [l.n], l.bias),
  };
  return quantizedReference("torchc.quantized_linear.default", tensors, q);
}

import type { TensorType } from "../../ir/graph.js";
import { checkAxis, requireFloat } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/** Affine quantization parameters: per tensor (`axis` null, one scale) or per channel along `axis`. */
export interface QuantParams {
  readonly scale: readonly number[];
  readonly zeroPoint: readonly number[];
  readonly axis: number | null;
  readonly qmin: number;
  readonly qmax: number;
}

/** q = clamp(round_half_even(x / scale) + zeroPoint, qmin, qmax), stored as int8 or uint8. */
export interface QuantizeLayer extends LayerBase<"quantize", readonly [input: string]>, QuantParams {
  readonly dtype: "int8" | "uint8";
}

/** x = (q − zeroPoint) · scale, as float32 (or `dtype`). */
export interface DequantizeLayer extends LayerBase<"dequantize", readonly [input: string]>, QuantParams {
  readonly dtype: "float32" | "float16" | "bfloat16";
}

/** Whether `a` and `b` are the same per-tensor quantization (a dequantize that undoes a quantize exactly). */
export function samePerTensorQuantization(a: QuantParams, b: QuantParams): boolean {
  return (
    a.axis === null &&
    b.axis === null &&
    a.scale[0] === b.scale[0] &&
    a.zeroPoint[0] === b.zeroPoint[0] &&
    a.qmin === b.qmin &&
    a.qmax === b.qmax
  );
}

function checkParams(name: string, p: QuantParams, x: TensorType): void {
  const n = p.axis === null ? 1 : x.shape[checkAxis(name, p.axis, x.shape.length)];
  if (p.scale.length !== n || p.zeroPoint.length !== n)
    throw new LayerShapeError(name, `needs ${n} scales and zero points`);
  if (p.scale.some((s) => !(s > 0))) throw new LayerShapeError(name, "scales must be positive");
  if (p.qmin > p.qmax) throw new LayerShapeError(name, `qmin ${p.qmin} > qmax ${p.qmax}`);
}

export function inferQuantize(layer: QuantizeLayer, [x]: InputTypes): TensorType {
  requireFloat("quantize", x.dtype);
  checkParams("quantize", layer, x);
  return { dtype: layer.dtype, shape: x.shape };
}

export function inferDequantize(layer: DequantizeLayer, [q]: InputTypes): TensorType {
  if (q.dtype !== "int8" && q.dtype !== "uint8" && q.dtype !== "int32") {
    throw new LayerShapeError("dequantize", `input of dtype ${q.dtype}`);
  }
  checkParams("dequantize", layer, q);
  return { dtype: layer.dtype, shape: q.shape };
}

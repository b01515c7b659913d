import type { TensorType } from "../../ir/graph.js";
import { requireFloat } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

export type PoolingMode = "max" | "avg";

/** Windowed pooling over the trailing `kernel.length` axes of an N C … input, with PyTorch's size rules. */
export interface PoolingLayer extends LayerBase<"pooling", readonly [input: string]> {
  readonly mode: PoolingMode;
  readonly kernel: readonly number[];
  readonly stride: readonly number[];
  readonly padding: readonly number[];
  readonly dilation: readonly number[];
  readonly ceilMode: boolean;
  /** avg only: whether padded zeros count in the divisor. */
  readonly countIncludePad: boolean;
  /** avg only: a fixed divisor replacing the window size. */
  readonly divisorOverride: number | null;
}

/** Adaptive pooling to a fixed output size (global pooling is output size 1 on every axis). */
export interface AdaptivePoolingLayer extends LayerBase<"adaptive_pooling", readonly [input: string]> {
  readonly mode: PoolingMode;
  readonly outputSize: readonly number[];
}

/** PyTorch's `pooling_output_shape`: a ceil-mode window must start inside the input or left padding. */
export function poolOutputSize(
  inp: number,
  k: number,
  s: number,
  p: number,
  d: number,
  ceil: boolean,
): number {
  const span = inp + 2 * p - d * (k - 1) - 1 + (ceil ? s - 1 : 0);
  let out = Math.floor(span / s) + 1;
  if (ceil && (out - 1) * s >= inp + p) out--;
  return out;
}

export function inferPooling(layer: PoolingLayer, [x]: InputTypes): TensorType {
  const name = `pooling ${layer.mode}`;
  requireFloat(name, x.dtype);
  const sp = layer.kernel.length;
  if (sp < 1 || x.shape.length < sp + 1)
    throw new LayerShapeError(name, `input [${x.shape}] for ${sp}-d pooling`);
  for (const f of ["stride", "padding", "dilation"] as const) {
    if (layer[f].length !== sp)
      throw new LayerShapeError(name, `${f} has ${layer[f].length} entries for ${sp} axes`);
  }
  const lead = x.shape.length - sp;
  const shape = x.shape.slice(0, lead);
  for (let i = 0; i < sp; i++) {
    const k = layer.kernel[i];
    if (layer.padding[i] * 2 > k)
      throw new LayerShapeError(name, `padding ${layer.padding[i]} exceeds half the kernel ${k}`);
    const o = poolOutputSize(
      x.shape[lead + i],
      k,
      layer.stride[i],
      layer.padding[i],
      layer.dilation[i],
      layer.ceilMode,
    );
    if (o < 1) throw new LayerShapeError(name, `window larger than the padded input on axis ${lead + i}`);
    shape.push(o);
  }
  return { dtype: x.dtype, shape };
}

export function inferAdaptivePooling(layer: AdaptivePoolingLayer, [x]: InputTypes): TensorType {
  const name = `adaptive_pooling ${layer.mode}`;
  requireFloat(name, x.dtype);
  const sp = layer.outputSize.length;
  if (sp < 1 || x.shape.length < sp + 1)
    throw new LayerShapeError(name, `input [${x.shape}] for ${sp}-d pooling`);
  if (layer.outputSize.some((o) => !Number.isInteger(o) || o < 1))
    throw new LayerShapeError(name, "output size ≥ 1");
  if (x.shape.slice(-sp).some((d) => d < 1)) throw new LayerShapeError(name, "empty spatial axis");
  return { dtype: x.dtype, shape: [...x.shape.slice(0, x.shape.length - sp), ...layer.outputSize] };
}

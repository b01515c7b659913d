import type { TensorType } from "../../ir/graph.js";
import { requireFloat } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/**
 * Resamples the trailing spatial axes to `outputSize`, following PyTorch's `upsample_*` index rules.
 * `scales[i]`, when set, is the user's scale factor, which PyTorch uses instead of in/out for the mapping.
 * `linear` is separable (bilinear, trilinear) with `alignCorners`.
 */
export interface ResizeLayer extends LayerBase<"resize", readonly [input: string]> {
  readonly mode: "nearest" | "nearest_exact" | "linear";
  readonly outputSize: readonly number[];
  readonly scales: readonly (number | null)[];
  readonly alignCorners: boolean;
}

export function inferResize(layer: ResizeLayer, [x]: InputTypes): TensorType {
  const name = `resize ${layer.mode}`;
  requireFloat(name, x.dtype);
  const sp = layer.outputSize.length;
  if (sp < 1 || x.shape.length < sp + 1 || layer.scales.length !== sp) {
    throw new LayerShapeError(name, `input [${x.shape}] for ${sp} spatial axes`);
  }
  if (layer.outputSize.some((o) => !Number.isInteger(o) || o < 1))
    throw new LayerShapeError(name, "output size ≥ 1");
  return { dtype: x.dtype, shape: [...x.shape.slice(0, x.shape.length - sp), ...layer.outputSize] };
}

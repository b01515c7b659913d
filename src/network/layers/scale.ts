import type { TensorType } from "../../ir/graph.js";
import { checkAxis, requireFloat } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/**
 * out = x·scale[c] + shift[c] along `channelAxis` (scale/shift of length C, or 1 for a uniform scale).
 * Inference batch norm lands here with its statistics folded, so backends can fold it into a convolution.
 */
export interface ScaleLayer
  extends LayerBase<"scale", readonly [input: string, scale: string, shift: string]> {
  readonly channelAxis: number;
}

export function inferScale(layer: ScaleLayer, [x, scale, shift]: InputTypes): TensorType {
  requireFloat("scale", x.dtype);
  checkAxis("scale", layer.channelAxis, x.shape.length);
  const c = x.shape[layer.channelAxis];
  for (const [what, t] of [
    ["scale", scale],
    ["shift", shift],
  ] as const) {
    if (t.shape.length !== 1 || (t.shape[0] !== c && t.shape[0] !== 1)) {
      throw new LayerShapeError("scale", `${what} [${t.shape}] for ${c} channels`);
    }
    if (t.dtype !== x.dtype) throw new LayerShapeError("scale", `${what} is ${t.dtype}, input ${x.dtype}`);
  }
  return x;
}

import type { TensorType } from "../../ir/graph.js";
import { checkAxis, requireFloat } from "../shape.js";
import type { InputTypes, LayerBase } from "./base.js";

/** Softmax along one axis; `log` gives log-softmax computed stably (not log of softmax). */
export interface SoftmaxLayer extends LayerBase<"softmax", readonly [input: string]> {
  readonly axis: number;
  readonly log: boolean;
}

export function inferSoftmax(layer: SoftmaxLayer, [x]: InputTypes): TensorType {
  requireFloat("softmax", x.dtype);
  if (x.shape.length > 0) checkAxis("softmax", layer.axis, x.shape.length);
  return x;
}

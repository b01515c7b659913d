import type { DType } from "../../ir/dtype.js";
import type { TensorType } from "../../ir/graph.js";
import type { InputTypes, LayerBase } from "./base.js";

/** Converts element type as PyTorch's `.to(dtype)`: floats to ints truncate toward zero, nonzero to bool is true. */
export interface CastLayer extends LayerBase<"cast", readonly [input: string]> {
  readonly to: DType;
}

export function inferCast(layer: CastLayer, [x]: InputTypes): TensorType {
  return { dtype: layer.to, shape: x.shape };
}

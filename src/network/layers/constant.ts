import type { DType } from "../../ir/dtype.js";
import type { TensorType } from "../../ir/graph.js";
import type { Shape } from "../../ir/tensor.js";
import type { LayerBase } from "./base.js";

/** Produces the tensor `network.constants[weight]`; its type is repeated here so the layer is self-describing. */
export interface ConstantLayer extends LayerBase<"constant", readonly []> {
  readonly weight: string;
  readonly dtype: DType;
  readonly shape: Shape;
}

export function inferConstant(layer: ConstantLayer): TensorType {
  return { dtype: layer.dtype, shape: layer.shape };
}

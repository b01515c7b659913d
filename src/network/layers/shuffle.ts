import type { TensorType } from "../../ir/graph.js";
import { numel } from "../../ir/tensor.js";
import { checkPermutation } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/**
 * TensorRT's shuffle: transpose, then reshape (row-major), then transpose. Any step may be absent. Shapes
 * are static, so `reshape` holds concrete sizes (no -1).
 */
export interface ShuffleLayer extends LayerBase<"shuffle", readonly [input: string]> {
  readonly firstTranspose: readonly number[] | null;
  readonly reshape: readonly number[] | null;
  readonly secondTranspose: readonly number[] | null;
}

export function inferShuffle(layer: ShuffleLayer, [x]: InputTypes): TensorType {
  let shape: number[] = [...x.shape];
  if (layer.firstTranspose) {
    checkPermutation("shuffle", layer.firstTranspose, shape.length);
    shape = layer.firstTranspose.map((p) => shape[p]);
  }
  if (layer.reshape) {
    if (layer.reshape.some((d) => !Number.isInteger(d) || d < 0) || numel(layer.reshape) !== numel(shape)) {
      throw new LayerShapeError("shuffle", `cannot reshape [${shape}] to [${layer.reshape}]`);
    }
    shape = [...layer.reshape];
  }
  if (layer.secondTranspose) {
    checkPermutation("shuffle", layer.secondTranspose, shape.length);
    const s = shape;
    shape = layer.secondTranspose.map((p) => s[p]);
  }
  return { dtype: x.dtype, shape };
}

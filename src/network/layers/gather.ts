import type { TensorType } from "../../ir/graph.js";
import { checkAxis } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/**
 * `default`: index one axis with a tensor of indices (embedding, index_select); output is
 * data[:axis] + indices + data[axis+1:]. `elements`: torch.gather, output has the indices' shape.
 * Negative indices count from the end, as in PyTorch.
 */
export interface GatherLayer extends LayerBase<"gather", readonly [data: string, indices: string]> {
  readonly axis: number;
  readonly mode: "default" | "elements";
}

export function inferGather(layer: GatherLayer, [data, idx]: InputTypes): TensorType {
  checkAxis("gather", layer.axis, data.shape.length);
  if (idx.dtype !== "int32" && idx.dtype !== "int64")
    throw new LayerShapeError("gather", `indices of dtype ${idx.dtype}`);
  if (layer.mode === "elements") {
    if (idx.shape.length !== data.shape.length)
      throw new LayerShapeError("gather", "elements mode needs equal ranks");
    if (idx.shape.some((d, i) => i !== layer.axis && d > data.shape[i])) {
      throw new LayerShapeError(
        "gather",
        `indices [${idx.shape}] exceed data [${data.shape}] off the gather axis`,
      );
    }
    return { dtype: data.dtype, shape: idx.shape };
  }
  const shape = [...data.shape.slice(0, layer.axis), ...idx.shape, ...data.shape.slice(layer.axis + 1)];
  return { dtype: data.dtype, shape };
}

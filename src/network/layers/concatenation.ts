import type { TensorType } from "../../ir/graph.js";
import { checkAxis } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

export interface ConcatenationLayer extends LayerBase<"concatenation", readonly string[]> {
  readonly axis: number;
}

export function inferConcatenation(layer: ConcatenationLayer, inputs: InputTypes): TensorType {
  if (inputs.length === 0) throw new LayerShapeError("concatenation", "needs at least one input");
  const first = inputs[0];
  checkAxis("concatenation", layer.axis, first.shape.length);
  let total = 0;
  for (const t of inputs) {
    if (t.dtype !== first.dtype)
      throw new LayerShapeError("concatenation", `mixed dtypes ${first.dtype} and ${t.dtype}`);
    if (
      t.shape.length !== first.shape.length ||
      t.shape.some((d, i) => i !== layer.axis && d !== first.shape[i])
    ) {
      throw new LayerShapeError(
        "concatenation",
        `[${t.shape}] does not match [${first.shape}] off axis ${layer.axis}`,
      );
    }
    total += t.shape[layer.axis];
  }
  const shape = [...first.shape];
  shape[layer.axis] = total;
  return { dtype: first.dtype, shape };
}

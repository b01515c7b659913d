import type { TensorType } from "../../ir/graph.js";
import { broadcastShapes } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/** NumPy-broadcasts the input to `shape` (aten `expand`): a view on a GPU, so backends fold it into readers. */
export interface BroadcastLayer extends LayerBase<"broadcast", readonly [input: string]> {
  readonly shape: readonly number[];
}

export function inferBroadcast(layer: BroadcastLayer, [x]: InputTypes): TensorType {
  const shape = broadcastShapes("broadcast", x.shape, layer.shape);
  if (shape.join() !== layer.shape.join())
    throw new LayerShapeError("broadcast", `[${x.shape}] does not expand to [${layer.shape}]`);
  return { dtype: x.dtype, shape };
}

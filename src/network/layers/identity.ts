import type { TensorType } from "../../ir/graph.js";
import type { InputTypes, LayerBase } from "./base.js";

/** Passes its input through; used where a value must get a name of its own (a network output). */
export interface IdentityLayer extends LayerBase<"identity", readonly [input: string]> {}

export function inferIdentity(_layer: IdentityLayer, [x]: InputTypes): TensorType {
  return x;
}

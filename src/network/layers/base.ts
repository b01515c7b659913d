import { TorchcError } from "../../errors.js";
import type { TensorType } from "../../ir/graph.js";

/**
 * What every layer has. `inputs` is a labelled tuple per layer type, so positions are named in the type
 * (`[input, weight, bias?]`) while generic code (schedulers, fusers, printers) can still walk them.
 */
export interface LayerBase<T extends string, I extends readonly string[]> {
  readonly type: T;
  /** Unique within the network; converters scope it by the aten node (`conv1/convolution`). */
  readonly name: string;
  readonly inputs: I;
  readonly output: string;
}

/** A layer whose attributes do not fit its inputs: a converter bug, never a user error. */
export class LayerShapeError extends TorchcError {
  constructor(layerType: string, detail: string) {
    super(`${layerType} layer: ${detail}`, "network.shape");
    this.name = "LayerShapeError";
  }
}

export type InputTypes = readonly TensorType[];

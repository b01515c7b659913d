import type { TensorType } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import type { Layer } from "./layers/index.js";

/**
 * A backend-neutral network, in the spirit of TensorRT's network definition: typed tensors, layers in
 * topological order, and the constant data that constant layers produce. Immutable once built.
 * Input and output tensors keep the graph value names they stand for, so a runtime can bind buffers by name.
 */
export interface Network {
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly layers: readonly Layer[];
  readonly tensors: Readonly<Record<string, TensorType>>;
  /** Data of constant layers, keyed by `ConstantLayer.weight`. */
  readonly constants: Readonly<Record<string, Tensor>>;
}

import type { TensorType } from "../../ir/graph.js";
import type { Tensor } from "../../ir/tensor.js";

export interface ReferenceEnv {
  /** Data of a constant layer's weight. */
  constant(weight: string): Tensor;
}

/** Runs one layer on host tensors; `out` is the output type the shape rule gave. */
export type LayerRunner<L> = (
  layer: L,
  inputs: readonly Tensor[],
  out: TensorType,
  env: ReferenceEnv,
) => Tensor;

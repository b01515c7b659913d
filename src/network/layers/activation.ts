import type { TensorType } from "../../ir/graph.js";
import { requireFloat } from "../shape.js";
import type { InputTypes, LayerBase } from "./base.js";

/** Pointwise activations with their parameters; the kind decides which parameters exist. */
export type ActivationFn =
  | { readonly kind: "relu" }
  | { readonly kind: "clip"; readonly min: number; readonly max: number }
  | { readonly kind: "leaky_relu"; readonly negativeSlope: number }
  | { readonly kind: "elu"; readonly alpha: number; readonly scale: number; readonly inputScale: number }
  | { readonly kind: "selu" }
  | { readonly kind: "celu"; readonly alpha: number }
  | { readonly kind: "silu" }
  | { readonly kind: "sigmoid" }
  | { readonly kind: "tanh" }
  | { readonly kind: "gelu_erf" }
  | { readonly kind: "gelu_tanh" }
  | { readonly kind: "hardswish" }
  | { readonly kind: "hardsigmoid" }
  | { readonly kind: "softplus"; readonly beta: number; readonly threshold: number }
  | { readonly kind: "mish" }
  | { readonly kind: "softsign" }
  | { readonly kind: "hardshrink"; readonly lambda: number };

export type ActivationKind = ActivationFn["kind"];

export interface ActivationLayer extends LayerBase<"activation", readonly [input: string]> {
  readonly fn: ActivationFn;
}

export function inferActivation(layer: ActivationLayer, [x]: InputTypes): TensorType {
  // relu and clip are also defined on integers in PyTorch; the others need floats.
  if (layer.fn.kind !== "relu" && layer.fn.kind !== "clip")
    requireFloat(`activation ${layer.fn.kind}`, x.dtype);
  return x;
}

import { isFloating } from "../../ir/dtype.js";
import type { ActivationFn } from "../../network/layers/activation.js";
import { cast } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter, refuse, SUPPORTED } from "../types.js";
import { outType } from "./common.js";

// Activations map one to one onto the activation layer, so a backend can fuse them into a producer's epilogue.

function activation<A extends { readonly self: string }>(
  name: string,
  fn: (a: A) => ActivationFn,
  intsToo = false,
): ConverterSpec<A> {
  return {
    name,
    supports: (_node, a, ctx) => {
      const d = ctx.typeOf(a.self).dtype;
      if (d === "bool") return refuse(`${name} of a bool tensor is not supported`);
      return intsToo || isFloating(d) ? SUPPORTED : refuse(`${name} needs a floating-point input, got ${d}`);
    },
    convert: (node, a, net) => {
      const x = cast(net.net, net.input(a.self), outType(node, net).dtype);
      return [net.net.add({ type: "activation", inputs: [x], fn: fn(a) }, name)];
    },
  };
}

const fixed = (fn: ActivationFn) => () => fn;

interface Hardtanh {
  readonly self: string;
  readonly params: { readonly lo: number; readonly hi: number };
}
interface Leaky {
  readonly self: string;
  readonly params: number;
}
interface Elu {
  readonly self: string;
  readonly params: { readonly alpha: number; readonly scale: number; readonly inScale: number };
}
interface Gelu {
  readonly self: string;
  readonly params: string;
}
interface Softplus {
  readonly self: string;
  readonly params: { readonly beta: number; readonly threshold: number };
}

const gelu = activation<Gelu>("gelu", (a) => ({ kind: a.params === "tanh" ? "gelu_tanh" : "gelu_erf" }));

export const ACTIVATION_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.relu.default", activation("relu", fixed({ kind: "relu" }), true)),
  converter("aten.relu6.default", activation("relu6", fixed({ kind: "clip", min: 0, max: 6 }), true)),
  converter("aten.sigmoid.default", activation("sigmoid", fixed({ kind: "sigmoid" }), true)),
  converter("aten.tanh.default", activation("tanh", fixed({ kind: "tanh" }), true)),
  converter("aten.silu.default", activation("silu", fixed({ kind: "silu" }))),
  converter("aten.hardswish.default", activation("hardswish", fixed({ kind: "hardswish" }))),
  converter("aten.hardsigmoid.default", activation("hardsigmoid", fixed({ kind: "hardsigmoid" }))),
  converter("aten.mish.default", activation("mish", fixed({ kind: "mish" }))),
  converter(
    "aten.hardtanh.default",
    activation<Hardtanh>("hardtanh", (a) => ({ kind: "clip", min: a.params.lo, max: a.params.hi }), true),
  ),
  converter(
    "aten.leaky_relu.default",
    activation<Leaky>("leaky_relu", (a) => ({ kind: "leaky_relu", negativeSlope: a.params })),
  ),
  converter(
    "aten.elu.default",
    activation<Elu>("elu", (a) => ({
      kind: "elu",
      alpha: a.params.alpha,
      scale: a.params.scale,
      inputScale: a.params.inScale,
    })),
  ),
  converter("aten.gelu.default", gelu),
  converter(
    "aten.softplus.default",
    activation<Softplus>("softplus", (a) => ({
      kind: "softplus",
      beta: a.params.beta,
      threshold: a.params.threshold,
    })),
  ),
];

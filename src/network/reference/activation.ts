import type { ActivationFn, ActivationLayer } from "../layers/activation.js";
import { read, write } from "./data.js";
import { geluErf, geluTanh, sigmoid } from "./math.js";
import type { LayerRunner } from "./types.js";

const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;

function softplus(x: number, beta: number, threshold: number): number {
  return x * beta > threshold ? x : Math.log1p(Math.exp(x * beta)) / beta;
}

/** The scalar function of an activation, with PyTorch's formulas and constants. */
export function activationFunction(fn: ActivationFn): (x: number) => number {
  switch (fn.kind) {
    case "relu":
      return (x) => (Number.isNaN(x) ? x : Math.max(x, 0));
    case "clip":
      return (x) => (Number.isNaN(x) ? x : Math.min(Math.max(x, fn.min), fn.max));
    case "leaky_relu":
      return (x) => (x > 0 ? x : x * fn.negativeSlope);
    case "elu":
      return (x) => (x > 0 ? fn.scale * x : fn.scale * fn.alpha * Math.expm1(x * fn.inputScale));
    case "selu":
      return (x) => (x > 0 ? SELU_SCALE * x : SELU_SCALE * SELU_ALPHA * Math.expm1(x));
    case "celu":
      return (x) => Math.max(0, x) + Math.min(0, fn.alpha * Math.expm1(x / fn.alpha));
    case "silu":
      return (x) => x * sigmoid(x);
    case "sigmoid":
      return sigmoid;
    case "tanh":
      return Math.tanh;
    case "gelu_erf":
      return geluErf;
    case "gelu_tanh":
      return geluTanh;
    case "hardswish":
      return (x) => (x * Math.min(Math.max(x + 3, 0), 6)) / 6;
    case "hardsigmoid":
      return (x) => Math.min(Math.max(x + 3, 0), 6) / 6;
    case "softplus":
      return (x) => softplus(x, fn.beta, fn.threshold);
    case "mish":
      return (x) => x * Math.tanh(softplus(x, 1, 20));
    case "softsign":
      return (x) => x / (1 + Math.abs(x));
    case "hardshrink":
      return (x) => (x > fn.lambda || x < -fn.lambda ? x : 0);
  }
}

export const runActivation: LayerRunner<ActivationLayer> = (layer, [xt], out) => {
  const x = read(xt);
  const f = activationFunction(layer.fn);
  const res = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) res[i] = f(x[i]);
  return write(out, res);
};

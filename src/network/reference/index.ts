import { InputError } from "../../errors.js";
import type { Tensor } from "../../ir/tensor.js";
import type { Layer, LayerOf, LayerType } from "../layers/index.js";
import type { Network } from "../network.js";
import { runActivation } from "./activation.js";
import { runAttention } from "./attention.js";
import { runConcatenation } from "./concatenation.js";
import { runConvolution, runDeconvolution } from "./convolution.js";
import { runElementwise } from "./elementwise.js";
import { runGather } from "./gather.js";
import { runMatMul } from "./matmul.js";
import { runNormalization } from "./normalization.js";
import { runPadding } from "./padding.js";
import { runAdaptivePooling, runPooling } from "./pooling.js";
import { runDequantize, runQuantize } from "./quantize.js";
import { runReduce } from "./reduce.js";
import { runResize } from "./resize.js";
import { runScale } from "./scale.js";
import { runShuffle } from "./shuffle.js";
import { runBroadcast, runCast, runConstant, runIdentity, runSelect } from "./simple.js";
import { runSlice } from "./slice.js";
import { runSoftmax } from "./softmax.js";
import type { LayerRunner, ReferenceEnv } from "./types.js";
import { runUnary } from "./unary.js";

export { activationFunction } from "./activation.js";
export { erf } from "./math.js";
export type { LayerRunner, ReferenceEnv } from "./types.js";

/** The CPU reference of each layer type; a missing entry is a compile error. */
export const LAYER_RUNNERS: { readonly [T in LayerType]: LayerRunner<LayerOf<T>> } = {
  convolution: runConvolution,
  deconvolution: runDeconvolution,
  matmul: runMatMul,
  elementwise: runElementwise,
  unary: runUnary,
  activation: runActivation,
  reduce: runReduce,
  pooling: runPooling,
  adaptive_pooling: runAdaptivePooling,
  softmax: runSoftmax,
  shuffle: runShuffle,
  broadcast: runBroadcast,
  concatenation: runConcatenation,
  slice: runSlice,
  gather: runGather,
  normalization: runNormalization,
  scale: runScale,
  constant: runConstant,
  cast: runCast,
  padding: runPadding,
  resize: runResize,
  select: runSelect,
  quantize: runQuantize,
  dequantize: runDequantize,
  identity: runIdentity,
  attention: runAttention,
};

export function runLayerReference(layer: Layer, inputs: readonly Tensor[], net: Network): Tensor {
  const env: ReferenceEnv = { constant: (w) => net.constants[w] };
  const runner = LAYER_RUNNERS[layer.type] as LayerRunner<Layer>;
  return runner(layer, inputs, net.tensors[layer.output], env);
}

export interface ReferenceRunOptions {
  /** Called after each layer, e.g. to compare intermediates layer by layer. */
  onLayer?: (layer: Layer, output: Tensor) => void;
}

/**
 * Runs a network on the CPU: float32 storage per layer, float64 arithmetic inside. `inputs` are in
 * `network.inputs` order or keyed by input name; returns the outputs in `network.outputs` order.
 */
export function runNetworkReference(
  network: Network,
  inputs: readonly Tensor[] | Readonly<Record<string, Tensor>>,
  options: ReferenceRunOptions = {},
): Tensor[] {
  const values = new Map<string, Tensor>();
  network.inputs.forEach((name, i) => {
    const t = Array.isArray(inputs)
      ? (inputs as readonly Tensor[])[i]
      : (inputs as Record<string, Tensor>)[name];
    const want = network.tensors[name];
    if (!t) throw new InputError(`network input '${name}' was not given`, "input.missing");
    if (t.dtype !== want.dtype || t.shape.join() !== want.shape.join()) {
      throw new InputError(
        `network input '${name}' is ${t.dtype}[${t.shape}], expected ${want.dtype}[${want.shape}]`,
        "input.shape",
      );
    }
    values.set(name, t);
  });
  for (const layer of network.layers) {
    const out = runLayerReference(
      layer,
      layer.inputs.map((i) => values.get(i)!),
      network,
    );
    values.set(layer.output, out);
    options.onLayer?.(layer, out);
  }
  return network.outputs.map((o) => values.get(o)!);
}

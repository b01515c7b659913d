import type { DType } from "../../ir/dtype.js";
import { tensorFromNumbers } from "../../ir/tensor.js";
import type { ScalarValue } from "../../ops/index.js";
import { fill } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter, SUPPORTED } from "../types.js";
import { outType } from "./common.js";

// Factories produce constants: their shapes are static and their values do not depend on the inputs
// (the `*_like` ones read only a shape), so the engine stores them as weights.

interface Fill {
  readonly fill: ScalarValue;
}

const full: ConverterSpec<Fill> = {
  name: "constant",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const t = outType(node, net);
    return [fill(net.net, t.dtype, t.shape, a.fill.value)];
  },
};

interface Arange {
  readonly start: ScalarValue;
  readonly step: ScalarValue;
  readonly dtype: DType | null;
}

const arange: ConverterSpec<Arange> = {
  name: "constant",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const t = outType(node, net);
    const n = t.shape[0];
    const v = Array.from({ length: n }, (_, i) => a.start.value + i * a.step.value);
    return [net.net.constant(tensorFromNumbers(t.dtype, t.shape, v))];
  },
};

export const CREATION_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.arange.default", arange),
  converter("aten.arange.start", arange),
  converter("aten.arange.start_step", arange),
  ...(
    [
      "aten.full.default",
      "aten.zeros.default",
      "aten.ones.default",
      "aten.empty.memory_format",
      "aten.scalar_tensor.default",
      "aten.full_like.default",
      "aten.zeros_like.default",
      "aten.ones_like.default",
      "aten.empty_like.default",
      "aten.new_empty.default",
      "aten.new_full.default",
      "aten.new_ones.default",
      "aten.new_zeros.default",
    ] as const
  ).map((op) => converter(op, full)),
];

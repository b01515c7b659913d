import type { DType } from "../../src/ir/dtype.js";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { NetworkBuilder } from "../../src/network/builder.js";
import type { LayerSpec } from "../../src/network/layers/index.js";
import { runNetworkReference } from "../../src/network/reference/index.js";
import { verifyNetwork } from "../../src/network/verify.js";

export function t(shape: number[], values: number[], dtype: DType = "float32"): Tensor {
  return tensorFromNumbers(dtype, shape, values);
}

export function iota(shape: number[], dtype: DType = "float32", scale = 1): Tensor {
  const n = shape.reduce((a, d) => a * d, 1);
  return t(
    shape,
    Array.from({ length: n }, (_, i) => i * scale),
    dtype,
  );
}

/** Runs one layer whose inputs are network inputs; returns the output as plain numbers and its shape. */
export function runLayer(
  spec: (inputs: string[]) => LayerSpec,
  ...inputs: Tensor[]
): { shape: readonly number[]; values: number[] } {
  const net = new NetworkBuilder();
  const names = inputs.map((x, i) => net.addInput(`in${i}`, x));
  const out = net.add(spec(names));
  const network = verifyNetwork(net.build([{ tensor: out, as: "out" }]));
  const [y] = runNetworkReference(network, inputs);
  return { shape: y.shape, values: Array.from(toFloat64Array(y)) };
}

export function nums(x: Tensor): number[] {
  return Array.from(toFloat64Array(x));
}

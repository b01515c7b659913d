import type { NetworkBuilder } from "../../network/builder.js";
import { reshape } from "./tensors.js";

export interface ConvParams {
  readonly input: string;
  readonly weight: string;
  readonly bias: string | null;
  readonly stride: readonly number[];
  /** Symmetric padding per spatial axis. */
  readonly padding: readonly number[];
  readonly dilation: readonly number[];
  readonly groups: number;
  readonly transposed: boolean;
  readonly outputPadding: readonly number[];
}

/** Spreads a one-element list over every spatial axis, as PyTorch does for `stride=[2]`. */
export function perAxis(values: readonly number[], spatial: number): number[] {
  return values.length === 1 && spatial > 1 ? new Array<number>(spatial).fill(values[0]) : [...values];
}

/**
 * A (de)convolution layer with the bias fused. An unbatched input (C, …) gets a batch axis of 1 around the
 * layer, so backends only see batched NC… tensors.
 */
export function convolution(net: NetworkBuilder, p: ConvParams): string {
  const w = net.typeOf(p.weight);
  const sp = w.shape.length - 2;
  const xShape = net.typeOf(p.input).shape;
  const unbatched = xShape.length === sp + 1;
  const x = unbatched ? reshape(net, p.input, [1, ...xShape]) : p.input;
  const inputs = (p.bias ? [x, p.weight, p.bias] : [x, p.weight]) as
    | [string, string]
    | [string, string, string];
  const common = {
    inputs,
    stride: perAxis(p.stride, sp),
    padding: perAxis(p.padding, sp),
    dilation: perAxis(p.dilation, sp),
    groups: p.groups,
  };
  const y = p.transposed
    ? net.add({ type: "deconvolution", ...common, outputPadding: perAxis(p.outputPadding, sp) })
    : net.add({ type: "convolution", ...common });
  return unbatched ? reshape(net, y, net.typeOf(y).shape.slice(1)) : y;
}

import type { DType } from "../../ir/dtype.js";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../ir/tensor.js";
import type { NetworkBuilder } from "../../network/builder.js";
import { binary, unary } from "./elementwise.js";
import { fill, reshape, scalar } from "./tensors.js";

export interface BatchNormParams {
  readonly input: string;
  /** Graph constants when known (folded into a scale layer), else network tensors. */
  readonly weight: Tensor | string | null;
  readonly bias: Tensor | string | null;
  readonly mean: Tensor | string;
  readonly variance: Tensor | string;
  readonly eps: number;
}

/**
 * Inference batch norm. With constant statistics it folds into one scale layer,
 * x·(w/√(var+ε)) + (b − mean·w/√(var+ε)), which a backend can fold into the convolution in front.
 * Otherwise it is an elementwise chain over [C, 1, …] views.
 */
export function batchNormInference(
  net: NetworkBuilder,
  p: BatchNormParams,
  inputTensor: (t: Tensor | string) => string,
): string {
  const x = net.typeOf(p.input);
  const dtype = x.dtype;
  const c = x.shape[1] ?? 1;
  const isConst = (v: Tensor | string | null): v is Tensor | null => v === null || typeof v !== "string";
  if (isConst(p.weight) && isConst(p.bias) && isConst(p.mean) && isConst(p.variance)) {
    const ones = new Float64Array(c).fill(1);
    const w = p.weight ? toFloat64Array(p.weight) : ones;
    const b = p.bias ? toFloat64Array(p.bias) : new Float64Array(c);
    const mean = toFloat64Array(p.mean as Tensor);
    const variance = toFloat64Array(p.variance as Tensor);
    const s = new Float64Array(c);
    const t = new Float64Array(c);
    for (let i = 0; i < c; i++) {
      s[i] = w[i] / Math.sqrt(variance[i] + p.eps);
      t[i] = b[i] - mean[i] * s[i];
    }
    const sc = net.constant(tensorFromNumbers(dtype, [c], s));
    const sh = net.constant(tensorFromNumbers(dtype, [c], t));
    return net.add({ type: "scale", inputs: [p.input, sc, sh], channelAxis: 1 });
  }
  const view = [c, ...x.shape.slice(2).map(() => 1)];
  const asView = (v: Tensor | string) => reshape(net, castFloat(net, inputTensor(v), dtype), view);
  const centered = binary(net, "sub", p.input, asView(p.mean));
  const denom = unary(net, "rsqrt", binary(net, "add", asView(p.variance), scalar(net, dtype, p.eps)));
  let y = binary(net, "mul", centered, denom);
  if (p.weight) y = binary(net, "mul", y, asView(p.weight));
  if (p.bias) y = binary(net, "add", y, asView(p.bias));
  return y;
}

function castFloat(net: NetworkBuilder, t: string, dtype: DType): string {
  return net.typeOf(t).dtype === dtype ? t : net.add({ type: "cast", inputs: [t], to: dtype });
}

/** Scale and bias for a normalization layer: the model's, or ones and zeros. */
export function affineOrDefault(
  net: NetworkBuilder,
  t: string | null,
  dtype: DType,
  shape: readonly number[],
  value: number,
): string {
  return t ?? fill(net, dtype, shape, value);
}

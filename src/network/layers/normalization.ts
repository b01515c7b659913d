import type { TensorType } from "../../ir/graph.js";
import { requireFloat } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/**
 * Normalize with biased variance, then apply scale and bias (converters pass constant ones/zeros when the
 * model has none, so every backend sees one form).
 * `layer`: statistics over axes [beginAxis, rank); scale/bias have shape input[beginAxis:].
 * `group`: N C … input, statistics per sample over each group of C/numGroups channels; scale/bias are [C].
 * `rms`: as `layer`, but x / sqrt(mean(x²) + ε) (no mean subtracted: RMSNorm).
 */
export type NormalizationLayer = LayerBase<
  "normalization",
  readonly [input: string, scale: string, bias: string]
> & {
  readonly epsilon: number;
} & (
    | { readonly kind: "layer" | "rms"; readonly beginAxis: number }
    | { readonly kind: "group"; readonly numGroups: number }
  );

export function inferNormalization(layer: NormalizationLayer, [x, scale, bias]: InputTypes): TensorType {
  const name = `normalization ${layer.kind}`;
  requireFloat(name, x.dtype);
  let expected: readonly number[];
  if (layer.kind !== "group") {
    if (layer.beginAxis < 0 || layer.beginAxis >= x.shape.length)
      throw new LayerShapeError(name, "beginAxis out of range");
    expected = x.shape.slice(layer.beginAxis);
  } else {
    const c = x.shape[1];
    if (x.shape.length < 2 || !(layer.numGroups >= 1) || c % layer.numGroups !== 0) {
      throw new LayerShapeError(name, `${c} channels do not split into ${layer.numGroups} groups`);
    }
    expected = [c];
  }
  for (const [what, t] of [
    ["scale", scale],
    ["bias", bias],
  ] as const) {
    if (t.shape.join() !== expected.join())
      throw new LayerShapeError(name, `${what} [${t.shape}], expected [${expected}]`);
    if (t.dtype !== x.dtype) throw new LayerShapeError(name, `${what} is ${t.dtype}, input ${x.dtype}`);
  }
  return x;
}

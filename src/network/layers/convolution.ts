import type { TensorType } from "../../ir/graph.js";
import { requireFloat, requireSameDType } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/** The bias is optional: a fused bias is a third input. */
export type ConvInputs =
  | readonly [input: string, weight: string]
  | readonly [input: string, weight: string, bias: string];

/** N-d convolution over an NC… input. Weight [Cout, Cin/groups, k…]; bias [Cout] when present (fused). */
export interface ConvolutionLayer extends LayerBase<"convolution", ConvInputs> {
  readonly stride: readonly number[];
  /** Symmetric zero padding per spatial axis; asymmetric padding is a padding layer in front. */
  readonly padding: readonly number[];
  readonly dilation: readonly number[];
  readonly groups: number;
}

/** Transposed convolution. Weight [Cin, Cout/groups, k…]; bias [Cout] when present. */
export interface DeconvolutionLayer extends LayerBase<"deconvolution", ConvInputs> {
  readonly stride: readonly number[];
  readonly padding: readonly number[];
  readonly dilation: readonly number[];
  readonly outputPadding: readonly number[];
  readonly groups: number;
}

function checkCommon(
  kind: string,
  layer: ConvolutionLayer | DeconvolutionLayer,
  [x, w, b]: InputTypes,
): number {
  requireFloat(kind, x.dtype);
  requireSameDType(kind, x.dtype, w.dtype);
  const sp = w.shape.length - 2;
  if (sp < 1 || x.shape.length !== sp + 2) {
    throw new LayerShapeError(
      kind,
      `input rank ${x.shape.length} does not fit weight rank ${w.shape.length}`,
    );
  }
  for (const [field, v] of [
    ["stride", layer.stride],
    ["padding", layer.padding],
    ["dilation", layer.dilation],
  ] as const) {
    if (v.length !== sp)
      throw new LayerShapeError(kind, `${field} has ${v.length} entries for ${sp} spatial axes`);
  }
  if (
    layer.stride.some((s) => s < 1) ||
    layer.dilation.some((d) => d < 1) ||
    layer.padding.some((p) => p < 0)
  ) {
    throw new LayerShapeError(kind, "stride and dilation must be ≥ 1 and padding ≥ 0");
  }
  if (!Number.isInteger(layer.groups) || layer.groups < 1)
    throw new LayerShapeError(kind, `groups ${layer.groups}`);
  if (b) requireSameDType(kind, x.dtype, b.dtype);
  return sp;
}

export function inferConvolution(layer: ConvolutionLayer, inputs: InputTypes): TensorType {
  const [x, w, b] = inputs;
  const sp = checkCommon("convolution", layer, inputs);
  const g = layer.groups;
  const cout = w.shape[0];
  if (x.shape[1] !== w.shape[1] * g || cout % g !== 0) {
    throw new LayerShapeError(
      "convolution",
      `input channels ${x.shape[1]} vs weight [${w.shape}] with groups ${g}`,
    );
  }
  if (b && (b.shape.length !== 1 || b.shape[0] !== cout)) {
    throw new LayerShapeError("convolution", `bias [${b.shape}] for ${cout} output channels`);
  }
  const out = [x.shape[0], cout];
  for (let i = 0; i < sp; i++) {
    const k = layer.dilation[i] * (w.shape[i + 2] - 1) + 1;
    const o = Math.floor((x.shape[i + 2] + 2 * layer.padding[i] - k) / layer.stride[i]) + 1;
    if (o < 1) throw new LayerShapeError("convolution", `kernel larger than padded input on axis ${i + 2}`);
    out.push(o);
  }
  return { dtype: x.dtype, shape: out };
}

export function inferDeconvolution(layer: DeconvolutionLayer, inputs: InputTypes): TensorType {
  const [x, w, b] = inputs;
  const sp = checkCommon("deconvolution", layer, inputs);
  const g = layer.groups;
  if (x.shape[1] !== w.shape[0] || w.shape[0] % g !== 0) {
    throw new LayerShapeError(
      "deconvolution",
      `input channels ${x.shape[1]} vs weight [${w.shape}] with groups ${g}`,
    );
  }
  if (layer.outputPadding.length !== sp) throw new LayerShapeError("deconvolution", "outputPadding rank");
  const cout = w.shape[1] * g;
  if (b && (b.shape.length !== 1 || b.shape[0] !== cout)) {
    throw new LayerShapeError("deconvolution", `bias [${b.shape}] for ${cout} output channels`);
  }
  const out = [x.shape[0], cout];
  for (let i = 0; i < sp; i++) {
    const op = layer.outputPadding[i];
    if (op < 0 || (op >= layer.stride[i] && op >= layer.dilation[i])) {
      throw new LayerShapeError(
        "deconvolution",
        `output padding ${op} must be smaller than stride or dilation`,
      );
    }
    const o =
      (x.shape[i + 2] - 1) * layer.stride[i] -
      2 * layer.padding[i] +
      layer.dilation[i] * (w.shape[i + 2] - 1) +
      op +
      1;
    if (o < 1) throw new LayerShapeError("deconvolution", `non-positive output size on axis ${i + 2}`);
    out.push(o);
  }
  return { dtype: x.dtype, shape: out };
}

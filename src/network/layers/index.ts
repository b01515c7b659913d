import type { TensorType } from "../../ir/graph.js";
import type { ActivationLayer } from "./activation.js";
import { inferActivation } from "./activation.js";
import { type AttentionLayer, inferAttention } from "./attention.js";
import type { InputTypes } from "./base.js";
import { type BroadcastLayer, inferBroadcast } from "./broadcast.js";
import { type CastLayer, inferCast } from "./cast.js";
import { type ConcatenationLayer, inferConcatenation } from "./concatenation.js";
import { type ConstantLayer, inferConstant } from "./constant.js";
import {
  type ConvolutionLayer,
  type DeconvolutionLayer,
  inferConvolution,
  inferDeconvolution,
} from "./convolution.js";
import { type ElementwiseLayer, inferElementwise } from "./elementwise.js";
import { type GatherLayer, inferGather } from "./gather.js";
import { type IdentityLayer, inferIdentity } from "./identity.js";
import { inferMatMul, type MatMulLayer } from "./matmul.js";
import { inferNormalization, type NormalizationLayer } from "./normalization.js";
import { inferPadding, type PaddingLayer } from "./padding.js";
import {
  type AdaptivePoolingLayer,
  inferAdaptivePooling,
  inferPooling,
  type PoolingLayer,
} from "./pooling.js";
import { type DequantizeLayer, inferDequantize, inferQuantize, type QuantizeLayer } from "./quantize.js";
import { inferReduce, type ReduceLayer } from "./reduce.js";
import { inferResize, type ResizeLayer } from "./resize.js";
import { inferScale, type ScaleLayer } from "./scale.js";
import { inferSelect, type SelectLayer } from "./select.js";
import { inferShuffle, type ShuffleLayer } from "./shuffle.js";
import { inferSlice, type SliceLayer } from "./slice.js";
import { inferSoftmax, type SoftmaxLayer } from "./softmax.js";
import { inferUnary, type UnaryLayer } from "./unary.js";

export * from "./activation.js";
export * from "./attention.js";
export * from "./base.js";
export * from "./broadcast.js";
export * from "./cast.js";
export * from "./concatenation.js";
export * from "./constant.js";
export * from "./convolution.js";
export * from "./elementwise.js";
export * from "./gather.js";
export * from "./identity.js";
export * from "./matmul.js";
export * from "./normalization.js";
export * from "./padding.js";
export * from "./pooling.js";
export * from "./quantize.js";
export * from "./reduce.js";
export * from "./resize.js";
export * from "./scale.js";
export * from "./select.js";
export * from "./shuffle.js";
export * from "./slice.js";
export * from "./softmax.js";
export * from "./unary.js";

/** Every layer a converter can emit and a backend must build. */
export type Layer =
  | ConvolutionLayer
  | DeconvolutionLayer
  | MatMulLayer
  | ElementwiseLayer
  | UnaryLayer
  | ActivationLayer
  | ReduceLayer
  | PoolingLayer
  | AdaptivePoolingLayer
  | SoftmaxLayer
  | ShuffleLayer
  | BroadcastLayer
  | ConcatenationLayer
  | SliceLayer
  | GatherLayer
  | NormalizationLayer
  | ScaleLayer
  | ConstantLayer
  | CastLayer
  | PaddingLayer
  | ResizeLayer
  | SelectLayer
  | QuantizeLayer
  | DequantizeLayer
  | IdentityLayer
  | AttentionLayer;

export type LayerType = Layer["type"];
export type LayerOf<T extends LayerType> = Extract<Layer, { type: T }>;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A layer as a converter describes it: the builder assigns its name and output tensor. */
export type LayerSpec = DistributiveOmit<Layer, "name" | "output">;

type ShapeRule<L> = (layer: L, inputs: InputTypes) => TensorType;

/** The shape rule of each layer type; a missing entry is a compile error. */
export const SHAPE_RULES: { readonly [T in LayerType]: ShapeRule<LayerOf<T>> } = {
  convolution: inferConvolution,
  deconvolution: inferDeconvolution,
  matmul: inferMatMul,
  elementwise: inferElementwise,
  unary: inferUnary,
  activation: inferActivation,
  reduce: inferReduce,
  pooling: inferPooling,
  adaptive_pooling: inferAdaptivePooling,
  softmax: inferSoftmax,
  shuffle: inferShuffle,
  broadcast: inferBroadcast,
  concatenation: inferConcatenation,
  slice: inferSlice,
  gather: inferGather,
  normalization: inferNormalization,
  scale: inferScale,
  constant: inferConstant,
  cast: inferCast,
  padding: inferPadding,
  resize: inferResize,
  select: inferSelect,
  quantize: inferQuantize,
  dequantize: inferDequantize,
  identity: inferIdentity,
  attention: inferAttention,
};

export function inferLayer(layer: Layer, inputs: InputTypes): TensorType {
  const rule = SHAPE_RULES[layer.type] as ShapeRule<Layer>;
  return rule(layer, inputs);
}

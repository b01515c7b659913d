/**
 * The converter registry: for each aten overload, ordered candidates that turn a node into network layers.
 * To add a converter, write a `converter(op, { name, supports, convert })` entry in the family file under
 * aten/ (building layers through impl/), list the family table in CONVERTER_TABLES below if it is new, and
 * add property cases in test/converters/cases/. In-place overloads get candidates derived automatically.
 */

import type { Segment } from "../core/segment.js";
import type { Graph } from "../ir/graph.js";
import type { Network } from "../network/network.js";
import { ACTIVATION_CONVERTERS } from "./aten/activation.js";
import { ATTENTION_CONVERTERS } from "./aten/attention.js";
import { CAST_CONVERTERS } from "./aten/cast.js";
import { COMPARE_CONVERTERS } from "./aten/compare.js";
import { COMPOSITE_CONVERTERS } from "./aten/composite.js";
import { CONVOLUTION_CONVERTERS } from "./aten/convolution.js";
import { CREATION_CONVERTERS } from "./aten/creation.js";
import { ELEMENTWISE_CONVERTERS } from "./aten/elementwise.js";
import { INDEXING_CONVERTERS } from "./aten/indexing.js";
import { JOIN_CONVERTERS } from "./aten/join.js";
import { MATMUL_CONVERTERS } from "./aten/matmul.js";
import { MISC_CONVERTERS } from "./aten/misc.js";
import { NORMALIZATION_CONVERTERS } from "./aten/normalization.js";
import { PADDING_CONVERTERS } from "./aten/padding.js";
import { POOLING_CONVERTERS } from "./aten/pooling.js";
import { QUANTIZE_CONVERTERS } from "./aten/quantize.js";
import { QUANTIZED_LAYER_CONVERTERS } from "./aten/quantized-layers.js";
import { REDUCE_CONVERTERS } from "./aten/reduce.js";
import { RESIZE_CONVERTERS } from "./aten/resize.js";
import { SHAPE_CONVERTERS } from "./aten/shape.js";
import { SLICING_CONVERTERS } from "./aten/slicing.js";
import { SOFTMAX_CONVERTERS } from "./aten/softmax.js";
import { UNARY_CONVERTERS } from "./aten/unary.js";
import {
  type ConvertOptions,
  convertNodes,
  convertSegment as convertSegmentWith,
} from "./convert-segment.js";
import { inplaceCandidates } from "./inplace.js";
import { buildRegistry, type ConverterRegistry } from "./registry.js";

export { graphContext } from "./context.js";
export { ConverterError, type ConvertOptions, convertNodes } from "./convert-segment.js";
export { type CoverageRow, describeCoverage, formatCoverage } from "./coverage.js";
export { inplaceCandidates } from "./inplace.js";
export {
  buildRegistry,
  type ConverterRegistry,
  type Refusal,
  type Selection,
  selectConverter,
} from "./registry.js";
export * from "./types.js";

/** Every family's table, in the order ties between equal priorities are broken. */
export const CONVERTER_TABLES = Object.freeze({
  convolution: CONVOLUTION_CONVERTERS,
  matmul: MATMUL_CONVERTERS,
  elementwise: ELEMENTWISE_CONVERTERS,
  unary: UNARY_CONVERTERS,
  activation: ACTIVATION_CONVERTERS,
  compare: COMPARE_CONVERTERS,
  reduce: REDUCE_CONVERTERS,
  softmax: SOFTMAX_CONVERTERS,
  normalization: NORMALIZATION_CONVERTERS,
  pooling: POOLING_CONVERTERS,
  shape: SHAPE_CONVERTERS,
  slicing: SLICING_CONVERTERS,
  join: JOIN_CONVERTERS,
  indexing: INDEXING_CONVERTERS,
  attention: ATTENTION_CONVERTERS,
  creation: CREATION_CONVERTERS,
  cast: CAST_CONVERTERS,
  padding: PADDING_CONVERTERS,
  resize: RESIZE_CONVERTERS,
  misc: MISC_CONVERTERS,
  composite: COMPOSITE_CONVERTERS,
  quantize: QUANTIZE_CONVERTERS,
  quantizedLayers: QUANTIZED_LAYER_CONVERTERS,
});

/** The registry torchc uses unless a caller builds its own (e.g. with extra or fewer candidates). */
export const DEFAULT_REGISTRY: ConverterRegistry = buildRegistry(
  ...Object.values(CONVERTER_TABLES),
  inplaceCandidates(Object.values(CONVERTER_TABLES).flat()),
);

/** The default registry (a function, so callers never depend on module initialisation order). */
export function defaultRegistry(): ConverterRegistry {
  return DEFAULT_REGISTRY;
}

/** The Network for one engine segment of `graph`; converters come from `options.registry` (default: all). */
export function convertSegment(
  graph: Graph,
  segment: Segment,
  options: Partial<ConvertOptions> = {},
): Network {
  return convertSegmentWith(graph, segment, { registry: DEFAULT_REGISTRY, ...options });
}

/** Converts a whole graph into one Network (every node must have a converter): handy for tests and tools. */
export function convertGraph(graph: Graph, options: Partial<ConvertOptions> = {}): Network {
  return convertNodes(graph, graph.nodes, graph.inputs, graph.outputs, {
    registry: DEFAULT_REGISTRY,
    ...options,
  });
}

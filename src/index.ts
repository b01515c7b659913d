// torchc's public API: `import { loadModel, compile } from "torchc"`.
export { loadModel, type LoadedModel, type LoadOptions } from "./frontends/load-model.js";
export { loadPt2 } from "./frontends/pt2/load.js";
export { compile, loadCompiled, CompiledModule, type CompileReport, type BenchmarkResult } from "./runtime/compile.js";
export type { CompileOptions, BackendName, PrecisionName } from "./runtime/options.js";
export type { Backend, SegmentRunner } from "./runtime/segment-runner.js";
export * from "./errors.js";
export * from "./ir/index.js";
export { summarizeGraph, formatSummary, type GraphSummary } from "./ir/summary.js";
export { readNpy, writeNpy, parseNpy, encodeNpy } from "./util/npy.js";
export * from "./passes/index.js";
export { OPS, OP_NAMES, getOp, isOpName, inferNode, evaluateNode, normalizeArgs, withDefaults, type OpName } from "./ops/index.js";
export { interpret } from "./ops/interpret.js";
export type { OpDef, ArgSpec, SchemaType } from "./ops/types.js";
export {
  defaultRegistry,
  buildRegistry,
  selectConverter,
  describeCoverage,
  formatCoverage,
  converter,
  refuse,
  SUPPORTED,
  CONVERTER_TABLES,
  type ConverterRegistry,
  type ConverterCandidate,
  type Support,
} from "./converters/index.js";
export { partitionGraph, formatPartitionReport, type Partition, type PartitionOptions, type PartitionReport } from "./partition/index.js";
export type { Network } from "./network/network.js";
export type { Layer } from "./network/layers/index.js";
export { runNetworkReference } from "./network/reference/index.js";

// torchc's public API: `import { loadModel, compile } from "torchc"`.

export {
  buildRegistry,
  CONVERTER_TABLES,
  type ConverterCandidate,
  type ConverterRegistry,
  converter,
  defaultRegistry,
  describeCoverage,
  formatCoverage,
  refuse,
  SUPPORTED,
  type Support,
  selectConverter,
} from "./converters/index.js";
export * from "./errors.js";
export { type LoadedModel, type LoadOptions, loadModel } from "./frontends/load-model.js";
export { loadPt2 } from "./frontends/pt2/load.js";
export { loadTorchScript } from "./frontends/torchscript/index.js";
export * from "./ir/index.js";
export { formatSummary, type GraphSummary, summarizeGraph } from "./ir/summary.js";
export type { Layer } from "./network/layers/index.js";
export type { Network } from "./network/network.js";
export { runNetworkReference } from "./network/reference/index.js";
export {
  evaluateNode,
  getOp,
  inferNode,
  isOpName,
  normalizeArgs,
  OP_NAMES,
  OPS,
  type OpName,
  withDefaults,
} from "./ops/index.js";
export { interpret } from "./ops/interpret.js";
export type { ArgSpec, OpDef, SchemaType } from "./ops/types.js";
export {
  formatPartitionReport,
  type Partition,
  type PartitionOptions,
  type PartitionReport,
  partitionGraph,
} from "./partition/index.js";
export * from "./passes/index.js";
export type { SensitivityReport } from "./passes/quantize-keep.js";
export type { CalibrationOptions } from "./runtime/calibration.js";
export {
  type BenchmarkResult,
  CompiledModule,
  type CompileReport,
  compile,
  loadCompiled,
} from "./runtime/compile.js";
export type { PoolStats } from "./runtime/context-pool.js";
export { type DeviceTensor, isDeviceTensor } from "./runtime/device-tensor.js";
export {
  type ContextMemory,
  type ExecutionContext,
  formatMemory,
  type ModuleMemory,
  type OutputRequest,
  type RunOptions,
} from "./runtime/execution.js";
export type { BackendName, CompileOptions, PrecisionName } from "./runtime/options.js";
export type { BuildTarget, RebuildPolicy } from "./runtime/package-artifacts.js";
export { describePackage, type PackageDescription } from "./runtime/package-inspect.js";
export {
  buildPool,
  createPool,
  type DeviceLoad,
  ModulePool,
  type PoolMemory,
  type PoolOptions,
  type PoolReplica,
} from "./runtime/pool.js";
export type { RefitReport, RefitSource } from "./runtime/refit.js";
export type { Backend, SegmentRunner } from "./runtime/segment-runner.js";
export { InferenceClient, InferenceError } from "./serve/client.js";
export { type ServeOptions, type Server, serve } from "./serve/lazy.js";
export { encodeNpy, parseNpy, readNpy, writeNpy } from "./util/npy.js";

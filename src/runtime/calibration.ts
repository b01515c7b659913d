// Post-training quantization: measure each quantized layer's input range on calibration data (or read it
// from a cache), then insert quantize/dequantize around the layers (src/passes/quantize-insert.ts).
// Calibration runs the lowered fp32 graph on the CPU reference interpreter (src/ops/interpret.ts), so it
// needs no GPU and gives the same ranges on every machine.
import { TorchcError } from "../errors.js";
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import { nums } from "../ops/data.js";
import { interpret } from "../ops/interpret.js";
import { defaultPipeline, runPipeline } from "../passes/pipeline.js";
import { calibratedValues, insertQuantization, type QuantPrecision } from "../passes/quantize-insert.js";
import {
  CACHE_FORMAT,
  type CalibrationCache,
  graphFingerprint,
  readCalibrationCache,
  writeCalibrationCache,
} from "./calibration-cache.js";
import { type CalibrationData, CalibrationError, calibrationBatches } from "./calibration-data.js";
import {
  AbsHistogram,
  amaxOf,
  CALIBRATION_ALGORITHMS,
  type CalibrationAlgorithm,
} from "./calibration-histogram.js";

export type { QuantPrecision } from "../passes/quantize-insert.js";
export type { CalibrationCache } from "./calibration-cache.js";
export { type CalibrationBatch, type CalibrationData, CalibrationError } from "./calibration-data.js";
export type { CalibrationAlgorithm } from "./calibration-histogram.js";

export interface CalibrationOptions {
  /** Input batches: an (async) iterable, or a folder of .npy files. Not needed when `cache` exists. */
  readonly data?: CalibrationData;
  /** How ranges are chosen: "entropy" (default, TensorRT's KL method), "minmax" or "percentile" (99.99 %). */
  readonly algorithm?: CalibrationAlgorithm;
  /** A JSON file of ranges: read (and checked against the model) if it exists, else written after calibrating. */
  readonly cache?: string;
  /** Stop after this many forward passes (default: all the data). */
  readonly maxBatches?: number;
  /** Called after each calibration forward pass with the number done so far. */
  readonly onProgress?: (batches: number) => void;
}

export interface CalibrationResult {
  /** The graph with quantize/dequantize inserted. */
  readonly graph: Graph;
  readonly cache: CalibrationCache;
  /** Whether the ranges came from an existing cache file (no data was read). */
  readonly fromCache: boolean;
}

/** Measures ranges of `values` over the data with the reference interpreter. */
async function measure(
  graph: Graph,
  values: readonly string[],
  options: CalibrationOptions,
): Promise<{ hist: Map<string, AbsHistogram>; batches: number }> {
  const hist = new Map(values.map((v) => [v, new AbsHistogram()]));
  const inputIndex = new Map(graph.inputs.map((n, i) => [n, i]));
  let batches = 0;
  for await (const inputs of calibrationBatches(options.data as CalibrationData, graph)) {
    for (const [v, h] of hist) {
      const k = inputIndex.get(v);
      if (k !== undefined) h.add(nums(inputs[k]));
    }
    interpret(graph, inputs, {
      onNode: (node, outs: readonly Tensor[]) => {
        node.outputs.forEach((o, i) => {
          hist.get(o)?.add(nums(outs[i]));
        });
      },
    });
    batches++;
    options.onProgress?.(batches);
    if (options.maxBatches !== undefined && batches >= options.maxBatches) break;
  }
  return { hist, batches };
}

/** Calibrates a lowered fp32 graph (or reads its cache) and returns it quantized for `precision`. */
export async function calibrate(
  graph: Graph,
  precision: QuantPrecision,
  options: CalibrationOptions,
): Promise<CalibrationResult> {
  const algorithm = options.algorithm ?? "entropy";
  if (!CALIBRATION_ALGORITHMS.includes(algorithm))
    throw new CalibrationError(
      `unknown algorithm '${algorithm}' (${CALIBRATION_ALGORITHMS.join(", ")})`,
      "calibration.algorithm",
    );
  const values = calibratedValues(graph);
  const cached = options.cache ? readCalibrationCache(options.cache, graph, values) : undefined;
  if (cached) {
    const amax = new Map(values.map((v) => [v, cached.tensors[v].amax]));
    return { graph: insertQuantization(graph, amax, precision), cache: cached, fromCache: true };
  }
  if (options.data === undefined)
    throw new CalibrationError(
      options.cache
        ? `the cache '${options.cache}' does not exist and no calibration data was given`
        : `${precision} needs calibration data (calibration.data) or a cache (calibration.cache)`,
      "calibration.no-data",
    );
  const { hist, batches } = await measure(graph, values, options);
  const tensors: Record<string, { amax: number; int8Scale: number }> = {};
  const amax = new Map<string, number>();
  for (const v of values) {
    const m = amaxOf(hist.get(v) as AbsHistogram, algorithm);
    amax.set(v, m);
    tensors[v] = { amax: m, int8Scale: m / 127 };
  }
  const cache: CalibrationCache = {
    format: CACHE_FORMAT,
    fingerprint: graphFingerprint(graph),
    algorithm,
    batches,
    tensors,
  };
  if (options.cache) writeCalibrationCache(options.cache, cache);
  return { graph: insertQuantization(graph, amax, precision), cache, fromCache: false };
}

/** The integer/fp8 precision compile() was asked for, if any ("int8" wins over "fp8"). */
export function quantPrecisionOf(names: readonly string[] | undefined): QuantPrecision | undefined {
  if (!names) return undefined;
  if (names.includes("int8")) return "int8";
  if (names.includes("fp8") || names.includes("float8_e4m3fn")) return "fp8";
  return undefined;
}

/**
 * compile()'s first step for int8/fp8: lower the model in fp32 with the default passes, calibrate, and hand
 * back the quantized graph (which compile() then lowers again for the float precisions asked for).
 */
export async function quantizeForCompile(
  graph: Graph,
  precision: QuantPrecision,
  options: CalibrationOptions | undefined,
): Promise<CalibrationResult> {
  if (!options)
    throw new TorchcError(
      `enabledPrecisions has ${precision}: pass calibration: { data, algorithm, cache } (a cache alone is enough once written)`,
      "calibration.no-data",
    );
  const { graph: lowered } = runPipeline(graph, defaultPipeline({}));
  return calibrate(lowered, precision, options);
}

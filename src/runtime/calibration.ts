// Post-training quantization: measure each quantized layer's input range on calibration data (or read it
// from a cache), then insert quantize/dequantize around the layers (src/passes/quantize-insert.ts).
// Calibration runs the lowered fp32 graph on the CPU reference interpreter (src/ops/interpret.ts) by default;
// compile() with a GPU backend runs it on an fp32 engine of that backend instead (the observed activations
// become extra engine outputs), which is much faster on large models. TF32 stays off there.
import { TorchcError } from "../errors.js";
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import { nums } from "../ops/data.js";
import { interpret } from "../ops/interpret.js";
import type { Int8SpeedReport } from "../passes/int8-speed-report.js";
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
import {
  cachedScores,
  checkSensitivityOptions,
  DEFAULT_SENSITIVITY_BATCHES,
  decideFromScores,
  firstBatches,
  measureAndDecide,
  type SensitivityDecision,
  type SensitivityOptions,
  type SensitivityReport,
} from "./calibration-sensitivity.js";
import { decideBySpeed, type Int8SpeedProbe, int8TimedChoiceEnabled } from "./calibration-speed.js";

export type { Int8SpeedReport } from "../passes/int8-speed-report.js";
export type { QuantPrecision } from "../passes/quantize-insert.js";
export type { CalibrationCache } from "./calibration-cache.js";
export { type CalibrationBatch, type CalibrationData, CalibrationError } from "./calibration-data.js";
export type { CalibrationAlgorithm } from "./calibration-histogram.js";
export type { SensitivityMetric, SensitivityOptions, SensitivityReport } from "./calibration-sensitivity.js";
export type { Int8ConvProblem, Int8ConvTiming, Int8SpeedProbe } from "./calibration-speed.js";

export interface CalibrationOptions {
  /** Input batches: an (async) iterable, or a folder of .npy files. Not needed when `cache` exists. */
  readonly data?: CalibrationData;
  /**
   * How ranges are chosen: "percentile" (default: the 99.99th percentile of |x|), "entropy" (TensorRT's KL
   * method) or "minmax". Entropy is not the default: on the MNIST CNN (docs/quantization.md) it clips a post-ReLU
   * activation at ~15 % of its range and loses 4–6 points of top-1, where percentile loses 0.1.
   */
  readonly algorithm?: CalibrationAlgorithm;
  /** A JSON file of ranges: read (and checked against the model) if it exists, else written after calibrating. */
  readonly cache?: string;
  /** Stop after this many forward passes (default: all the data). */
  readonly maxBatches?: number;
  /** Called after each calibration forward pass with the number done so far. */
  readonly onProgress?: (batches: number) => void;
  /**
   * Mixed precision by sensitivity: the layers whose quantization alone moves the output most stay in the float
   * precision (runtime/calibration-sensitivity.ts; docs/quantization.md).
   */
  readonly sensitivity?: SensitivityOptions;
  /** Called with the sensitivity decision (every layer's score, which stayed float and why) when `sensitivity` is set. */
  readonly onSensitivity?: (report: SensitivityReport) => void;
  /**
   * Called with the speed choice (every quantizable convolution's int8 and float times, which stayed float) when
   * the backend timed one (runtime/calibration-speed.ts: the cuda backend with TORCHC_QUANT_KERNELS=1).
   */
  readonly onInt8Choice?: (report: Int8SpeedReport) => void;
}

export interface CalibrationResult {
  /** The graph with quantize/dequantize inserted. */
  readonly graph: Graph;
  readonly cache: CalibrationCache;
  /** Whether the ranges came from an existing cache file (no data was read for them). */
  readonly fromCache: boolean;
  /** The sensitivity decision, when `sensitivity` was set. */
  readonly sensitivity?: SensitivityReport;
  /** The speed choice, when a probe timed int8 against float (convolutions kept float for speed). */
  readonly speed?: Int8SpeedReport;
}

/** Something that runs a graph: compile()'s fp32 engine, when calibration runs on the GPU. */
export interface CalibrationRunner {
  run(inputs: readonly Tensor[]): Promise<Tensor[]>;
  dispose(): Promise<void>;
}

/** Builds a runner for a graph (compile() passes one that builds an fp32 engine on the chosen backend). */
export type CalibrationEngine = (graph: Graph) => Promise<CalibrationRunner>;

/** The graph with every observed activation made a graph output too, so an engine hands them back. */
function observing(graph: Graph, values: readonly string[]): { graph: Graph; extra: string[] } {
  const extra = values.filter((v) => !graph.inputs.includes(v) && !graph.outputs.includes(v));
  return { graph: { ...graph, outputs: [...graph.outputs, ...extra] }, extra };
}

/**
 * Measures ranges of `values` over the data: on the reference interpreter, or on `engine` (a build of the
 * graph with the observed activations as extra outputs). The first `hold` batches are handed back (for the
 * sensitivity scores).
 */
async function measure(
  graph: Graph,
  values: readonly string[],
  options: CalibrationOptions,
  engine: CalibrationEngine | undefined,
  hold: number,
): Promise<{ hist: Map<string, AbsHistogram>; batches: number; held: Tensor[][] }> {
  const held: Tensor[][] = [];
  const hist = new Map(values.map((v) => [v, new AbsHistogram()]));
  const inputIndex = new Map(graph.inputs.map((n, i) => [n, i]));
  const observed = engine ? observing(graph, values) : undefined;
  const runner = observed && engine ? await engine(observed.graph) : undefined;
  let batches = 0;
  try {
    for await (const inputs of calibrationBatches(options.data as CalibrationData, graph)) {
      if (held.length < hold) held.push(inputs);
      for (const [v, h] of hist) {
        const k = inputIndex.get(v);
        if (k !== undefined) h.add(nums(inputs[k]));
      }
      if (runner && observed) {
        const outs = await runner.run(inputs);
        observed.graph.outputs.forEach((o, i) => {
          hist.get(o)?.add(nums(outs[i]));
        });
      } else
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
  } finally {
    await runner?.dispose();
  }
  return { hist, batches, held };
}

/**
 * The quantized graph, reporting the decisions: the sensitivity decision's kept sites, and with a speed probe
 * (int8 only) the convolutions that do not run faster in int8, are left float. Sites the sensitivity decision kept
 * are not timed. The speed choice is not written to the calibration cache: times belong to the GPU they were
 * measured on, so a compile from the cache times again.
 */
async function finish(
  graph: Graph,
  amax: ReadonlyMap<string, number>,
  precision: QuantPrecision,
  options: CalibrationOptions,
  result: { cache: CalibrationCache; fromCache: boolean; decision?: SensitivityDecision },
  probe: Int8SpeedProbe | undefined,
): Promise<CalibrationResult> {
  const { cache, fromCache, decision } = result;
  if (decision) options.onSensitivity?.(decision.report);
  const timed = probe && precision === "int8" && int8TimedChoiceEnabled();
  const speed = timed ? await decideBySpeed(graph, probe, decision?.keep) : undefined;
  if (speed) options.onInt8Choice?.(speed);
  const keep = new Set([...(decision?.keep ?? []), ...(speed?.kept ?? [])]);
  return {
    graph: insertQuantization(graph, amax, precision, keep),
    cache,
    fromCache,
    ...(decision ? { sensitivity: decision.report } : {}),
    ...(speed ? { speed } : {}),
  };
}

/** The ranges from the cache; sensitivity scores from it too, or measured on the data and added to it. */
async function fromCache(
  graph: Graph,
  precision: QuantPrecision,
  options: CalibrationOptions,
  cached: CalibrationCache,
  values: readonly string[],
  probe: Int8SpeedProbe | undefined,
): Promise<CalibrationResult> {
  const path = options.cache as string;
  const amax = new Map(values.map((v) => [v, cached.tensors[v].amax]));
  const sens = options.sensitivity;
  if (!sens) return finish(graph, amax, precision, options, { cache: cached, fromCache: true }, probe);
  const metric = sens.metric ?? "cosine";
  const scores = cachedScores(cached.sensitivity, graph, { precision, metric }, path);
  if (scores && cached.sensitivity) {
    const how = { batches: cached.sensitivity.batches, fromCache: true };
    const decision = decideFromScores(graph, precision, sens, scores, how);
    return finish(graph, amax, precision, options, { cache: cached, fromCache: true, decision }, probe);
  }
  if (options.data === undefined)
    throw new CalibrationError(
      `the cache '${path}' has no ${precision} ${metric} sensitivity scores${cached.sensitivity ? ` (it has ${cached.sensitivity.precision} ${cached.sensitivity.metric} ones)` : ""}; pass the calibration data once to measure them (they are then added to the cache)`,
      "calibration.no-sensitivity",
    );
  const held = await firstBatches(options.data, graph, sens.batches ?? DEFAULT_SENSITIVITY_BATCHES);
  const decision = measureAndDecide(graph, amax, precision, sens, held);
  const cache = { ...cached, sensitivity: decision.record };
  writeCalibrationCache(path, cache);
  return finish(graph, amax, precision, options, { cache, fromCache: true, decision }, probe);
}

/**
 * Calibrates a lowered fp32 graph (or reads its cache) and returns it quantized for `precision`. With `probe`
 * (int8), convolutions that do not time faster in int8 stay float (runtime/calibration-speed.ts).
 */
export async function calibrate(
  graph: Graph,
  precision: QuantPrecision,
  options: CalibrationOptions,
  engine?: CalibrationEngine,
  probe?: Int8SpeedProbe,
): Promise<CalibrationResult> {
  const algorithm = options.algorithm ?? "percentile";
  if (!CALIBRATION_ALGORITHMS.includes(algorithm))
    throw new CalibrationError(
      `unknown algorithm '${algorithm}' (${CALIBRATION_ALGORITHMS.join(", ")})`,
      "calibration.algorithm",
    );
  const sens = options.sensitivity;
  checkSensitivityOptions(sens, true);
  const values = calibratedValues(graph);
  const cached = options.cache ? readCalibrationCache(options.cache, graph, values) : undefined;
  if (cached) return fromCache(graph, precision, options, cached, values, probe);
  if (options.data === undefined)
    throw new CalibrationError(
      options.cache
        ? `the cache '${options.cache}' does not exist and no calibration data was given`
        : `${precision} needs calibration data (calibration.data) or a cache (calibration.cache)`,
      "calibration.no-data",
    );
  const hold = sens ? (sens.batches ?? DEFAULT_SENSITIVITY_BATCHES) : 0;
  const { hist, batches, held } = await measure(graph, values, options, engine, hold);
  const tensors: Record<string, { amax: number; int8Scale: number }> = {};
  const amax = new Map<string, number>();
  for (const v of values) {
    const m = amaxOf(hist.get(v) as AbsHistogram, algorithm);
    amax.set(v, m);
    tensors[v] = { amax: m, int8Scale: m / 127 };
  }
  const decision = sens ? measureAndDecide(graph, amax, precision, sens, held) : undefined;
  const cache: CalibrationCache = {
    format: CACHE_FORMAT,
    fingerprint: graphFingerprint(graph),
    algorithm,
    batches,
    tensors,
    ...(decision ? { sensitivity: decision.record } : {}),
  };
  if (options.cache) writeCalibrationCache(options.cache, cache);
  return finish(graph, amax, precision, options, { cache, fromCache: false, decision }, probe);
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
 * back the quantized graph (which compile() then lowers again for the float precisions asked for). A graph
 * with nothing left to quantize (already quantized: PT2E models, saved int8 packages) comes back as it is.
 * `probe`: the backend's int8-against-float timing (calibration-speed.ts), when it has one.
 */
export async function quantizeForCompile(
  graph: Graph,
  precision: QuantPrecision,
  options: CalibrationOptions | undefined,
  engine?: CalibrationEngine,
  probe?: Int8SpeedProbe,
): Promise<Graph> {
  const { graph: lowered } = runPipeline(graph, defaultPipeline({}));
  if (calibratedValues(lowered).length === 0) return graph;
  if (!options)
    throw new TorchcError(
      `enabledPrecisions has ${precision}: pass calibration: { data, algorithm, cache } (a cache alone is enough once written)`,
      "calibration.no-data",
    );
  return (await calibrate(lowered, precision, options, engine, probe)).graph;
}

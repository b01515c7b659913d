// Mixed precision by sensitivity (issue 14): calibration.sensitivity keeps the quantization sites that hurt the
// output most in float. Scores come from the calibration batches (at most `batches` of them, default 8) on the
// CPU reference interpreter, whatever the backend, and are recorded in the calibration cache; a compile from a
// cache that has them makes the same decision without data. A cache without them (or with another metric's) is
// measured again when data is given (and the cache file is rewritten with the scores), else it is an error.
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import { type QuantPrecision, quantizationSites } from "../passes/quantize-insert.js";
import { decideKept, type SensitivityReport } from "../passes/quantize-keep.js";
import {
  measureSensitivity,
  run,
  SENSITIVITY_METRICS,
  type SensitivityInput,
  type SensitivityMetric,
  wholeModelDistance,
} from "../passes/quantize-sensitivity.js";
import { reportProgress } from "../util/progress.js";
import type { CachedSensitivity } from "./calibration-cache.js";
import { type CalibrationData, CalibrationError, calibrationBatches } from "./calibration-data.js";

export type { SensitivityReport } from "../passes/quantize-keep.js";
export type { SensitivityMetric } from "../passes/quantize-sensitivity.js";

export interface SensitivityOptions {
  /** How many of the most sensitive layers stay in float, or "auto": the fewest that bring the estimate to `target`. */
  readonly keep: number | "auto";
  /** "cosine" (default): 1 − cos of the outputs against float32; "relative-max": max|err|/max|ref|. */
  readonly metric?: SensitivityMetric;
  /** keep "auto": the largest sum of the quantized layers' scores (default 1e-3 cosine, 2e-2 relative-max). */
  readonly target?: number;
  /** Calibration batches the scores are measured on (default 8, at most 64); each costs a CPU pass per layer. */
  readonly batches?: number;
}

export const DEFAULT_SENSITIVITY_BATCHES = 8;
export const MAX_SENSITIVITY_BATCHES = 64;

function invalid(detail: string): never {
  throw new CalibrationError(`sensitivity: ${detail}`, "options.invalid");
}

/** calibration.sensitivity's shape and ranges; `quantized`: int8 or fp8 is among the enabled precisions. */
export function checkSensitivityOptions(s: unknown, quantized: boolean): void {
  if (s === undefined) return;
  if (typeof s !== "object" || s === null)
    invalid(`expected { keep: number | "auto", metric?, target?, batches? }, got ${String(s)}`);
  const o = s as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!["keep", "metric", "target", "batches"].includes(k))
      invalid(`unknown field '${k}' (keep, metric, target, batches)`);
  const keep = o.keep;
  if (keep !== "auto" && !(typeof keep === "number" && Number.isInteger(keep) && keep >= 0))
    invalid(`keep must be a whole number of layers or "auto", got ${JSON.stringify(keep)}`);
  if (o.metric !== undefined && !SENSITIVITY_METRICS.includes(o.metric as SensitivityMetric))
    invalid(`metric must be ${SENSITIVITY_METRICS.join(" or ")}, got ${JSON.stringify(o.metric)}`);
  const t = o.target;
  if (t !== undefined && !(typeof t === "number" && t > 0 && Number.isFinite(t)))
    invalid(`target must be a positive number, got ${JSON.stringify(t)}`);
  if (t !== undefined && keep !== "auto") invalid(`target applies to keep "auto" only (keep is ${keep})`);
  const b = o.batches;
  if (
    b !== undefined &&
    !(typeof b === "number" && Number.isInteger(b) && b >= 1 && b <= MAX_SENSITIVITY_BATCHES)
  )
    invalid(`batches must be an integer from 1 to ${MAX_SENSITIVITY_BATCHES}, got ${JSON.stringify(b)}`);
  if (!quantized) invalid('needs int8 or fp8 in enabledPrecisions (e.g. ["int8", "fp16"])');
}

/** The cache's scores for these sites, precision and metric; undefined when it has none or other ones. */
export function cachedScores(
  cached: CachedSensitivity | undefined,
  graph: Graph,
  kind: { readonly precision: QuantPrecision; readonly metric: SensitivityMetric },
  path: string,
): Map<string, number> | undefined {
  if (cached === undefined || cached.metric !== kind.metric || cached.precision !== kind.precision)
    return undefined;
  if (!(Number.isInteger(cached.batches) && cached.batches > 0))
    throw new CalibrationError(
      `the cache '${path}' has no valid batch count for its sensitivity scores`,
      "calibration.cache-invalid",
    );
  const scores = new Map<string, number>();
  for (const { node } of quantizationSites(graph)) {
    const v = cached.scores?.[node];
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0)
      throw new CalibrationError(
        `the cache '${path}' has no valid sensitivity score for layer '${node}'`,
        "calibration.cache-invalid",
      );
    scores.set(node, v);
  }
  return scores;
}

/** The first `n` calibration batches (when the ranges came from a cache and the scores must be measured). */
export async function firstBatches(data: CalibrationData, graph: Graph, n: number): Promise<Tensor[][]> {
  const out: Tensor[][] = [];
  for await (const b of calibrationBatches(data, graph)) {
    out.push(b);
    if (out.length >= n) break;
  }
  return out;
}

export interface SensitivityDecision {
  readonly keep: ReadonlySet<string>;
  readonly report: SensitivityReport;
  /** What the cache records. */
  readonly record: CachedSensitivity;
}

/** The decision from known scores (read from the cache, or just measured on `batches` batches). */
export function decideFromScores(
  graph: Graph,
  precision: QuantPrecision,
  options: SensitivityOptions,
  scores: ReadonlyMap<string, number>,
  how: { readonly batches: number; readonly fromCache: boolean },
): SensitivityDecision {
  const metric = options.metric ?? "cosine";
  const report = decideKept(graph, scores, {
    precision,
    metric,
    keep: options.keep,
    ...how,
    ...(options.target !== undefined ? { target: options.target } : {}),
  });
  return {
    keep: new Set(report.kept),
    report,
    record: { precision, metric, batches: how.batches, scores: Object.fromEntries(scores) },
  };
}

/**
 * Scores every site on the batches and decides which stay float; the whole model's distance is measured too,
 * all quantized and with the decision. Costs, over the batches, a float32 pass for the reference, the tail of
 * the graph from each site on, and two whole passes (CPU interpreter).
 */
export function measureAndDecide(
  graph: Graph,
  amax: ReadonlyMap<string, number>,
  precision: QuantPrecision,
  options: SensitivityOptions,
  batches: readonly (readonly Tensor[])[],
): SensitivityDecision {
  const metric = options.metric ?? "cosine";
  const input: SensitivityInput = { graph, amax, precision, batches, metric, reference: run(graph, batches) };
  const scores = measureSensitivity(input, (done, total) =>
    reportProgress({ phase: "quantization sensitivity", done, total }),
  );
  const d = decideFromScores(graph, precision, options, scores, {
    batches: batches.length,
    fromCache: false,
  });
  const allQuantized = wholeModelDistance(input, new Set());
  const withKept = d.keep.size === 0 ? allQuantized : wholeModelDistance(input, d.keep);
  return { ...d, report: { ...d.report, measured: { allQuantized, withKept } } };
}

// Which quantization sites stay float, from their sensitivity scores (quantize-sensitivity.ts), and the
// report lines that say which were kept and why. Pure functions of the scores, so a compile from a calibration
// cache that recorded them makes the same decision without data.
import { formatLocation, type Graph } from "../ir/graph.js";
import type { QuantPrecision } from "./quantize-insert.js";
import { quantizationSites } from "./quantize-insert.js";
import type { SensitivityMetric } from "./quantize-sensitivity.js";

/** keep: "auto" keeps the most sensitive layers until the rest's estimated distance is at most this. */
export const DEFAULT_SENSITIVITY_TARGET: Readonly<Record<SensitivityMetric, number>> = {
  cosine: 1e-3,
  "relative-max": 2e-2,
};

export interface LayerSensitivity {
  readonly node: string;
  readonly op: string;
  /** "node 'x' (aten.op) in module '…' at file.py:12" */
  readonly where: string;
  readonly score: number;
  /** 1 = most sensitive. */
  readonly rank: number;
  readonly kept: boolean;
}

export interface SensitivityReport {
  readonly precision: QuantPrecision;
  readonly metric: SensitivityMetric;
  /** Calibration batches the scores were measured on. */
  readonly batches: number;
  readonly keep: number | "auto";
  /** keep "auto": the estimate it aimed for. */
  readonly target?: number;
  /** Every site, most sensitive first. */
  readonly layers: readonly LayerSensitivity[];
  /** Node names of the sites left unquantized. */
  readonly kept: readonly string[];
  /** Sum of the quantized sites' scores: a first-order estimate of the whole model's distance. */
  readonly estimate: number;
  /** The whole model's distance on the batches, when they were at hand (not for a decision from the cache). */
  readonly measured?: { readonly allQuantized: number; readonly withKept: number };
  /** Whether the scores came from the calibration cache. */
  readonly fromCache: boolean;
}

/** Every site with its score, most sensitive first (graph order breaks ties). */
export function rankSites(
  graph: Graph,
  scores: ReadonlyMap<string, number>,
): Omit<LayerSensitivity, "kept">[] {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const sites = quantizationSites(graph).map((s, order) => ({ s, order, score: scores.get(s.node) ?? 0 }));
  sites.sort((a, b) => b.score - a.score || a.order - b.order);
  return sites.map(({ s, score }, i) => ({
    node: s.node,
    op: s.op,
    where: formatLocation(byName.get(s.node)!),
    score,
    rank: i + 1,
  }));
}

/** How many of the ranked sites to keep: `keep` of them, or for "auto" the fewest that meet the target. */
export function keptCount(scores: readonly number[], keep: number | "auto", target: number): number {
  if (keep !== "auto") return Math.min(keep, scores.length);
  let rest = scores.reduce((a, s) => a + s, 0);
  let k = 0;
  while (k < scores.length && rest > target) rest -= scores[k++];
  return k;
}

/** The decision as a report (without the measured whole-model distances). */
export function decideKept(
  graph: Graph,
  scores: ReadonlyMap<string, number>,
  how: Pick<SensitivityReport, "precision" | "metric" | "batches" | "keep" | "fromCache"> & {
    readonly target?: number;
  },
): SensitivityReport {
  const ranked = rankSites(graph, scores);
  const target = how.keep === "auto" ? (how.target ?? DEFAULT_SENSITIVITY_TARGET[how.metric]) : undefined;
  const k = keptCount(
    ranked.map((r) => r.score),
    how.keep,
    target ?? 0,
  );
  const layers = ranked.map((r, i) => ({ ...r, kept: i < k }));
  const estimate = layers.filter((l) => !l.kept).reduce((a, l) => a + l.score, 0);
  const { target: _t, ...rest } = how;
  return {
    ...rest,
    ...(target !== undefined ? { target } : {}),
    layers,
    kept: layers.filter((l) => l.kept).map((l) => l.node),
    estimate,
  };
}

/** The float precision kept layers run in, as compile()'s enabledPrecisions name it. */
export function keptPrecisionName(enabled: readonly string[] | undefined): string {
  const has = (...names: string[]) => names.some((n) => enabled?.includes(n));
  if (has("fp16", "half", "float16")) return "fp16";
  if (has("bf16", "bfloat16")) return "bf16";
  return "fp32";
}

const METRIC_TEXT: Readonly<Record<SensitivityMetric, string>> = {
  cosine: "1 − cosine similarity",
  "relative-max": "max|err|/max|ref|",
};

const e = (x: number) => x.toExponential(1);

/** The report's lines; `floatName` is the precision the kept layers run in ("fp16", "fp32", …). */
export function formatSensitivity(r: SensitivityReport, floatName = "float"): string {
  const n = r.layers.length;
  const how =
    r.keep === "auto" ? `keep auto: the rest's estimate at most ${e(r.target ?? 0)}` : `keep ${r.keep}`;
  const head = `quantization: ${r.precision} with ${r.kept.length} of ${n} layers kept in ${floatName} by sensitivity (${how}; ${METRIC_TEXT[r.metric]} of the outputs against float32, each layer quantized alone, ${r.batches} calibration batch${r.batches === 1 ? "" : "es"}${r.fromCache ? ", scores from the cache" : ""})`;
  const kept = r.layers
    .filter((l) => l.kept)
    .map((l) => `  ${l.where}: kept in ${floatName}: sensitivity ${e(l.score)}, rank ${l.rank} of ${n}`);
  const next = r.layers
    .filter((l) => !l.kept)
    .slice(0, 3)
    .map((l) => `  ${l.where}: ${r.precision}: sensitivity ${e(l.score)}, rank ${l.rank} of ${n}`);
  const more = n - kept.length - next.length;
  const tail = [
    ...(more > 0 ? [`  … ${more} less sensitive layer${more === 1 ? "" : "s"} in ${r.precision}`] : []),
    `  the quantized layers' scores sum to ${e(r.estimate)} (a first-order estimate of the whole model's)`,
    ...(r.measured
      ? [
          `  measured on those batches in float32: all ${n} quantized ${e(r.measured.allQuantized)}${r.kept.length ? `, with the kept layers unquantized ${e(r.measured.withKept)}` : ""}`,
        ]
      : []),
  ];
  return [head, ...kept, ...next, ...tail].join("\n");
}

// The calibration cache: one JSON file of per-tensor clipping ranges (amax) and the int8 scales they give,
// keyed to the graph it was measured on by a fingerprint of the lowered graph (ops, arguments, types and
// weight bytes). A cache from another model, or from this model with other weights, is refused. It also
// records each layer's sensitivity score when mixed precision by sensitivity asked for them.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { Graph } from "../ir/graph.js";
import { tensorBytes } from "../ir/tensor.js";
import type { QuantPrecision } from "../passes/quantize-insert.js";
import type { SensitivityMetric } from "../passes/quantize-sensitivity.js";
import { CalibrationError } from "./calibration-data.js";
import type { CalibrationAlgorithm } from "./calibration-histogram.js";

export const CACHE_FORMAT = "torchc-calibration/1";

export interface CalibrationCache {
  readonly format: typeof CACHE_FORMAT;
  readonly fingerprint: string;
  readonly algorithm: CalibrationAlgorithm;
  /** Batches the ranges were measured on. */
  readonly batches: number;
  /** Per calibrated tensor: its clipping range and the symmetric int8 scale amax/127 (fp8 uses amax/448). */
  readonly tensors: Readonly<Record<string, { readonly amax: number; readonly int8Scale: number }>>;
  /**
   * Per quantization site (node name): its sensitivity score, when calibrated with `sensitivity`
   * (runtime/calibration-sensitivity.ts). Checked only when a compile asks for sensitivity.
   */
  readonly sensitivity?: CachedSensitivity;
}

export interface CachedSensitivity {
  /** The precision each layer was quantized to when scored: int8 scores do not stand for fp8. */
  readonly precision: QuantPrecision;
  readonly metric: SensitivityMetric;
  /** Batches the scores were measured on. */
  readonly batches: number;
  readonly scores: Readonly<Record<string, number>>;
}

/** A hex digest of everything the calibrated ranges depend on. */
export function graphFingerprint(graph: Graph): string {
  const h = createHash("sha256");
  for (const n of graph.inputs) h.update(`in ${n} ${JSON.stringify(graph.values[n])}\n`);
  for (const node of graph.nodes)
    h.update(
      `${node.op} ${JSON.stringify(node.args)} -> ${node.outputs.map((o) => `${o}:${JSON.stringify(graph.values[o])}`).join(",")}\n`,
    );
  for (const name of Object.keys(graph.weights).sort()) {
    const t = graph.weights[name].tensor;
    h.update(`w ${name} ${t.dtype} ${t.shape.join("x")}\n`);
    h.update(tensorBytes(t));
  }
  h.update(`out ${graph.outputs.join(",")}`);
  return h.digest("hex");
}

export function writeCalibrationCache(path: string, cache: CalibrationCache): void {
  try {
    writeFileSync(path, `${JSON.stringify(cache, null, 2)}\n`);
  } catch (e) {
    throw new CalibrationError(
      `cannot write the cache '${path}' (${(e as Error).message})`,
      "calibration.cache-write",
    );
  }
}

/** The cache at `path` if it exists, checked against the graph; undefined when there is no file. */
export function readCalibrationCache(
  path: string,
  graph: Graph,
  values: readonly string[],
): CalibrationCache | undefined {
  if (!existsSync(path)) return undefined;
  let c: CalibrationCache;
  try {
    c = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new CalibrationError(
      `the cache '${path}' is not JSON (${(e as Error).message})`,
      "calibration.cache-invalid",
    );
  }
  if (c?.format !== CACHE_FORMAT || typeof c.tensors !== "object" || c.tensors === null)
    throw new CalibrationError(
      `'${path}' is not a torchc calibration cache (format ${CACHE_FORMAT})`,
      "calibration.cache-invalid",
    );
  const fp = graphFingerprint(graph);
  if (c.fingerprint !== fp)
    throw new CalibrationError(
      `the cache '${path}' was made for another model (fingerprint ${String(c.fingerprint).slice(0, 12)}…, this model's is ${fp.slice(0, 12)}…); calibrate again with data and a new cache path`,
      "calibration.cache-mismatch",
    );
  for (const v of values) {
    const e = c.tensors[v];
    if (!e || typeof e.amax !== "number" || !(e.amax >= 0) || !Number.isFinite(e.amax))
      throw new CalibrationError(
        `the cache '${path}' has no valid range for '${v}'`,
        "calibration.cache-invalid",
      );
  }
  return c;
}

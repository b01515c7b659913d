import { InputError } from "../errors.js";
import type {
  CalibrationAlgorithm,
  CalibrationOptions,
  SensitivityMetric,
  SensitivityOptions,
  SensitivityReport,
} from "../runtime/calibration.js";

const ALGORITHMS: readonly string[] = ["entropy", "minmax", "percentile"];
const METRICS: readonly string[] = ["cosine", "relative-max"];

/** The sensitivity decision of each compile the command started, for its report (calibration.onSensitivity). */
const decisions = new WeakMap<CalibrationOptions, SensitivityReport>();

/** The decision a compile with these calibration options made, if it measured or read one. */
export function sensitivityOf(c: CalibrationOptions | undefined): SensitivityReport | undefined {
  return c ? decisions.get(c) : undefined;
}

/** --keep-sensitive N|auto, --sensitivity-metric, --sensitivity-target, --sensitivity-batches. */
function sensitivityFrom(values: Record<string, unknown>): SensitivityOptions | undefined {
  const keep = values["keep-sensitive"] as string | undefined;
  const metric = values["sensitivity-metric"] as string | undefined;
  const target = values["sensitivity-target"] as string | undefined;
  const batches = values["sensitivity-batches"] as string | undefined;
  if (keep === undefined) {
    const other =
      metric !== undefined
        ? "metric"
        : target !== undefined
          ? "target"
          : batches !== undefined
            ? "batches"
            : "";
    if (other) throw new InputError(`--sensitivity-${other} needs --keep-sensitive N|auto`);
    return undefined;
  }
  const n = Number(keep);
  if (keep !== "auto" && !(keep.trim() !== "" && Number.isInteger(n) && n >= 0))
    throw new InputError(`--keep-sensitive ${keep}: expected a whole number of layers or auto`);
  if (metric !== undefined && !METRICS.includes(metric))
    throw new InputError(`--sensitivity-metric ${metric}: expected ${METRICS.join(", ")}`);
  const t = target === undefined ? undefined : Number(target);
  if (t !== undefined && !(t > 0 && Number.isFinite(t)))
    throw new InputError(`--sensitivity-target ${target}: expected a positive number`);
  const b = batches === undefined ? undefined : Number(batches);
  if (b !== undefined && !(Number.isInteger(b) && b >= 1))
    throw new InputError(`--sensitivity-batches ${batches}: expected a positive whole number`);
  return {
    keep: keep === "auto" ? "auto" : n,
    ...(metric !== undefined ? { metric: metric as SensitivityMetric } : {}),
    ...(t !== undefined ? { target: t } : {}),
    ...(b !== undefined ? { batches: b } : {}),
  };
}

/** --calibration-data / -cache / -algorithm and the sensitivity flags as compile()'s calibration option. */
export function calibrationFrom(values: Record<string, unknown>): CalibrationOptions | undefined {
  const data = values["calibration-data"] as string | undefined;
  const cache = values["calibration-cache"] as string | undefined;
  const algorithm = values["calibration-algorithm"] as string | undefined;
  const sensitivity = sensitivityFrom(values);
  if (data === undefined && cache === undefined && algorithm === undefined && sensitivity === undefined)
    return undefined;
  if (algorithm !== undefined && !ALGORITHMS.includes(algorithm))
    throw new InputError(`--calibration-algorithm ${algorithm}: expected ${ALGORITHMS.join(", ")}`);
  const options: CalibrationOptions = {
    ...(data !== undefined ? { data } : {}),
    ...(cache !== undefined ? { cache } : {}),
    ...(algorithm !== undefined ? { algorithm: algorithm as CalibrationAlgorithm } : {}),
    ...(sensitivity !== undefined ? { sensitivity } : {}),
    onProgress: (n) => process.stderr.write(`\rcalibrating: ${n} batch${n === 1 ? "" : "es"}`),
    onSensitivity: (r) => decisions.set(options, r),
  };
  return options;
}

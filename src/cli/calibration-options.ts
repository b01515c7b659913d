import { InputError } from "../errors.js";
import type { CalibrationAlgorithm, CalibrationOptions } from "../runtime/calibration.js";

const ALGORITHMS: readonly string[] = ["entropy", "minmax", "percentile"];

/** --calibration-data / -cache / -algorithm as compile()'s calibration option, with progress on stderr. */
export function calibrationFrom(values: Record<string, unknown>): CalibrationOptions | undefined {
  const data = values["calibration-data"] as string | undefined;
  const cache = values["calibration-cache"] as string | undefined;
  const algorithm = values["calibration-algorithm"] as string | undefined;
  if (data === undefined && cache === undefined && algorithm === undefined) return undefined;
  if (algorithm !== undefined && !ALGORITHMS.includes(algorithm))
    throw new InputError(`--calibration-algorithm ${algorithm}: expected ${ALGORITHMS.join(", ")}`);
  return {
    ...(data !== undefined ? { data } : {}),
    ...(cache !== undefined ? { cache } : {}),
    ...(algorithm !== undefined ? { algorithm: algorithm as CalibrationAlgorithm } : {}),
    onProgress: (n) => process.stderr.write(`\rcalibrating: ${n} batch${n === 1 ? "" : "es"}`),
  };
}

// Calibration input: an async (or plain) iterable of input batches, or a folder of .npy files. Every batch
// is checked against the model's inputs before it is used, so bad data is one clear error up front rather
// than a silently wrong scale: wrong dtype or shape, NaN or infinity, or no data at all.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { TorchcError } from "../errors.js";
import type { Graph, TensorType } from "../ir/graph.js";
import { formatShape, numel, type Tensor } from "../ir/tensor.js";
import { nums } from "../ops/data.js";
import { readNpy } from "../util/npy.js";

/** One batch: the model's inputs in order (a bare tensor for a single-input model). */
export type CalibrationBatch = Tensor | readonly Tensor[];

/**
 * A folder of .npy files (single-input models; files in name order, each holding one or more batches along
 * the first dimension), or batches from any iterable.
 */
export type CalibrationData = string | AsyncIterable<CalibrationBatch> | Iterable<CalibrationBatch>;

export class CalibrationError extends TorchcError {
  constructor(message: string, code: string) {
    super(`calibration: ${message}`, code);
    this.name = "CalibrationError";
  }
}

function npyFiles(dir: string): string[] {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(dir);
  } catch {
    throw new CalibrationError(`data folder '${dir}' does not exist`, "calibration.no-data");
  }
  if (!st.isDirectory())
    throw new CalibrationError(`'${dir}' is not a folder of .npy files`, "calibration.no-data");
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".npy"))
    .sort();
  if (files.length === 0)
    throw new CalibrationError(`data folder '${dir}' has no .npy files`, "calibration.no-data");
  return files.map((f) => join(dir, f));
}

async function* rawBatches(
  data: CalibrationData,
  graph: Graph,
): AsyncGenerator<{ inputs: Tensor[]; from: string }> {
  if (typeof data === "string") {
    if (graph.inputs.length !== 1)
      throw new CalibrationError(
        `a folder of .npy files calibrates single-input models; this one has ${graph.inputs.length} inputs (pass an iterable of input lists)`,
        "calibration.inputs",
      );
    for (const f of npyFiles(data)) yield { inputs: [readNpy(f)], from: f };
    return;
  }
  let i = 0;
  for await (const b of data as AsyncIterable<CalibrationBatch>) {
    yield { inputs: Array.isArray(b) ? [...(b as readonly Tensor[])] : [b as Tensor], from: `batch ${i}` };
    i++;
  }
}

/**
 * Splits `t` into pieces of the model input's shape: a tensor of exactly that shape is one piece; one whose
 * first dimension is a multiple of the input's batch (trailing dims equal) is several.
 */
function piecesOf(t: Tensor, want: TensorType, what: string): Tensor[] {
  const same =
    t.shape.length === want.shape.length && t.shape.slice(1).every((d, i) => d === want.shape[i + 1]);
  const b = want.shape[0] ?? 1;
  if (!same || want.shape.length === 0 || t.shape[0] % b !== 0 || t.shape[0] === 0)
    throw new CalibrationError(
      `${what} has shape ${formatShape(t.shape)}; the model's input is ${formatShape(want.shape)} (a multiple of its batch ${b} along the first dimension is split)`,
      "calibration.shape",
    );
  if (t.shape[0] === b) return [t];
  const per = numel(want.shape);
  const pieces: Tensor[] = [];
  for (let k = 0; k < t.shape[0] / b; k++)
    pieces.push({
      dtype: t.dtype,
      shape: [...want.shape],
      data: t.data.subarray(k * per, (k + 1) * per) as Tensor["data"],
    });
  return pieces;
}

function checkFinite(t: Tensor, what: string): void {
  const v = nums(t);
  for (let i = 0; i < v.length; i++)
    if (!Number.isFinite(v[i]))
      throw new CalibrationError(
        `${what} has ${v[i]} at element ${i}; calibration data must be finite`,
        "calibration.nan",
      );
}

/** The calibration data as checked model inputs, one forward pass each; throws if there is none. */
export async function* calibrationBatches(data: CalibrationData, graph: Graph): AsyncGenerator<Tensor[]> {
  let count = 0;
  for await (const { inputs, from } of rawBatches(data, graph)) {
    if (inputs.length !== graph.inputs.length)
      throw new CalibrationError(
        `${from} has ${inputs.length} tensors; the model takes ${graph.inputs.length}`,
        "calibration.inputs",
      );
    const split = inputs.map((t, k) => {
      const want = graph.values[graph.inputs[k]];
      const what = `${from}${graph.inputs.length > 1 ? ` input ${k}` : ""}`;
      if (t.dtype !== want.dtype)
        throw new CalibrationError(
          `${what} is ${t.dtype}; the model's input '${graph.inputs[k]}' is ${want.dtype}`,
          "calibration.dtype",
        );
      checkFinite(t, what);
      return piecesOf(t, want, what);
    });
    const n = split[0].length;
    if (split.some((p) => p.length !== n))
      throw new CalibrationError(
        `${from}: the inputs hold different numbers of batches`,
        "calibration.shape",
      );
    for (let j = 0; j < n; j++) {
      count++;
      yield split.map((p) => p[j]);
    }
  }
  if (count === 0) throw new CalibrationError("the data yielded no batches", "calibration.no-data");
}

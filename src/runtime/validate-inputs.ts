import { InputError } from "../errors.js";
import type { Graph } from "../ir/graph.js";
import { formatShape, numel, type Tensor } from "../ir/tensor.js";

/**
 * Checks run-time inputs against the graph's input types before anything executes (and before any pointer
 * reaches native code). `labels` name the inputs in messages (file names on the command line).
 */
export function validateInputs(
  graph: Graph,
  inputs: readonly Pick<Tensor, "dtype" | "shape">[],
  labels?: readonly string[],
): void {
  const label = (i: number) => labels?.[i] ?? `input ${i}`;
  if (inputs.length !== graph.inputs.length) {
    const expected = graph.inputs
      .map((n) => `${n}: ${graph.values[n].dtype}${formatShape(graph.values[n].shape)}`)
      .join(", ");
    throw new InputError(
      `the model takes ${graph.inputs.length} input(s) (${expected}) but ${inputs.length} were given`,
      "input.count",
    );
  }
  if (!Array.isArray(inputs)) throw new InputError("inputs must be an array of tensors", "input.invalid");
  inputs.forEach((t, i) => {
    const want = graph.values[graph.inputs[i]];
    if (typeof t !== "object" || t === null || !Array.isArray(t.shape))
      throw new InputError(
        `${label(i)}: not a tensor (expected { dtype, shape, data } or a DeviceTensor)`,
        "input.invalid",
      );
    const shapeOk =
      t.shape.length === want.shape.length && t.shape.every((d: number, k: number) => d === want.shape[k]);
    if (!shapeOk) {
      throw new InputError(
        `${label(i)}: shape ${formatShape(t.shape)} does not match model input '${graph.inputs[i]}' which expects ${formatShape(want.shape)}`,
        "input.shape",
      );
    }
    if (t.dtype !== want.dtype) {
      throw new InputError(
        `${label(i)}: dtype ${t.dtype} does not match model input '${graph.inputs[i]}' which expects ${want.dtype}`,
        "input.dtype",
      );
    }
    const data = (t as { data?: unknown }).data;
    if ((t as { kind?: unknown }).kind !== "device") {
      if (!ArrayBuffer.isView(data) || (data as unknown as { length: number }).length !== numel(want.shape))
        throw new InputError(
          `${label(i)}: data must be a typed array of ${numel(want.shape)} elements for model input '${graph.inputs[i]}' ${formatShape(want.shape)}`,
          "input.shape",
        );
    }
  });
}

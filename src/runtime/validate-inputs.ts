import { InputError } from "../errors.js";
import type { Graph } from "../ir/graph.js";
import { formatShape, type Tensor } from "../ir/tensor.js";

/**
 * Checks run-time inputs against the graph's input types before anything executes (and before any pointer
 * reaches native code). `labels` name the inputs in messages (file names on the command line).
 */
export function validateInputs(graph: Graph, inputs: readonly Tensor[], labels?: readonly string[]): void {
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
  inputs.forEach((t, i) => {
    const want = graph.values[graph.inputs[i]];
    const shapeOk = t.shape.length === want.shape.length && t.shape.every((d, k) => d === want.shape[k]);
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
  });
}

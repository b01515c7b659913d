// Sample inputs for the fp16 overflow analysis (passes/fp16-overflow.ts): the user's own data when compile has
// some (the first calibration batch, or `verify.inputs`), else seeded random inputs of the declared shapes (the
// same ones `verify: true` uses). One sample by default: the analysis runs the CPU reference interpreter.
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import type { Fp16OverflowPassOptions, Fp16OverflowResult } from "../passes/fp16-overflow.js";
import { randomInput } from "../util/random-input.js";
import { CalibrationError, calibrationBatches } from "./calibration-data.js";
import type { CompileOptions } from "./options.js";

export interface Fp16OverflowSamples {
  readonly samples: Tensor[][];
  /** Where they came from, for the compile report. */
  readonly source: string;
}

export async function fp16OverflowSamples(
  graph: Graph,
  options: CompileOptions,
): Promise<Fp16OverflowSamples> {
  const data = options.calibration?.data;
  let note = "";
  if (data !== undefined) {
    const want = options.calibration?.maxBatches ?? 1;
    const samples: Tensor[][] = [];
    try {
      for await (const batch of calibrationBatches(data, graph)) {
        samples.push(batch);
        if (samples.length >= want) break;
      }
    } catch (e) {
      // A batch range compiles one module per size: batches of another size cannot feed this one.
      if (!(e instanceof CalibrationError && e.code === "calibration.shape")) throw e;
      note = " (the calibration batches do not fit this input shape)";
    }
    if (samples.length > 0) return { samples, source: `${samples.length} calibration batch(es)` };
  }
  const v = options.verify;
  if (typeof v === "object" && v.inputs) return { samples: [[...v.inputs]], source: "verify.inputs" };
  return {
    samples: [graph.inputs.map((n, k) => randomInput(graph.values[n], 1234 + k))],
    source: `seeded random inputs of the declared shapes (seed 1234)${note}`,
  };
}

/**
 * The pipeline's fp16Overflow option for a compile, or undefined when it does not apply (the option is absent or
 * "ignore", or float16 is not enabled). `onResult` receives the analysis for the report.
 */
export async function fp16OverflowPipelineOption(
  graph: Graph,
  options: CompileOptions,
  float16: boolean,
  onResult: (r: Fp16OverflowResult, source: string) => void,
): Promise<Fp16OverflowPassOptions | undefined> {
  const mode = options.fp16Overflow ?? "ignore";
  if (mode === "ignore" || !float16) return undefined;
  const { samples, source } = await fp16OverflowSamples(graph, options);
  return { mode, samples, onResult: (r) => onResult(r, source) };
}

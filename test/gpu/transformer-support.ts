/**
 * Shared by the transformer GPU tests: compile an exported model (fixtures/export_transformer_blocks.py) on the
 * CUDA backend, check both inputs twice against PyTorch eager fp32 (fp32 ≤ 1e-4, fp16 ≤ 1e-2 of max|ref|), then
 * profile it and time it on input 1.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { compareTensors } from "../../src/cli/compare.js";
import type { ProfileReport } from "../../src/core/profile.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { compile } from "../../src/runtime/compile.js";
import { readNpy } from "../../src/util/npy.js";
import { gpuReporter } from "./support.js";

const report = gpuReporter("transformer-fusion");

export interface Run {
  readonly profile: ProfileReport;
  readonly medianMs: number;
  readonly runners: readonly string[];
}

export async function compileAndCheck(dir: string, name: string, precision: "fp32" | "fp16"): Promise<Run> {
  const tol = precision === "fp16" ? 1e-2 : 1e-4;
  const model = await loadModel(join(dir, `${name}.pt2`));
  const compiled = await compile(model, { backend: "cuda", enabledPrecisions: [precision] });
  try {
    const outs = [];
    for (let round = 0; round < 2; round++) {
      for (const k of [0, 1]) {
        const [out] = await compiled.run([readNpy(join(dir, `${name}.in${k}.npy`))]);
        const a = compareTensors(out, readNpy(join(dir, `${name}.out${k}.npy`)));
        report("accuracy", { name, precision, input: k, round, relative: a.relative });
        assert.ok(a.shapeMatches, `${name}: output shape`);
        assert.ok(
          a.relative <= tol,
          `${name} ${precision} input ${k}: max|err|/max|ref| ${a.relative} > ${tol}`,
        );
        outs.push(out);
      }
    }
    // run() left input 1 in place: the profile and the timing run on real data.
    const profile = compiled.profile({ reps: 30 });
    const { medianMs } = compiled.benchmark([readNpy(join(dir, `${name}.in1.npy`))], { reps: 100 });
    return { profile, medianMs, runners: compiled.report.runners };
  } finally {
    await compiled.dispose();
  }
}

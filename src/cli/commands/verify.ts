import { parseArgs } from "node:util";
import { loadModel } from "../../frontends/load-model.js";
import { compile } from "../../runtime/compile.js";
import { readNpy } from "../../util/npy.js";
import { randomInput } from "../../util/random-input.js";
import { verifyCompiled } from "../../verify/verify.js";
import { sensitivityOf } from "../calibration-options.js";
import { COMPILE_FLAGS, compileOptionsFrom, compileUsage } from "../compile-options.js";
import { parseTolerance } from "../options.js";
import { withProgress } from "../progress.js";
import type { Command } from "./command.js";

export const verifyCommand: Command = {
  name: "verify",
  summary: "compile, run, and compare with the aten reference; name the first node whose conversion diverges",
  usage:
    "usage: torchc verify <model> [--input x.npy ...] [--tolerance X] [options]\n" +
    "  --input x.npy   the input (default: seeded random normal samples)\n" +
    "  --tolerance X   max|err|/max|ref| (default 1e-4, 1e-2 with fp16/bf16)\n" +
    compileUsage(),
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { ...COMPILE_FLAGS, input: { type: "string", multiple: true }, tolerance: { type: "string" } },
    });
    if (positionals.length !== 1) {
      process.stderr.write(`${this.usage}\n`);
      return 2;
    }
    const options = compileOptionsFrom(values);
    const fp16 = (options.enabledPrecisions ?? []).some((p) => p !== "fp32" && p !== "float32");
    const tolerance = parseTolerance(values.tolerance, fp16);
    const compiled = await withProgress("load", async () =>
      compile(await loadModel(positionals[0], { inputTypes: options.inputs }), options),
    );
    try {
      const inputs = values.input?.length
        ? values.input.map((f) => readNpy(f))
        : compiled.graph.inputs.map((n, i) => randomInput(compiled.graph.values[n], 1234 + i));
      const sensitivity = sensitivityOf(options.calibration);
      const report = await verifyCompiled(compiled, inputs, {
        tolerance,
        ...(sensitivity ? { sensitivity } : {}),
        ...(compiled.report.int8Choice ? { int8Choice: compiled.report.int8Choice } : {}),
      });
      process.stdout.write(`${report.text}\n`);
      return report.ok ? 0 : 1;
    } finally {
      await compiled.dispose();
    }
  },
};

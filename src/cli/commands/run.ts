import { parseArgs } from "node:util";
import { loadModel } from "../../frontends/load-model.js";
import { interpret } from "../../ops/interpret.js";
import { validateInputs } from "../../runtime/validate-inputs.js";
import { readNpy, writeNpy } from "../../util/npy.js";
import { compareTensors } from "../compare.js";
import { parseInputShapes } from "../options.js";
import type { Command } from "./command.js";
import { InputError } from "../../errors.js";

export const runCommand: Command = {
  name: "run",
  summary: "run a model on .npy inputs and write its outputs",
  usage:
    "usage: torchc run <model> --input x.npy [--input y.npy ...] [--output out.npy ...] [--expect ref.npy]\n" +
    "                  [--backend reference|cuda] [--compiled] [--precision fp32|fp16]",
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        input: { type: "string", multiple: true },
        output: { type: "string", multiple: true },
        expect: { type: "string", multiple: true },
        backend: { type: "string", default: "reference" },
        compiled: { type: "boolean" },
        precision: { type: "string", default: "fp32" },
        "input-shape": { type: "string", multiple: true },
        tolerance: { type: "string" },
      },
    });
    if (positionals.length !== 1) {
      process.stderr.write(`${this.usage}\n`);
      return 2;
    }
    const files = values.input ?? [];
    const inputs = files.map((f) => readNpy(f));
    const inputTypes = parseInputShapes(values["input-shape"]) ?? inputs.map((t) => ({ dtype: t.dtype, shape: t.shape }));
    const model = await loadModel(positionals[0], { inputTypes });
    validateInputs(model.graph, inputs, files);
    const backend = values.backend ?? "reference";
    let outputs;
    if (values.compiled || backend !== "reference") {
      const { compile } = await import("../../runtime/compile.js");
      const compiled = await compile(model, { backend: backend as "reference", enabledPrecisions: [values.precision as "fp32"] });
      outputs = await compiled.run(inputs);
      await compiled.dispose?.();
    } else {
      outputs = interpret(model.graph, inputs);
    }
    const outFiles = values.output ?? [];
    if (outFiles.length > outputs.length) throw new InputError(`${outFiles.length} --output files for ${outputs.length} model outputs`);
    outFiles.forEach((f, i) => writeNpy(f, outputs[i]));
    const expect = values.expect ?? [];
    const tol = Number(values.tolerance ?? (values.precision === "fp16" ? "1e-2" : "1e-4"));
    let ok = true;
    outputs.forEach((out, i) => {
      const line = `output ${i} (${model.graph.outputs[i]}): ${out.dtype}[${out.shape.join(", ")}]`;
      if (i < expect.length) {
        const a = compareTensors(out, readNpy(expect[i]));
        const pass = a.relative <= tol;
        ok &&= pass;
        process.stdout.write(`${line}  max|err|/max|ref| = ${a.relative.toExponential(2)} ${pass ? "ok" : `FAILS (tolerance ${tol})`}\n`);
      } else {
        process.stdout.write(`${line}${outFiles[i] ? ` -> ${outFiles[i]}` : ""}\n`);
      }
    });
    return ok ? 0 : 1;
  },
};

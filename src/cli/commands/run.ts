import { parseArgs } from "node:util";
import { InputError } from "../../errors.js";
import { loadModel } from "../../frontends/load-model.js";
import type { Tensor } from "../../ir/tensor.js";
import { interpret } from "../../ops/interpret.js";
import { compile, loadCompiled } from "../../runtime/compile.js";
import { specializeToInputs } from "../../runtime/shape-range.js";
import { validateInputs } from "../../runtime/validate-inputs.js";
import { readNpy, writeNpy } from "../../util/npy.js";
import { compareTensors } from "../compare.js";
import { COMPILE_FLAGS, COMPILE_USAGE, compileOptionsFrom } from "../compile-options.js";
import { parseTolerance } from "../options.js";
import { withProgress } from "../progress.js";
import type { Command } from "./command.js";

export const runCommand: Command = {
  name: "run",
  summary: "run a model on .npy inputs and write its outputs",
  usage:
    "usage: torchc run <model> --input x.npy [--input y.npy ...] [--output out.npy ...] [--expect ref.npy]\n" +
    "       torchc run <model.torchc> --input x.npy ...   (a package saved by torchc compile -o)\n" +
    "  --compiled   compile first (lowering, partition, engines) instead of interpreting the graph\n" +
    "  --tolerance X  with --expect: the largest max|err|/max|ref| accepted (default 1e-4, 1e-2 with fp16/bf16)\n" +
    COMPILE_USAGE,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        input: { type: "string", multiple: true },
        output: { type: "string", multiple: true },
        expect: { type: "string", multiple: true },
        ...COMPILE_FLAGS,
        compiled: { type: "boolean" },
        tolerance: { type: "string" },
      },
    });
    if (positionals.length !== 1) {
      process.stderr.write(`${this.usage}\n`);
      return 2;
    }
    const files = values.input ?? [];
    const inputs = files.map((f) => readNpy(f));
    const options = compileOptionsFrom(values);
    const inputTypes = options.inputs ?? inputs.map((t) => ({ dtype: t.dtype, shape: t.shape }));
    const path = positionals[0];
    let outputs: Tensor[];
    let outputNames: readonly string[];
    const fp16 = (options.enabledPrecisions ?? []).some((p) => p !== "fp32" && p !== "float32");
    const tol = parseTolerance(values.tolerance, fp16);
    if (path.endsWith(".torchc")) {
      const compiled = await withProgress("load", () => loadCompiled(path, { backend: options.backend }));
      validateInputs(compiled.graph, inputs, files);
      outputs = await compiled.run(inputs);
      outputNames = compiled.graph.outputs;
      await compiled.dispose();
    } else {
      // a .pt2 exported with a dynamic batch runs at the inputs' sizes (checked against its range here, naming
      // the files), or over its range when the batch is pipelined in pieces
      const loaded = await loadModel(path, { inputTypes });
      const model = specializeToInputs(
        loaded,
        inputs.map((t) => t.shape),
        files,
      );
      validateInputs(model.graph, inputs, files);
      outputNames = model.graph.outputs;
      if (values.compiled || options.backend === "cuda" || fp16) {
        const pipelined = options.dynamic?.pipelineRows !== undefined && loaded.dynamic !== undefined;
        const compiled = await withProgress("passes", () => compile(pipelined ? loaded : model, options));
        outputs = await compiled.run(inputs);
        await compiled.dispose();
      } else {
        outputs = interpret(model.graph, inputs);
      }
    }
    const outFiles = values.output ?? [];
    if (outFiles.length > outputs.length)
      throw new InputError(`${outFiles.length} --output files for ${outputs.length} model outputs`);
    for (const [i, f] of outFiles.entries()) writeNpy(f, outputs[i]);
    const expect = values.expect ?? [];
    let ok = true;
    outputs.forEach((out, i) => {
      const line = `output ${i} (${outputNames[i]}): ${out.dtype}[${out.shape.join(", ")}]`;
      if (i < expect.length) {
        const a = compareTensors(out, readNpy(expect[i]));
        const pass = a.relative <= tol;
        ok &&= pass;
        process.stdout.write(
          `${line}  max|err|/max|ref| = ${a.relative.toExponential(2)} ${pass ? "ok" : `FAILS (tolerance ${tol})`}\n`,
        );
      } else {
        process.stdout.write(`${line}${outFiles[i] ? ` -> ${outFiles[i]}` : ""}\n`);
      }
    });
    return ok ? 0 : 1;
  },
};

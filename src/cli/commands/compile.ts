import { parseArgs } from "node:util";
import { loadModel } from "../../frontends/load-model.js";
import { formatTrace } from "../../passes/rewrite/trace.js";
import { compile } from "../../runtime/compile.js";
import { formatMemory } from "../../runtime/execution.js";
import { COMPILE_FLAGS, COMPILE_USAGE, compileOptionsFrom } from "../compile-options.js";
import { withProgress } from "../progress.js";
import type { Command } from "./command.js";

export const compileCommand: Command = {
  name: "compile",
  summary: "lower, partition and build a model; report what happened; optionally save it",
  usage: `usage: torchc compile <model> [-o model.torchc] [--trace-passes] [--verify] [options]\n  --verify   run once on a random input and compare with the aten reference, node by node (torchc verify)\n${COMPILE_USAGE}`,
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        ...COMPILE_FLAGS,
        output: { type: "string", short: "o" },
        "trace-passes": { type: "boolean" },
        verify: { type: "boolean" },
      },
    });
    if (positionals.length !== 1) {
      process.stderr.write(`${this.usage}\n`);
      return 2;
    }
    const options = { ...compileOptionsFrom(values), verify: values.verify === true };
    const t0 = performance.now();
    let t1 = t0;
    const compiled = await withProgress("load", async () => {
      const model = await loadModel(positionals[0], { inputTypes: options.inputs });
      t1 = performance.now();
      return compile(model, options);
    });
    const t2 = performance.now();
    if (values["trace-passes"]) process.stdout.write(`${formatTrace(compiled.report.trace)}\n\n`);
    process.stdout.write(`${compiled.report.text}\n`);
    process.stdout.write(
      `load ${(t1 - t0).toFixed(0)} ms, compile ${(t2 - t1).toFixed(0)} ms, total ${(t2 - t0).toFixed(0)} ms\n`,
    );
    if (compiled.queue) process.stdout.write(`${formatMemory(compiled.memory())}\n`);
    if (compiled.verification) process.stdout.write(`${compiled.verification.text}\n`);
    if (values.output) {
      compiled.save(values.output);
      process.stdout.write(`saved ${values.output}\n`);
    }
    await compiled.dispose();
    return 0;
  },
};

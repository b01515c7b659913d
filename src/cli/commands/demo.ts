import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadModel } from "../../frontends/load-model.js";
import { formatSummary, summarizeGraph } from "../../ir/summary.js";
import { readNpy } from "../../util/npy.js";
import { compareTensors } from "../compare.js";
import type { Command } from "./command.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** `npm start`: the main job on the bundled EfficientNet-family model, on the CPU. */
export const demoCommand: Command = {
  name: "demo",
  summary: "compile the bundled EfficientNet-family model and check it against PyTorch (CPU)",
  usage: "usage: torchc demo [--model name]",
  async run(argv) {
    const name = argv[0] === "--model" && argv[1] ? argv[1] : "tiny_efficientnet";
    const dir = join(root, "fixtures", "models");
    const path = join(dir, `${name}.pt2`);
    const t0 = performance.now();
    const model = await loadModel(path);
    const t1 = performance.now();
    process.stdout.write(
      `torchc demo: ${path}\nloaded in ${(t1 - t0).toFixed(0)} ms\n\n${formatSummary(summarizeGraph(model.graph))}\n\n`,
    );
    const input = readNpy(join(dir, `${name}.input.npy`));
    const expected = readNpy(join(dir, `${name}.output.npy`));
    const { compile } = await import("../../runtime/compile.js");
    const compiled = await compile(model, { backend: "reference" });
    const t2 = performance.now();
    process.stdout.write(`${compiled.report.text}\ncompiled in ${(t2 - t1).toFixed(0)} ms\n\n`);
    const [out] = await compiled.run([input]);
    const t3 = performance.now();
    const a = compareTensors(out, expected);
    const ok = a.relative <= 1e-4;
    process.stdout.write(
      `ran on the CPU (reference backend) in ${(t3 - t2).toFixed(0)} ms: output ${out.dtype}[${out.shape.join(", ")}]\n` +
        `against PyTorch 2.11: max|err| ${a.maxAbsError.toExponential(2)}, max|err|/max|ref| ${a.relative.toExponential(2)} -> ${ok ? "match (≤ 1e-4)" : "MISMATCH"}\n`,
    );
    return ok ? 0 : 1;
  },
};

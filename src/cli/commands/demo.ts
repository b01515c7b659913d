import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { InputError } from "../../errors.js";
import { loadModel } from "../../frontends/load-model.js";
import { formatSummary, summarizeGraph } from "../../ir/summary.js";
import { type Tensor, tensorBytes, tensorFromBytes } from "../../ir/tensor.js";
import { readNpy } from "../../util/npy.js";
import { compareTensors } from "../compare.js";
import { withProgress } from "../progress.js";
import type { Command } from "./command.js";

/** The package root: src/cli/commands in a checkout, dist/cli/commands in an installed package. */
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const DEMO_FIXTURES = join(ROOT, "fixtures", "models");
/** The demo's model: ResNet basic blocks whose output moves a lot with the input (tiny_efficientnet's barely does). */
export const DEMO_MODEL = "tiny_resnet";

/** Agreement with PyTorch: max|err|/max|ref| at most this (fp32 engines against PyTorch's fp32 output). */
const TOLERANCE = 1e-4;
/** A check can fail only if a wrong output is far off: other inputs must miss by at least this much. */
const DISCRIMINATION = 100 * TOLERANCE;

/**
 * The batch with its samples rotated by one (sample i takes sample i+1's place). Over an eval-mode model whose
 * samples do not interact, PyTorch's output for it is PyTorch's stored output rotated the same way: a second
 * input with a PyTorch golden output, from one stored pair. Undefined for a batch of one.
 */
export function rotateBatch(t: Tensor): Tensor | undefined {
  const n = t.shape[0];
  if (t.shape.length === 0 || n === undefined || n < 2) return undefined;
  const bytes = tensorBytes(t);
  const per = bytes.length / n;
  const out = new Uint8Array(bytes.length);
  out.set(bytes.subarray(per), 0);
  out.set(bytes.subarray(0, per), bytes.length - per);
  return tensorFromBytes(t.dtype, t.shape, out);
}

function zerosLike(t: Tensor): Tensor {
  return tensorFromBytes(t.dtype, t.shape, new Uint8Array(tensorBytes(t).length));
}

function torchVersion(dir: string): string {
  try {
    const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as { torch?: string };
    return m.torch ? `PyTorch ${m.torch}` : "PyTorch";
  } catch {
    return "PyTorch";
  }
}

const fmt = (x: number) => x.toExponential(2);

/** `npm start`: compile a bundled model and show that it reproduces PyTorch, with a check that can fail. */
export const demoCommand: Command = {
  name: "demo",
  summary: "compile the bundled ResNet-style model and check it against PyTorch on two inputs (CPU)",
  usage:
    "usage: torchc demo [--model name]\n" +
    `  --model name   a fixture under fixtures/models with name.pt2, name.input.npy and name.output.npy (default ${DEMO_MODEL})\n` +
    "  Compiles the model (lowering, partition, converters, engines on the CPU reference backend), runs it on\n" +
    "  PyTorch's stored input and on the same batch with its samples rotated, compares both with PyTorch's\n" +
    "  output, and checks that other inputs (the rotated batch, all zeros) miss that output by far: a match\n" +
    "  that any input would give proves nothing.",
  async run(argv) {
    if (argv.length > 0 && !(argv.length === 2 && argv[0] === "--model"))
      throw new InputError(`unexpected arguments '${argv.join(" ")}'; usage: torchc demo [--model name]`);
    const name = argv[1] ?? DEMO_MODEL;
    const dir = DEMO_FIXTURES;
    const files = ["pt2", "input.npy", "output.npy"].map((ext) => join(dir, `${name}.${ext}`));
    const absent = files.find((f) => !existsSync(f));
    if (absent)
      throw new InputError(`${absent}: no such fixture file (torchc demo --model takes a fixture name)`);
    const [path, inputFile, outputFile] = files;
    const shown = relative(process.cwd(), path).startsWith("..") ? path : relative(process.cwd(), path);
    const torch = torchVersion(dir);

    const t0 = performance.now();
    const model = await loadModel(path);
    const t1 = performance.now();
    process.stdout.write(
      `torchc demo: ${shown}\nloaded in ${(t1 - t0).toFixed(0)} ms\n\n${formatSummary(summarizeGraph(model.graph))}\n\n`,
    );
    const { compile } = await import("../../runtime/compile.js");
    const compiled = await withProgress("passes", () => compile(model, { backend: "reference" }));
    const t2 = performance.now();
    process.stdout.write(`${compiled.report.text}\ncompiled in ${(t2 - t1).toFixed(0)} ms\n\n`);

    const inputA = readNpy(inputFile);
    const expectedA = readNpy(outputFile);
    const inputB = rotateBatch(inputA);
    const expectedB = rotateBatch(expectedA);
    const runs: { label: string; input: Tensor; expected: Tensor }[] = [
      { label: `input A (${name}.input.npy)`, input: inputA, expected: expectedA },
    ];
    if (inputB && expectedB)
      runs.push({ label: "input B (A with its samples rotated by one)", input: inputB, expected: expectedB });
    runs.push({ label: "input A again", input: inputA, expected: expectedA });

    const pad = (s: string) => s.padEnd(46);
    let ok = true;
    process.stdout.write(
      `compiled module against ${torch} (max|err|/max|ref|, fp32, tolerance ${fmt(TOLERANCE)}):\n`,
    );
    const outputs: Tensor[] = [];
    for (const r of runs) {
      const [out] = await compiled.run([r.input]);
      outputs.push(out);
      const a = compareTensors(out, r.expected);
      const pass = a.relative <= TOLERANCE;
      ok &&= pass;
      process.stdout.write(`  ${pad(r.label)} ${fmt(a.relative)}  ${pass ? "match" : "MISMATCH"}\n`);
    }

    // A match proves something only if a wrong input would not match too.
    process.stdout.write(
      `would a wrong output fail? other inputs against A's ${torch} output (must exceed ${fmt(DISCRIMINATION)}):\n`,
    );
    const [zerosOut] = await compiled.run([zerosLike(inputA)]);
    const others: { label: string; out: Tensor }[] = [{ label: "all-zeros input", out: zerosOut }];
    if (inputB) others.unshift({ label: "input B", out: outputs[1] });
    let discriminates = true;
    for (const o of others) {
      const d = compareTensors(o.out, expectedA).relative;
      const far = d > DISCRIMINATION;
      discriminates &&= far;
      process.stdout.write(`  ${pad(o.label)} ${fmt(d)}  ${far ? "clearly different" : "TOO CLOSE"}\n`);
    }
    await compiled.dispose();

    const inputs = inputB ? "two inputs" : "its input";
    if (ok && discriminates) {
      process.stdout.write(
        `\nok: the compiled ${name} reproduces ${torch} on ${inputs}, and the check can fail\n`,
      );
      return 0;
    }
    process.stdout.write(
      ok
        ? `\nnot shown: ${name}'s output barely depends on its input, so a match with ${torch} proves nothing\n`
        : `\nFAILED: the compiled ${name} does not reproduce ${torch}\n`,
    );
    return 1;
  },
};

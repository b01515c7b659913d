import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { formatProfileReport } from "../../backends/cuda/profile/report.js";
import { InputError } from "../../errors.js";
import { loadModel } from "../../frontends/load-model.js";
import { compile } from "../../runtime/compile.js";
import { formatMemory } from "../../runtime/execution.js";
import { readNpy } from "../../util/npy.js";
import { randomInput } from "../../util/random-input.js";
import { compareTensors } from "../compare.js";
import { COMPILE_FLAGS, compileOptionsFrom, compileUsage } from "../compile-options.js";
import { parseTolerance } from "../options.js";
import { withProgress } from "../progress.js";
import type { Command } from "./command.js";

export const benchCommand: Command = {
  name: "bench",
  summary: "compile for the GPU and measure latency (median, p90) and throughput with CUDA events",
  usage:
    "usage: torchc bench <model> [--batch N] [--reps 100] [--input x.npy ...] [--json out.json] [options]\n" +
    "  --batch N   check that the model was exported at batch N (torchc compiles static shapes)\n" +
    "  --expect ref.npy  check the output first (--tolerance X, default 1e-4, 1e-2 with fp16/bf16)\n" +
    "  --profile   also time each step alone between CUDA events (no CUDA graph) and print where the time goes\n" +
    "              (also with TORCHC_PROFILE=1; in --json as `profile`)\n" +
    compileUsage("cuda"),
  async run(argv) {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        ...COMPILE_FLAGS,
        batch: { type: "string" },
        reps: { type: "string" },
        input: { type: "string", multiple: true },
        json: { type: "string" },
        expect: { type: "string", multiple: true },
        tolerance: { type: "string" },
        profile: { type: "boolean" },
      },
    });
    if (positionals.length !== 1) {
      process.stderr.write(`${this.usage}\n`);
      return 2;
    }
    const options = compileOptionsFrom(values, { backend: "cuda" });
    const fp16 = (options.enabledPrecisions ?? []).some((p) => p !== "fp32" && p !== "float32");
    const tol = parseTolerance(values.tolerance, fp16);
    const t0 = performance.now();
    const model = await loadModel(positionals[0], { inputTypes: options.inputs });
    const t1 = performance.now();
    const batch = model.graph.values[model.graph.inputs[0]]?.shape[0] ?? 1;
    if (values.batch !== undefined && Number(values.batch) !== batch) {
      throw new InputError(
        `${positionals[0]} was exported at batch ${batch}, not ${values.batch}: torchc compiles static shapes, so export the model with an example input of batch ${values.batch}`,
        "bench.batch",
      );
    }
    const compiled = await withProgress("passes", () => compile(model, options));
    const t2 = performance.now();
    const inputs = values.input?.length
      ? values.input.map((f) => readNpy(f))
      : model.graph.inputs.map((n, i) => randomInput(model.graph.values[n], 1234 + i));
    // Correctness first: the same compiled module, checked against PyTorch's output before it is timed.
    const checks = [];
    if (values.expect?.length) {
      const outs = await compiled.run(inputs);
      for (const [i, f] of values.expect.entries()) {
        const a = compareTensors(outs[i], readNpy(f));
        checks.push({
          output: i,
          relative: a.relative,
          maxAbsError: a.maxAbsError,
          tolerance: tol,
          ok: a.relative <= tol,
        });
        process.stdout.write(
          `output ${i}: max|err|/max|ref| = ${a.relative.toExponential(2)} against ${f} ${a.relative <= tol ? "ok" : `FAILS (tolerance ${tol})`}\n`,
        );
      }
    }
    const r = compiled.benchmark(inputs, { reps: Number(values.reps ?? 100), batch });
    // End to end as a service sees it: host tensors in, host tensors out, through run().
    const e2e: number[] = [];
    const e2eReps = Math.min(Number(values.reps ?? 100), 100);
    for (let i = 0; i < e2eReps + 5; i++) {
      const s = performance.now();
      await compiled.run(inputs);
      if (i >= 5) e2e.push(performance.now() - s);
    }
    e2e.sort((a, b) => a - b);
    const endToEndMs = e2e[Math.floor((e2e.length - 1) / 2)];
    // After run(): the inputs are in place. Steps one by one, so the sum exceeds the graph replay's time.
    const profile =
      values.profile || process.env.TORCHC_PROFILE === "1"
        ? compiled.profile({ reps: Number(values.reps ?? 100) })
        : undefined;
    const memory = compiled.queue ? compiled.memory() : undefined;
    const result = {
      model: positionals[0],
      batch,
      precision: options.enabledPrecisions ?? ["fp32"],
      backend: options.backend,
      loadMs: t1 - t0,
      compileMs: t2 - t1,
      ...r,
      endToEndMs,
      memory,
      checks,
      segments: compiled.report.runners,
      profile,
    };
    process.stdout.write(
      `${compiled.report.text}\n\n${positionals[0]} batch ${batch}: median ${r.medianMs.toFixed(3)} ms, p90 ${r.p90Ms.toFixed(3)} ms, ` +
        `${r.throughput.toFixed(0)} samples/s (${r.reps} runs, CUDA events); compile ${(result.compileMs / 1000).toFixed(1)} s\n` +
        `end to end (host in, host out, run()): median ${endToEndMs.toFixed(3)} ms over ${e2e.length} runs\n` +
        (memory ? `${formatMemory(memory)}\n` : ""),
    );
    if (profile) process.stdout.write(`\n${formatProfileReport(profile)}\n`);
    if (values.json) writeFileSync(values.json, JSON.stringify(result, null, 2));
    await compiled.dispose();
    return checks.every((c) => c.ok) ? 0 : 1;
  },
};

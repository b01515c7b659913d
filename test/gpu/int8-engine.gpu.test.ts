/**
 * int8 convolutions in the CUDA engine (issue 14; opt-in TORCHC_QUANT_KERNELS=1): a quantized convolution whose
 * input is dequantize(quantize(x)) reads quantize's int8 output and runs cuDNN's int8 graph (int32 accumulation,
 * per-channel scale, bias and epilogue; fuse/int8-conv-rule.ts, quant-conv-operands.ts).
 *  1. Two quantized 3×3 convolutions built on the CPU: both steps run in int8 (the engine's description counts
 *     them), and the outputs match the int8 reference (the interpreter's torchc.quantized_convolution) as
 *     closely as the simulated engine does, fp32 and fp16.
 *  2. ResNet-50 at batch 128 (torchvision, random weights, exported here), calibrated on its own input: GPU time of
 *     torchc fp16, int8 simulated (quantize → dequantize → fp16 convolutions) and int8 with int8 convolutions,
 *     and each one's cosine against PyTorch fp32. Printed as a table; JSON in $OUT/int8-engine.json. The int8
 *     convolutions' compile times each convolution in int8 against fp16 and keeps the slower ones in fp16
 *     (src/runtime/calibration-speed.ts): which went which way, with both times, is printed after the table
 *     (TORCHC_INT8_TIMED_CHOICE=0 for the run without the choice). The int8 compile runs twice: the second is warm
 *     (its int8 timings come from the plan cache: src/backends/cuda/int8-conv-timing.ts, cachedTimings).
 *   bash scripts/gpu.sh test int8-engine          (INT8_ENGINE_PART=small or resnet50 runs one part)
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { buildCudaEngine } from "../../src/backends/cuda/builder.js";
import { convertGraph } from "../../src/converters/index.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { type Tensor, toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/index.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";
import { foldQuantizedLayers } from "../../src/passes/quantize-fold.js";
import { insertQuantization, quantizationSites } from "../../src/passes/quantize-insert.js";
import { compile } from "../../src/runtime/compile.js";
import type { CompileOptions } from "../../src/runtime/options.js";
import { compareTensors } from "../../src/util/compare.js";
import { readNpy } from "../../src/util/npy.js";
import { cosine } from "../quant/cosine.js";
import { randomTensor } from "../quant/tiny-cnn.js";
import { twoConvs } from "../quant/two-convs.js";
import { gpuReporter, openGpu, recordTestStarts, repoRoot, scriptFixtures } from "./support.js";

const ROOT = repoRoot("fixtures", "imagenet_quant.py");
const report = gpuReporter("int8-engine");
const { skip: noGpu } = openGpu();
const PART = process.env.INT8_ENGINE_PART ?? "all";
const only = (name: string) =>
  noGpu || (PART === "all" || PART === name ? false : `INT8_ENGINE_PART=${PART}`);
recordTestStarts();

/** Runs `body` with TORCHC_QUANT_KERNELS set to `value`, restoring it after. */
async function withQuantKernels<T>(value: "0" | "1", body: () => Promise<T>): Promise<T> {
  const saved = process.env.TORCHC_QUANT_KERNELS;
  process.env.TORCHC_QUANT_KERNELS = value;
  try {
    return await body();
  } finally {
    if (saved === undefined) delete process.env.TORCHC_QUANT_KERNELS;
    else process.env.TORCHC_QUANT_KERNELS = saved;
  }
}

describe("int8 convolutions in the engine: two quantized 3×3 convolutions", { skip: only("small") }, () => {
  const lowered = runPipeline(twoConvs(), defaultPipeline({})).graph;
  const amax = new Map(quantizationSites(lowered).map((s) => [s.input, 2]));
  const graph = foldQuantizedLayers(insertQuantization(lowered, amax, "int8"));
  const inputs = [7, 8].map((seed, i) => randomTensor([2, 16, 12, 12], seed, i === 0 ? 1.5 : 2));
  const refs = inputs.map((x) => interpret(graph, [x])[0]);

  for (const precision of ["fp32", "fp16"] as const)
    it(`${precision}: both convolutions run in int8 and match the int8 reference like the simulated engine`, async () => {
      const errors: Record<string, number[]> = {};
      for (const mode of ["simulated", "int8"] as const) {
        const logs: string[] = [];
        const engine = await withQuantKernels(mode === "int8" ? "1" : "0", () =>
          // int8 convolutions are NHWC (the builder's default with TORCHC_QUANT_KERNELS=1; explicit for both)
          buildCudaEngine(convertGraph(graph), { precision, channelsLast: true, log: (l) => logs.push(l) }),
        );
        try {
          const int8Steps = engine.stats.stepKinds["conv(int8)"] ?? 0;
          report(`two convs ${precision} ${mode}`, {
            int8Steps,
            steps: engine.steps,
            refusals: engine.stats.libraryRefusals,
          });
          assert.equal(int8Steps, mode === "int8" ? 2 : 0, engine.stats.libraryRefusals.join("; "));
          errors[mode] = [0, 1, 0].map((i) => {
            const [y] = engine.run([inputs[i]]) as Tensor[];
            return compareTensors(y, refs[i]).relative;
          });
          assert.equal(errors[mode][0], errors[mode][2], "the same input twice gives the same output");
        } finally {
          engine.dispose();
        }
      }
      report(`two convs ${precision} error vs int8 reference`, errors);
      // The int8 path's sums are exact int32 (the simulated engine's are float); both requantize conv1's output
      // before conv2, where a value within an ulp of a rounding boundary may flip one step (2/127 here). A wrong
      // scale, bias, layout or ReLU errs by 1e-1 or more.
      const bound = precision === "fp32" ? 5e-3 : 2e-2;
      for (const e of errors.int8) assert.ok(e <= bound, `int8 ${precision}: ${e} > ${bound}`);
    });
});

describe("int8 convolutions in the engine: ResNet-50 batch 128", { skip: only("resnet50") }, () => {
  const fixtures = only("resnet50")
    ? { dir: "", why: only("resnet50") }
    : scriptFixtures({
        given: process.env.TORCHC_RN50_B128_DIR,
        marker: "resnet50.pt2",
        prefix: "torchc-rn50-b128-",
        script: join(ROOT, "fixtures", "imagenet_quant.py"),
        args: ["128", "resnet50"],
        tailLines: 3,
      });

  it("fp16, int8 simulated and int8 convolutions: GPU time and cosine against PyTorch fp32", {
    skip: fixtures.why,
  }, async () => {
    const x = readNpy(join(fixtures.dir, "resnet50.input.npy"));
    const pytorch = readNpy(join(fixtures.dir, "resnet50.output.npy"));
    const model = await loadModel(join(fixtures.dir, "resnet50.pt2"));
    const cache = join(fixtures.dir, "resnet50.scales.json");
    const rows: Record<string, unknown>[] = [];
    const configs: [string, "0" | "1", CompileOptions][] = [
      ["fp16", "0", { enabledPrecisions: ["fp16"] }],
      // calibrates (an fp32 engine over the input itself) and writes the cache the next one reads
      [
        "int8+fp16 simulated",
        "0",
        { enabledPrecisions: ["int8", "fp16"], calibration: { data: [x], cache } },
      ],
      ["int8+fp16 int8 convs", "1", { enabledPrecisions: ["int8", "fp16"], calibration: { cache } }],
      // the same compile again: the int8-against-fp16 timings and the plans now come from the plan cache
      ["int8+fp16 int8 convs, warm", "1", { enabledPrecisions: ["int8", "fp16"], calibration: { cache } }],
    ];
    for (const [label, kernels, options] of configs) {
      const t0 = performance.now();
      const m = await withQuantKernels(kernels, () => compile(model, { backend: "cuda", ...options }));
      const compileS = (performance.now() - t0) / 1000;
      try {
        const [y] = await m.run([x]);
        const gpu = m.benchmark([x], { reps: 30 });
        // Where the time goes (eager, step by step): the quantize/dequantize kernels around int8 layers against
        // the layers themselves.
        let prof: ReturnType<typeof m.profile> | undefined;
        let profileError: string | undefined;
        try {
          prof = m.profile({ reps: 10 });
        } catch (e) {
          profileError = e instanceof Error ? e.message : String(e);
        }
        const choice = m.report.int8Choice;
        const row = {
          config: label,
          gpuMs: Math.round(gpu.medianMs * 1000) / 1000,
          cosine: cosine(y, pytorch),
          relative: compareTensors(y, pytorch).relative,
          compileS: Math.round(compileS * 10) / 10,
          runners: m.report.runners,
          byKind: prof?.byKind.map((k) => `${k.kind} ${k.steps} ${k.ms.toFixed(3)}`) ?? profileError,
          slowest: prof
            ? [...prof.steps]
                .sort((a, b) => b.medianMs - a.medianMs)
                .slice(0, 8)
                .map((k) => `${k.kind} ${k.medianMs.toFixed(4)} ${k.description}`)
            : undefined,
          ...(choice
            ? {
                int8Choice: choice.layers.map((l) => ({
                  node: l.node,
                  shape: l.shape,
                  ran: l.ran,
                  int8Ms: l.int8Ms,
                  floatMs: l.floatMs,
                  reason: l.reason,
                })),
              }
            : {}),
        };
        rows.push(row);
        report(`resnet50 b128 ${label}`, row);
        assert.ok(toFloat64Array(y).every(Number.isFinite), `${label}: finite`);
      } finally {
        await m.dispose();
      }
    }
    const fp16 = rows[0].gpuMs as number;
    console.log("\n| ResNet-50 b128 | GPU ms | × fp16 | cosine vs PyTorch fp32 | compile s |");
    console.log("| --- | --- | --- | --- | --- |");
    for (const r of rows)
      console.log(
        `| ${r.config} | ${r.gpuMs} | ${((r.gpuMs as number) / fp16).toFixed(3)} | ${(r.cosine as number).toFixed(5)} | ${r.compileS} |`,
      );
    for (const r of rows) {
      const choice = r.int8Choice as
        | { node: string; shape: string; ran: string; int8Ms?: number; floatMs?: number; reason?: string }[]
        | undefined;
      if (!choice) continue;
      const int8 = choice.filter((l) => l.ran === "int8").length;
      console.log(
        `\n${r.config}: ${int8} of ${choice.length} convolutions in int8, ${choice.length - int8} kept in fp16 for speed`,
      );
      console.log("| conv | problem | ran | int8 ms | fp16 ms | int8/fp16 | why |");
      console.log("| --- | --- | --- | --- | --- | --- | --- |");
      const f = (v?: number) => (v === undefined ? "" : v.toFixed(4));
      for (const l of choice)
        console.log(
          `| ${l.node} | ${l.shape} | ${l.ran} | ${f(l.int8Ms)} | ${f(l.floatMs)} | ${l.int8Ms && l.floatMs ? (l.int8Ms / l.floatMs).toFixed(2) : ""} | ${l.reason ?? ""} |`,
        );
    }
    if (process.env.OUT)
      writeFileSync(join(process.env.OUT, "int8-engine.json"), JSON.stringify(rows, null, 1));
    // the warm compile timed nothing: the same choice, each int8 layer's times from the plan cache
    type Choice = { ran: string; int8Ms?: number; reason?: string }[];
    const [coldChoice, warmChoice] = [rows[2], rows[3]].map(
      (r) => (r.int8Choice as Choice | undefined) ?? [],
    );
    assert.deepEqual(
      warmChoice.map((l) => l.ran),
      coldChoice.map((l) => l.ran),
      "the warm compile keeps the cold one's choice",
    );
    const fromCache = warmChoice.filter((l) => l.ran === "int8" && l.int8Ms !== undefined);
    assert.ok(
      fromCache.every((l) => l.reason?.includes("earlier compile")),
      `warm int8 layers timed again: ${JSON.stringify(fromCache.filter((l) => !l.reason?.includes("earlier compile")))}`,
    );
    assert.match(
      String((rows[2].runners as string[]).join(" ")),
      /int8 convolutions/,
      "int8 convolutions ran",
    );
  });
});

/**
 * Pipelined host batches (compile option `dynamic.pipelineRows`, runtime/dynamic-pipeline.ts) against the static
 * module, EfficientNet-B0 fp16 at batch 128, host fp32 in (ordinary Float32Arrays, rotating among 4 distinct
 * ones) and host fp32 out, in one process on one GPU:
 * - static: the model compiled for exactly 128 rows (the e2e bench's "plain");
 * - pipe R: the model compiled with a batch range 1–128 and pipelineRows R (its bucket built with one context per
 *   piece, 2 to 4), a batch of 128 run as 128/R pieces;
 * - A/Bs: the static module with the host copy in 2 MiB pieces (before session 12), other context counts.
 * Each variant's output is checked against PyTorch eager fp32 (fp16 tolerance 1e-2 relative to max |ref|), and its
 * outputs for three other inputs against the static module's for them.
 * Needs TORCHC_DYNAMIC_DIR from `python3 fixtures/export_dynamic.py DIR 128 128`. Writes host-pipeline.json into
 * $TORCHC_BENCH_OUT. `bash scripts/gpu.sh bench host-pipeline`; PIPE_ROWS (default 16,32,64) picks R.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../src/frontends/load-model.js";
import type { Tensor } from "../src/ir/tensor.js";
import { type CompiledModule, compile } from "../src/runtime/compile.js";
import { formatMemory } from "../src/runtime/execution.js";
import { compareTensors } from "../src/util/compare.js";
import { readNpy } from "../src/util/npy.js";

const dir = process.env.TORCHC_DYNAMIC_DIR ?? "/tmp/torchc-dynamic";
const BATCH = 128;
const RUNS = 40;

function median(times: number[]): number {
  const s = [...times].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

async function timeRuns(once: (i: number) => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 10; i++) await once(i);
  const t: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await once(i);
    t.push(performance.now() - t0);
  }
  return median(t);
}

interface Row {
  readonly variant: string;
  readonly compileS: number;
  readonly gpuMs: number;
  readonly e2eMs: number;
  readonly error: number;
  /** Max over three other inputs of max |err| / max |ref| against the static module's outputs for them. */
  readonly vsStatic: number;
  readonly memory: string;
}

const model = await loadModel(join(dir, "efficientnet_b0.dyn.pt2"));
const input = readNpy(join(dir, "input.npy"));
const reference = readNpy(join(dir, `output_${BATCH}.npy`));
const x: Tensor = { ...input, shape: [BATCH, ...input.shape.slice(1)] };
const xs = Array.from({ length: 4 }, (_, k) => ({
  ...x,
  data: (x.data as Float32Array).map((v) => v * (1 + 0.05 * k) - 0.1 * k),
}));
const shape = (b: number) => [b, ...x.shape.slice(1)];
const rows: Row[] = [];
let staticOutputs: Tensor[] | undefined;

async function measure(variant: string, build: () => Promise<CompiledModule>, gpuRows: number): Promise<void> {
  const t0 = performance.now();
  const m = await build();
  const compileS = (performance.now() - t0) / 1000;
  try {
    const [y] = (await m.run([x])) as Tensor[];
    const error = compareTensors(y, reference).relative;
    // three more distinct inputs against the first variant's (the static module's) outputs for them
    const ys: Tensor[] = [];
    for (const input of xs.slice(1)) ys.push(((await m.run([input])) as Tensor[])[0]);
    staticOutputs ??= ys;
    const vsStatic = Math.max(...ys.map((t, k) => compareTensors(t, staticOutputs![k]).relative));
    const e2eMs = await timeRuns((i) => m.run([xs[i % 4]]));
    // one call's timeline: each piece's phases, ms from the call's start
    const t0 = performance.now();
    const timeline: string[] = [];
    await m.run([xs[0]], {
      onPhase: (phase, at, piece) => timeline.push(`${piece ?? 0}:${phase}@${(at - t0).toFixed(2)}`),
    });
    console.log(`  ${variant} timeline: ${timeline.join(" ")} | end@${(performance.now() - t0).toFixed(2)}`);
    const gpuInput = { ...x, shape: shape(gpuRows), data: (x.data as Float32Array).subarray(0, (x.data.length / BATCH) * gpuRows) };
    const gpuMs = m.benchmark([gpuInput], { reps: 50 }).medianMs;
    const row = { variant, compileS, gpuMs, e2eMs, error, vsStatic, memory: formatMemory(m.memory()) };
    rows.push(row);
    console.log(JSON.stringify(row));
  } finally {
    await m.dispose();
  }
}

/** Runs `body` with `env` set, then restores the variables. */
async function withEnv(env: Record<string, string>, body: () => Promise<void>): Promise<void> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    await body();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const fp16 = { backend: "cuda", enabledPrecisions: ["fp16"] } as const;
const staticModule = () => compile(model, { ...fp16, inputs: [{ shape: shape(BATCH) }] });
const pipelined = (r: number) => () =>
  compile(model, {
    ...fp16,
    inputs: [{ minShape: shape(1), optShape: shape(r), maxShape: shape(BATCH) }],
    dynamic: { pipelineRows: r, buckets: [r, BATCH] },
  });
await measure("static 128", staticModule, BATCH);
// A/B: the host copy's pieces as before session 12 (2 MiB each, whatever the thread count)
await withEnv({ TORCHC_COPY_CHUNK_BYTES: String(2 << 20) }, () =>
  measure("static 128, 2 MiB copy pieces", staticModule, BATCH),
);
for (const r of (process.env.PIPE_ROWS ?? "16,32,64").split(",").map(Number))
  await measure(`pipe ${r}`, pipelined(r), r);
// A/B: completion polled on the JS thread for the whole wait (no copy thread blocked in cuEventSynchronize)
await withEnv({ TORCHC_POLL_SPIN_MS: "1000000" }, () => measure("pipe 32, poll spins", pipelined(32), 32));
// A/B: the pipeline bucket's contexts (default: one per piece of a 128 batch, 2 to 4)
for (const [r, c] of [
  [32, 2],
  [32, 3],
  [16, 8],
])
  await withEnv({ TORCHC_PIPELINE_CONTEXTS: String(c) }, () =>
    measure(`pipe ${r}, ${c} contexts`, pipelined(r), r),
  );
console.log(`\n| EfficientNet-B0 fp16, batch ${BATCH} | compile s | GPU only (one piece / whole) | e2e plain host in/out | max err / max ref | vs static, 3 other inputs |`);
console.log("| --- | --- | --- | --- | --- | --- |");
for (const r of rows)
  console.log(`| ${r.variant} | ${r.compileS.toFixed(1)} | ${r.gpuMs.toFixed(3)} | **${r.e2eMs.toFixed(3)}** | ${r.error.toExponential(1)} | ${r.vsStatic.toExponential(1)} |`);
for (const r of rows) console.log(`  ${r.variant}: ${r.memory}`);
// the comparison can fail: distinct inputs give distinct outputs
if (staticOutputs)
  console.log(`  static module, input 1 against input 2: ${compareTensors(staticOutputs[0], staticOutputs[1]).relative.toExponential(1)}`);
writeFileSync(join(process.env.TORCHC_BENCH_OUT ?? ".", "host-pipeline.json"), JSON.stringify(rows, null, 1));

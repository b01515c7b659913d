/**
 * End-to-end latency on the GPU machine (host fp32 in, host fp32 out: what a Node.js service sees), for
 * EfficientNet-B0 fp16 at batch 1 and 128, beside the GPU-only time of the same module:
 * - plain: `await run([x])` on ordinary Float32Array inputs (rotating among 4 distinct ones);
 * - pinned: inputs from allocateHostInputs() (no staging copy on the host);
 * - pipelined: 2 execution contexts with 2 calls in flight; time per call at steady state;
 * - the three completion strategies (worker, poll, hostfn) at batch 1;
 * and the memory report. Needs TORCHC_RUNTIME_DIR from fixtures/export_runtime.py. Writes e2e.json into
 * $TORCHC_BENCH_OUT. `bash scripts/gpu.sh bench e2e`
 * E2E_BATCHES=128 picks the batches (default 1,128); E2E_QUICK=1 measures only GPU time, plain (host-copy pieces
 * queued a group per event-loop turn, the default, and all at once: TORCHC_COPY_QUEUE_GROUP=0) and pinned, one
 * line per batch, for A/Bs that need a process each (UV_THREADPOOL_SIZE, the copy threads).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../src/frontends/load-model.js";
import type { Tensor } from "../src/ir/tensor.js";
import { compile } from "../src/runtime/compile.js";
import { formatMemory } from "../src/runtime/execution.js";
import type { RunOptions } from "../src/runtime/execution.js";
import { readNpy } from "../src/util/npy.js";

const dir = process.env.TORCHC_RUNTIME_DIR ?? "/tmp/torchc-runtime";
const rows: Record<string, unknown>[] = [];

function stats(times: number[]): { median: number; p90: number; n: number } {
  const s = [...times].sort((a, b) => a - b);
  return { median: s[Math.floor((s.length - 1) / 2)], p90: s[Math.floor(0.9 * (s.length - 1))], n: s.length };
}

async function timeRuns(n: number, once: (i: number) => Promise<unknown>): Promise<{ median: number; p90: number; n: number }> {
  for (let i = 0; i < Math.min(20, n); i++) await once(i);
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await once(i);
    t.push(performance.now() - t0);
  }
  return stats(t);
}

function variants(x: Tensor, n: number): Tensor[] {
  return Array.from({ length: n }, (_, k) => ({
    ...x,
    data: (x.data as Float32Array).map((v) => v * (1 + 0.1 * k)),
  }));
}

async function measure(batch: number): Promise<void> {
  const model = await loadModel(join(dir, `efficientnet_b0_b${batch}.pt2`));
  const x = readNpy(join(dir, `efficientnet_b0_b${batch}`, "input_0.npy"));
  const xs = variants(x, 4);
  const n = batch === 1 ? 400 : 40;
  const t0 = performance.now();
  const one = await compile(model, { backend: "cuda", enabledPrecisions: ["fp16"] });
  const compileS = (performance.now() - t0) / 1000;
  const gpu = one.benchmark([x], { reps: batch === 1 ? 200 : 50 });
  const plain = await timeRuns(n, (i) => one.run([xs[i % 4]]));
  // A/B in the same process: the input's host copy on worker threads instead of the JS thread (batch 1 only).
  process.env.TORCHC_WORKER_COPY_MIN_BYTES = "0";
  const plainWorkerCopy = batch === 1 ? await timeRuns(n, (i) => one.run([xs[i % 4]])) : undefined;
  delete process.env.TORCHC_WORKER_COPY_MIN_BYTES;
  // A/B: the worker copies' piece size at batch 128 (default min(2 MiB, a quarter of the input)).
  const plainByChunk: Record<string, unknown> = {};
  if (batch > 1)
    for (const mib of [1, 4]) {
      process.env.TORCHC_COPY_CHUNK_BYTES = String(mib << 20);
      plainByChunk[`${mib}MiB`] = await timeRuns(n, (i) => one.run([xs[i % 4]]));
      delete process.env.TORCHC_COPY_CHUNK_BYTES;
    }
  const [pinnedIn] = one.allocateHostInputs();
  (pinnedIn.data as Float32Array).set(x.data as Float32Array);
  const pinned = await timeRuns(n, () => one.run([pinnedIn]));
  const [pinnedOut] = one.allocateHostOutputs();
  const pinnedBoth = await timeRuns(n, () => one.run([pinnedIn], { outputs: [pinnedOut] }));
  const strategies: Record<string, unknown> = {};
  for (const completion of ["worker", "poll", "hostfn"] as const) {
    const opts: RunOptions = { completion };
    strategies[completion] = await timeRuns(n, (i) => one.run([xs[i % 4]], opts));
    strategies[`${completion}Pinned`] = await timeRuns(n, () =>
      one.run([pinnedIn], { ...opts, outputs: [pinnedOut] }),
    );
  }
  // A/B (session 10): "poll" spinning for the whole wait, as before it handed long waits to a worker thread.
  process.env.TORCHC_POLL_SPIN_MS = "1000000";
  strategies.pollSpin = await timeRuns(n, (i) => one.run([xs[i % 4]], { completion: "poll" }));
  strategies.pollSpinPinned = await timeRuns(n, () =>
    one.run([pinnedIn], { completion: "poll", outputs: [pinnedOut] }),
  );
  delete process.env.TORCHC_POLL_SPIN_MS;
  const memory = one.memory();
  await one.dispose();
  // A/B (session 9): the image stem as cuDNN's convolution instead of the direct element kernel, and the
  // squeeze-excite pooling folded into the depthwise kernel (opt-in since session 9's H100 run found it slower).
  process.env.TORCHC_DIRECT_STEM = "0";
  const noStem = await compile(model, { backend: "cuda", enabledPrecisions: ["fp16"] });
  const gpuNoStem = noStem.benchmark([x], { reps: batch === 1 ? 200 : 50 });
  await noStem.dispose();
  delete process.env.TORCHC_DIRECT_STEM;
  process.env.TORCHC_FOLD_SPATIAL_MEAN = "1";
  const fold = await compile(model, { backend: "cuda", enabledPrecisions: ["fp16"] });
  const gpuFold = fold.benchmark([x], { reps: batch === 1 ? 200 : 50 });
  await fold.dispose();
  delete process.env.TORCHC_FOLD_SPATIAL_MEAN;
  const two = await compile(model, { backend: "cuda", enabledPrecisions: ["fp16"], contexts: 2 });
  const pipelined: Record<string, number> = {};
  for (const [label, input] of [["plain", xs], ["pinned", null]] as const) {
    let pins: Tensor[] = [];
    if (input === null) {
      pins = [two.allocateHostInputs()[0], two.allocateHostInputs()[0]];
      for (const p of pins) (p.data as Float32Array).set(x.data as Float32Array);
    }
    const get = (i: number) => (input === null ? pins[i % 2] : input[i % 4]);
    let i = 0;
    const worker = async () => {
      while (i < n + 20) await two.run([get(i++)]);
    };
    await Promise.all([worker(), worker()]);
    i = 0;
    const s = performance.now();
    await Promise.all([worker(), worker()]);
    pipelined[label] = (performance.now() - s) / (n + 20);
  }
  const memory2 = two.memory();
  await two.dispose();
  const row = { model: "efficientnet_b0", batch, compileS, gpu, gpuNoStem, gpuFold, plain, plainByChunk, plainWorkerCopy, pinned, pinnedBoth, strategies, pipelined, memory, memory2 };
  rows.push(row);
  console.log(JSON.stringify(row));
  console.log(`  contexts=1 ${formatMemory(memory)}`);
  console.log(`  contexts=2 ${formatMemory(memory2)}`);
}

/** E2E_QUICK: the copy-path figures only, labelled with the thread-pool size. */
async function measureQuick(batch: number): Promise<void> {
  const model = await loadModel(join(dir, `efficientnet_b0_b${batch}.pt2`));
  const x = readNpy(join(dir, `efficientnet_b0_b${batch}`, "input_0.npy"));
  const xs = variants(x, 4);
  const n = batch === 1 ? 400 : 40;
  const one = await compile(model, { backend: "cuda", enabledPrecisions: ["fp16"] });
  const gpu = one.benchmark([x], { reps: batch === 1 ? 200 : 50 });
  const plain = await timeRuns(n, (i) => one.run([xs[i % 4]]));
  process.env.TORCHC_COPY_QUEUE_GROUP = "0";
  const plainQueuedAtOnce = await timeRuns(n, (i) => one.run([xs[i % 4]]));
  delete process.env.TORCHC_COPY_QUEUE_GROUP;
  // inputs up to 1 MiB copied straight from the caller's array (the driver stages them), not through our staging
  process.env.TORCHC_PAGEABLE_DMA_MAX_BYTES = String(1 << 20);
  const plainPageable = await timeRuns(n, (i) => one.run([xs[i % 4]]));
  delete process.env.TORCHC_PAGEABLE_DMA_MAX_BYTES;
  const [pinnedIn] = one.allocateHostInputs();
  (pinnedIn.data as Float32Array).set(x.data as Float32Array);
  const pinned = await timeRuns(n, () => one.run([pinnedIn]));
  await one.dispose();
  const row = { model: "efficientnet_b0", batch, threads: process.env.UV_THREADPOOL_SIZE, gpu, plain, plainQueuedAtOnce, plainPageable, pinned };
  rows.push(row);
  console.log(JSON.stringify(row));
  console.log(
    `quick b${batch} threads=${row.threads}: GPU ${gpu.medianMs.toFixed(3)} | plain ${plain.median.toFixed(3)} | plain, pieces queued at once ${plainQueuedAtOnce.median.toFixed(3)} | plain, pageable DMA ${plainPageable.median.toFixed(3)} | pinned in ${pinned.median.toFixed(3)} ms`,
  );
}

const f = (s: { median: number }) => s.median.toFixed(3);
const batches = (process.env.E2E_BATCHES ?? "1,128").split(",").map(Number);
if (process.env.E2E_QUICK === "1") {
  for (const b of batches) await measureQuick(b);
  writeFileSync(join(process.env.TORCHC_BENCH_OUT ?? ".", "e2e-quick.json"), JSON.stringify(rows, null, 1));
  process.exit(0);
}
for (const b of batches) await measure(b);
console.log("\n| batch | GPU only | GPU only, stem on cuDNN | GPU only, SE pooling folded | e2e plain | e2e plain, worker-thread copy | e2e pinned in | e2e pinned in+out | 2 ctx pipelined plain | 2 ctx pipelined pinned | worker | poll | hostfn | worker pinned | poll pinned | hostfn pinned |");
console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows as never as {
  batch: number;
  gpu: { medianMs: number };
  gpuNoStem: { medianMs: number };
  gpuFold: { medianMs: number };
  plain: { median: number };
  plainWorkerCopy?: { median: number };
  pinned: { median: number };
  pinnedBoth: { median: number };
  pipelined: Record<string, number>;
  strategies: Record<string, { median: number }>;
}[]) {
  console.log(
    `| ${r.batch} | ${r.gpu.medianMs.toFixed(3)} | ${r.gpuNoStem.medianMs.toFixed(3)} | ${r.gpuFold.medianMs.toFixed(3)} | ${f(r.plain)} | ${r.plainWorkerCopy ? f(r.plainWorkerCopy) : "—"} | ${f(r.pinned)} | ${f(r.pinnedBoth)} | ${r.pipelined.plain.toFixed(3)} | ${r.pipelined.pinned.toFixed(3)} | ${f(r.strategies.worker)} | ${f(r.strategies.poll)} | ${f(r.strategies.hostfn)} | ${f(r.strategies.workerPinned)} | ${f(r.strategies.pollPinned)} | ${f(r.strategies.hostfnPinned)} |`,
  );
}
writeFileSync(join(process.env.TORCHC_BENCH_OUT ?? ".", "e2e.json"), JSON.stringify(rows, null, 1));

/**
 * One zoo model in one precision, in a process of its own (bench/zoo.bench.ts forks it): load, compile, run each
 * saved input against PyTorch eager fp32, count fallback nodes, time the compiled module. A process per run so
 * that a time limit can kill it, a native crash or a poisoned CUDA context costs one row, and memory goes back.
 * Talks to the parent over IPC: {stage}, {gpu: "wanted"} (waits for "granted": timing has the GPU to itself),
 * {result}. Standalone (no IPC) it prints the result as JSON:
 *   node bench/zoo-one.js '{"entry":"/tmp/torchc-zoo/tv.resnet18.json","precision":"fp16","backend":"cuda"}'
 */
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { loadModel } from "../src/frontends/load-model.js";
import type { Tensor } from "../src/ir/tensor.js";
import type { OpName } from "../src/ops/index.js";
import type { CompiledModule } from "../src/runtime/compile.js";
import { compile } from "../src/runtime/compile.js";
import { compareTensors } from "../src/util/compare.js";
import { readNpy } from "../src/util/npy.js";
import { type ErrorInfo, errorInfo, type PrecisionRun, type Stage } from "./zoo-classify.js";
import { type ZooEntry, zooPath } from "./zoo-entries.js";

export interface OneJob {
  /** The model's record (zoo.py's <name>.json); its file names are relative to its directory. */
  readonly entry: string;
  readonly precision: "fp32" | "fp16";
  readonly backend: "cuda" | "reference";
  /** compiled.benchmark() repetitions (cuda only). */
  readonly reps?: number;
}

export type ChildMessage =
  | { readonly type: "stage"; readonly stage: Stage }
  | { readonly type: "gpu"; readonly gpu: "wanted" | "released" }
  | { readonly type: "result"; readonly run: PrecisionRun; readonly error?: ErrorInfo };

function send(m: ChildMessage): Promise<void> {
  const p = process.send ? process.send.bind(process) : undefined;
  if (!p) {
    if (m.type === "result") process.stdout.write(`${JSON.stringify(m, null, 1)}\n`);
    return Promise.resolve();
  }
  return new Promise((done) => p(m, undefined, {}, () => done()));
}

/** Resolves when the parent grants the GPU (at once when run standalone). */
function gpuGranted(): Promise<void> {
  if (!process.send) return Promise.resolve();
  return new Promise((done) => {
    const on = (m: unknown) => {
      if ((m as { type?: string }).type === "gpu-granted") {
        process.off("message", on);
        done();
      }
    };
    process.on("message", on);
    void send({ type: "gpu", gpu: "wanted" });
  });
}

function nonFiniteCount(t: Tensor): number {
  if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) return 0;
  let n = 0;
  for (const v of t.data) if (!Number.isFinite(v)) n++;
  return n;
}

function fallbackOps(c: CompiledModule): PrecisionRun["fallbackOps"] {
  const byOp = new Map<string, { op: string; count: number; reason: string }>();
  for (const f of c.partition.report.fallbackNodes) {
    const o = byOp.get(f.op) ?? { op: f.op, count: 0, reason: f.reason.slice(0, 300) };
    o.count++;
    byOp.set(f.op, o);
  }
  return [...byOp.values()].sort((a, b) => b.count - a.count).slice(0, 12);
}

export async function runOne(job: OneJob): Promise<{ run: PrecisionRun; error?: ErrorInfo }> {
  const entry = JSON.parse(readFileSync(job.entry, "utf8")) as ZooEntry;
  const dir = dirname(job.entry);
  if (!entry.files) throw new Error(`${entry.name} has no exported files`);
  const files = entry.files;
  const out: { -readonly [K in keyof PrecisionRun]: PrecisionRun[K] } = { precision: job.precision };
  let stage: Stage = "load";
  let compiled: CompiledModule | undefined;
  try {
    await send({ type: "stage", stage });
    const t0 = performance.now();
    const model = await loadModel(zooPath(dir, files.pt2));
    const cases = files.cases.map((c) => ({
      input: readNpy(zooPath(dir, c.input)),
      outputs: c.outputs.map((f) => readNpy(zooPath(dir, f))),
    }));
    out.loadS = (performance.now() - t0) / 1000;
    stage = "compile";
    await send({ type: "stage", stage });
    const t1 = performance.now();
    const extra = entry.torchc_options ?? {};
    compiled = await compile(model, {
      backend: job.backend,
      enabledPrecisions: [job.precision],
      tf32: false,
      ...(extra.torchExecutedOps ? { torchExecutedOps: extra.torchExecutedOps as OpName[] } : {}),
      ...(extra.minBlockSize !== undefined ? { minBlockSize: extra.minBlockSize } : {}),
    });
    out.compileS = (performance.now() - t1) / 1000;
    const totals = compiled.partition.report.totals;
    out.nodes = totals.nodes;
    out.fallbackNodes = totals.fallbackNodes;
    out.fallbackOps = fallbackOps(compiled);
    out.segments = { engine: totals.engineSegments, fallback: totals.fallbackSegments };
    stage = "run";
    await send({ type: "stage", stage });
    const errs: number[] = [];
    let nonFinite = 0;
    for (const c of cases) {
      const outs = await compiled.run([c.input]);
      if (outs.length !== c.outputs.length)
        throw new Error(`the compiled model returns ${outs.length} outputs, PyTorch ${c.outputs.length}`);
      let worst = 0;
      for (const [j, ref] of c.outputs.entries()) {
        nonFinite += nonFiniteCount(outs[j]);
        worst = Math.max(worst, compareTensors(outs[j], ref).relative);
      }
      errs.push(worst);
    }
    out.relErrPerCase = errs;
    out.relErr = Math.max(...errs);
    out.nonFinite = nonFinite;
    if (job.backend === "cuda") {
      stage = "benchmark";
      await send({ type: "stage", stage });
      await gpuGranted();
      try {
        const r = compiled.benchmark([cases[0].input], { reps: job.reps ?? 100 });
        out.latency = { medianMs: r.medianMs, p90Ms: r.p90Ms, reps: r.reps };
      } finally {
        await send({ type: "gpu", gpu: "released" });
      }
    }
    return { run: out };
  } catch (e) {
    return { run: out, error: errorInfo(stage, e) };
  } finally {
    await compiled?.dispose().catch(() => undefined);
  }
}

// Run as a process (forked by the runner, or by hand): the job is argv[2].
if (process.argv[1] && /zoo-one\.[jt]s$/.test(process.argv[1])) {
  // The runner went away (killed at its time limit): nobody will read the result.
  process.on("disconnect", () => process.exit(2));
  const job = JSON.parse(process.argv[2] ?? "{}") as OneJob;
  const { run, error } = await runOne(job);
  await send({ type: "result", run, ...(error ? { error } : {}) });
  process.exit(0);
}

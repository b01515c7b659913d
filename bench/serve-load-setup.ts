/**
 * What the serving load benchmark runs, from the environment:
 * - on the GPU machine (default): timm EfficientNet-B0 (random weights, seeded) exported with a dynamic batch
 *   1..32 by fixtures/export_dynamic.py at run time, with PyTorch eager fp32's output for each of its 32 input
 *   rows. Without batching the server compiles it at a static batch of 1 (`--input-shape 1x3x224x224
 *   --max-batch 1`: what a batch-1 deployment runs); with batching, for the batch range 1–32 (opt 32) and
 *   `--max-batch 32` (merged requests run at their own size, in buckets 1, 2, 4, …, 32). fp16, cuda backend.
 * - SERVE_LOAD_DRY=1 (no GPU): the committed fixture mlp.pt2 (batch 4, 4 PyTorch rows) on the reference
 *   backend, batching by padding to the model's batch of 4, at small concurrency and short points.
 * - SERVE_MODEL (+ SERVE_INPUTS, SERVE_OUTPUTS: .npy rows and PyTorch's outputs; SERVE_ROW_SHAPE=20 or
 *   3x224x224 when the model has a dynamic batch, to serve it as above): any other model.
 * Every knob is an environment variable (listed at the top of bench/serve-load.bench.ts).
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { readNpy } from "../src/util/npy.js";
import type { Case } from "./serve-load-wire.js";

const here = dirname(fileURLToPath(import.meta.url));
// bench/ in a checkout, .gpu-carry/build/bench when compiled for the GPU machine.
const ROOT = [join(here, ".."), join(here, "..", "..", "..")].find((r) =>
  existsSync(join(r, "fixtures", "export_dynamic.py")),
);

export interface Setup {
  readonly dry: boolean;
  readonly what: string;
  readonly model: string;
  readonly cases: readonly Case[];
  readonly tolerance: number;
  /** `torchc serve` flags without and with dynamic batching. */
  readonly off: readonly string[];
  readonly on: readonly string[];
  /** Rows per request sent once to the batching server before measuring: builds each bucket, checks merging. */
  readonly warmRows: readonly number[];
  readonly concurrency: readonly number[];
  readonly warmS: number;
  readonly measureS: number;
  readonly threads: number;
  readonly maxBatch: number;
  readonly queueDelayUs: number;
  readonly instances: number;
  readonly processes: number;
  /** `--ingest-threads` of both servers (0: HTTP on the server's own thread). */
  readonly ingestThreads: number;
  readonly precision: string;
  readonly startTimeoutMs: number;
  readonly soak?: { readonly seconds: number; readonly concurrency: number; readonly malformedEvery: number };
}

const env = (name: string): string | undefined => {
  const v = process.env[name];
  return v === undefined || v === "" ? undefined : v;
};

function num(name: string, fallback: number): number {
  const v = env(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${v}: expected a non-negative number`);
  return n;
}

function list(name: string, fallback: readonly number[]): number[] {
  const v = env(name);
  if (v === undefined) return [...fallback];
  const xs = v.split(",").map(Number);
  if (xs.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`${name}=${v}: expected 1,16,128`);
  return xs;
}

/** Row r of an [N, …] fp32 tensor read from .npy. */
function rowsOf(path: string): Float32Array[] {
  const t = readNpy(path);
  if (t.dtype !== "float32") throw new Error(`${path}: ${t.dtype}, expected float32`);
  const per = t.data.length / t.shape[0];
  return Array.from({ length: t.shape[0] }, (_, r) => (t.data as Float32Array).slice(r * per, (r + 1) * per));
}

function casesFrom(inputs: string, outputs: string): Case[] {
  const x = rowsOf(inputs);
  const y = rowsOf(outputs);
  if (x.length !== y.length) throw new Error(`${inputs} has ${x.length} rows, ${outputs} ${y.length}`);
  return x.map((input, r) => ({ input, output: y[r] }));
}

/** fixtures/export_dynamic.py DIR 32 32, unless DIR already has its files (a warm machine). */
function exportEfficientNet(dir: string, maxBatch: number): void {
  const files = ["efficientnet_b0.dyn.pt2", "input.npy", `output_${maxBatch}.npy`].map((f) => join(dir, f));
  if (files.every(existsSync)) {
    console.log(`[serve-load] reusing the export in ${dir}`);
    return;
  }
  if (!ROOT) throw new Error("fixtures/export_dynamic.py not found beside the bench");
  const t0 = performance.now();
  const py = env("TORCHC_PYTHON") ?? "python3";
  const args = [join(ROOT, "fixtures", "export_dynamic.py"), dir, String(maxBatch), String(maxBatch)];
  const r = spawnSync(py, args, { encoding: "utf8", timeout: 240_000 });
  if (r.status !== 0)
    throw new Error(`export_dynamic.py failed (${r.status ?? r.signal}): ${String(r.stderr).slice(-2000)}`);
  console.log(
    `[serve-load] exported in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${r.stdout.trim()}`,
  );
}

export function readSetup(): Setup {
  const dry = env("SERVE_LOAD_DRY") === "1";
  const maxBatch = num("SERVE_MAX_BATCH", dry ? 4 : 32);
  const queueDelayUs = num("SERVE_QUEUE_DELAY_US", 500);
  const instances = num("SERVE_INSTANCES", 1);
  // Server processes for both servers (issue 16's comparison is batching on vs off at the same process count).
  const processes = num("SERVE_PROCESSES", 1);
  // HTTP on N threads feeding one model and batcher (--ingest-threads), for both servers too.
  const ingestThreads = num("SERVE_INGEST_THREADS", 0);
  const precision = env("SERVE_PRECISION") ?? (dry ? "fp32" : "fp16");
  const backend = env("SERVE_BACKEND") ?? (dry ? "reference" : "cuda");
  const common = [
    "--backend",
    backend,
    "--precision",
    precision,
    "--max-queue",
    String(num("SERVE_MAX_QUEUE", 1024)),
    ...(instances > 1 ? ["--instances", String(instances)] : []),
    ...(processes > 1 ? ["--processes", String(processes)] : []),
    ...(ingestThreads > 0 ? ["--ingest-threads", String(ingestThreads)] : []),
  ];
  const batching = ["--max-batch", String(maxBatch), "--max-queue-delay-us", String(queueDelayUs)];
  // A model exported with a dynamic batch: static batch 1 without batching, the range 1..maxBatch with it.
  const ranged = (row: string): [string[], string[]] => [
    [...common, "--input-shape", `1x${row}`, "--max-batch", "1"],
    [...common, "--input-shape", `1x${row}:${maxBatch}x${row}:${maxBatch}x${row}`, ...batching],
  ];
  let model: string;
  let cases: Case[];
  let off: string[];
  let on: string[];
  let what: string;
  if (env("SERVE_MODEL")) {
    model = env("SERVE_MODEL") as string;
    cases = casesFrom(env("SERVE_INPUTS") ?? "", env("SERVE_OUTPUTS") ?? "");
    const row = env("SERVE_ROW_SHAPE");
    [off, on] = row
      ? ranged(row)
      : [
          [...common, "--max-batch", "1"],
          [...common, ...batching],
        ];
    what = `${model}${row ? ` (batch range 1–${maxBatch} / static batch 1)` : ""}`;
  } else if (dry) {
    const models = join(ROOT ?? join(here, ".."), "fixtures", "models");
    model = join(models, "mlp.pt2");
    cases = casesFrom(join(models, "mlp.input.npy"), env("SERVE_OUTPUTS") ?? join(models, "mlp.output.npy"));
    off = [...common, "--max-batch", "1"];
    on = [...common, ...batching];
    what = "fixtures/models/mlp.pt2 (batch 4; dry run)";
  } else {
    const dir = env("SERVE_EXPORT_DIR") ?? "/tmp/torchc-serve-load";
    exportEfficientNet(dir, maxBatch);
    model = join(dir, "efficientnet_b0.dyn.pt2");
    cases = casesFrom(join(dir, "input.npy"), env("SERVE_OUTPUTS") ?? join(dir, `output_${maxBatch}.npy`));
    [off, on] = ranged("3x224x224");
    what = `timm efficientnet_b0 (random weights), batch range 1–${maxBatch} / static batch 1`;
  }
  const soakS = num("SOAK_S", 0);
  return {
    dry,
    what,
    model,
    cases,
    tolerance: num("SERVE_TOL", precision === "fp32" ? 1e-4 : 1e-2),
    off,
    on,
    warmRows: list(
      "SERVE_WARM_ROWS",
      [1, 2, 4, 8, 16, 32, 64, 128].filter((b) => b <= Math.min(maxBatch, cases.length)),
    ),
    concurrency: list("SERVE_CONCURRENCY", dry ? [1, 8] : [1, 16, 128]),
    warmS: num("SERVE_WARM_S", dry ? 0.3 : 2),
    measureS: num("SERVE_POINT_S", dry ? 1 : 12),
    threads: num("SERVE_THREADS", 4),
    maxBatch,
    queueDelayUs,
    instances,
    processes,
    ingestThreads,
    precision,
    startTimeoutMs: num("SERVE_START_S", 240) * 1000,
    soak:
      soakS > 0
        ? {
            seconds: soakS,
            concurrency: num("SOAK_CONCURRENCY", 64),
            malformedEvery: num("SOAK_MALFORMED_EVERY", 100),
          }
        : undefined,
  };
}

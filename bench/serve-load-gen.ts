/**
 * The load generator: `concurrency` closed-loop virtual users spread over up to `threads` worker threads
 * (./serve-load-worker.ts), so that one generator thread's event loop is not the ceiling. Closed loop: a user
 * sends its next request when the last one is answered, like autocannon's default (so latencies under overload
 * show as lower throughput, not as a growing queue of unsent requests).
 *
 * Why undici and not autocannon: every answer is read as binary-extension bytes and checked against PyTorch's
 * output for its input, and the soak mixes malformed requests in with their own expected status; autocannon
 * hands bodies to callbacks as strings and rotates a fixed request list. undici is one package without
 * dependencies (Node's own fetch is built on it), so the GPU carry grows by ~3 MiB.
 */
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Case, Wire } from "./serve-load-wire.js";
import type { WorkerJob, WorkerResult } from "./serve-load-worker.js";

export interface LoadOptions {
  readonly origin: string;
  readonly wire: Wire;
  readonly cases: readonly Case[];
  readonly tolerance: number;
  readonly concurrency: number;
  readonly warmS: number;
  readonly measureS: number;
  readonly malformedEvery?: number;
  readonly threads?: number;
  /** Called when the measured window opens and when it closes (server counters are read there). */
  readonly onWindow?: (edge: "open" | "close") => void;
}

export interface LoadResult {
  readonly concurrency: number;
  readonly measureS: number;
  /** Correct 200 answers per second inside the window. */
  readonly throughput: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Valid requests in the window that did not get a correct 200 answer. */
  readonly errors: number;
  readonly window: Record<string, number>;
  readonly total: Record<string, number>;
  readonly checked: number;
  readonly wrong: number;
  readonly worstRelative: number;
  readonly examples: readonly string[];
  readonly malformed: { sent: number; byStatus: Record<string, number>; byKind: Record<string, number> };
  /** The busiest generator thread's event-loop utilization in the window. */
  readonly generatorElu: number;
  readonly threads: number;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function add(into: Record<string, number>, from: Record<string, number>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const threads = Math.max(1, Math.min(o.threads ?? 4, o.concurrency));
  const here = fileURLToPath(import.meta.url);
  const script = new URL(`./serve-load-worker${extname(here)}`, import.meta.url);
  const workers = Array.from({ length: threads }, (_, t) => {
    const job: WorkerJob = {
      origin: o.origin,
      wire: o.wire,
      cases: o.cases,
      tolerance: o.tolerance,
      users: Array.from({ length: o.concurrency }, (_, u) => u).filter((u) => u % threads === t),
      warmMs: o.warmS * 1000,
      measureMs: o.measureS * 1000,
      malformedEvery: o.malformedEvery ?? 0,
    };
    if (extname(here) !== ".ts") return new Worker(script, { workerData: job });
    // In a checkout the worker is TypeScript: tsx's loader is not inherited by threads, so register it first.
    const boot = `import("tsx/esm/api").then((t) => { t.register(); return import(${JSON.stringify(script.href)}); })`;
    return new Worker(boot, { eval: true, workerData: job });
  });
  const results = workers.map(
    (w) =>
      new Promise<WorkerResult>((resolve, reject) => {
        w.on("message", (m: { result?: WorkerResult; error?: string }) => {
          if (m.result) resolve(m.result);
          else if (m.error) reject(new Error(`load worker: ${m.error}`));
        });
        w.on("error", reject);
        w.on("exit", (code) => reject(new Error(`load worker exited ${code} before reporting`)));
      }),
  );
  let timers: ReturnType<typeof setTimeout>[] = [];
  // Each edge exactly once: the threads can report a hair before the closing timer fires.
  const fired = new Set<"open" | "close">();
  const edge = (e: "open" | "close") => {
    if (fired.has(e)) return;
    fired.add(e);
    o.onWindow?.(e);
  };
  let done: WorkerResult[];
  try {
    // Every thread up (or one failed: its error, not a hang).
    const ready = workers.map((w) => new Promise<void>((resolve) => w.once("message", () => resolve())));
    await Promise.race([Promise.all(ready), Promise.all(results)]);
    const startAt = Date.now() + 50;
    for (const w of workers) w.postMessage({ startAt });
    timers = o.onWindow
      ? [
          setTimeout(() => edge("open"), startAt + o.warmS * 1000 - Date.now()),
          setTimeout(() => edge("close"), startAt + (o.warmS + o.measureS) * 1000 - Date.now()),
        ]
      : [];
    done = await Promise.all(results);
    if (o.onWindow) {
      edge("open");
      edge("close");
    }
  } finally {
    for (const t of timers) clearTimeout(t);
    await Promise.all(workers.map((w) => w.terminate()));
  }
  const lat = new Float64Array(done.reduce((a, r) => a + r.latencies.length, 0));
  let at = 0;
  for (const r of done) {
    lat.set(r.latencies, at);
    at += r.latencies.length;
  }
  lat.sort();
  const window: Record<string, number> = {};
  const total: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  const byKind: Record<string, number> = {};
  for (const r of done) {
    add(window, r.window);
    add(total, r.total);
    add(byStatus, r.malformed.byStatus);
    add(byKind, r.malformed.byKind);
  }
  const inWindow = Object.values(window).reduce((a, b) => a + b, 0);
  return {
    concurrency: o.concurrency,
    measureS: o.measureS,
    throughput: lat.length / o.measureS,
    p50Ms: percentile(lat, 0.5),
    p90Ms: percentile(lat, 0.9),
    p99Ms: percentile(lat, 0.99),
    maxMs: lat.length ? lat[lat.length - 1] : Number.NaN,
    errors: inWindow - (window["200"] ?? 0),
    window,
    total,
    checked: done.reduce((a, r) => a + r.checked, 0),
    wrong: total.wrong ?? 0,
    worstRelative: Math.max(...done.map((r) => r.worstRelative)),
    examples: done.flatMap((r) => r.examples).slice(0, 8),
    malformed: { sent: done.reduce((a, r) => a + r.malformed.sent, 0), byStatus, byKind },
    generatorElu: Math.max(...done.map((r) => r.elu)),
    threads,
  };
}

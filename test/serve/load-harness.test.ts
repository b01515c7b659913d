/**
 * The serving load benchmark's harness (bench/serve-load*.ts), on the reference backend with the mlp fixture
 * (4 rows with PyTorch's outputs), so that a GPU run does not spend device time finding a harness bug: the load
 * generator counts only correct answers, a wrong answer is caught however fast it comes, malformed requests
 * are answered 400, the soak's verdict, and the child-process server wrapper (start with a batch range as on the
 * GPU, /metrics, /proc, SIGTERM).
 * The whole benchmark end to end (two child servers, the table): `SERVE_LOAD_DRY=1 npx tsx bench/serve-load.bench.ts`.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runLoad } from "../../bench/serve-load-gen.js";
import { startServer } from "../../bench/serve-load-server.js";
import { soak } from "../../bench/serve-load-soak.js";
import {
  type Case,
  checkAnswer,
  MALFORMED_KINDS,
  malformedBody,
  requestBody,
  type Wire,
} from "../../bench/serve-load-wire.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { compile } from "../../src/runtime/compile.js";
import { type Server, serve } from "../../src/serve/server.js";
import { readNpy } from "../../src/util/npy.js";
import { dynamicArchive } from "../dynamic/make-dynamic.js";
import { MODELS, tempDir } from "../helpers.js";

const rows = (path: string): Float32Array[] => {
  const t = readNpy(path);
  const per = t.data.length / t.shape[0];
  return Array.from({ length: t.shape[0] }, (_, r) => (t.data as Float32Array).slice(r * per, (r + 1) * per));
};
const X = rows(join(MODELS, "mlp.input.npy"));
const Y = rows(join(MODELS, "mlp.output.npy")); // PyTorch
const CASES: Case[] = X.map((input, r) => ({ input, output: Y[r] }));
const WIRE: Wire = { model: "model", inputName: "x", rowShape: [20], outputName: "softmax" };
const TOL = 1e-4;

let server: Server;
beforeAll(async () => {
  const compiled = await compile(await loadModel(join(MODELS, "mlp.pt2")), { backend: "reference" });
  server = await serve(compiled, { port: 0, log: false, maxBatch: 4, maxQueueDelayUs: 500, maxQueue: 1024 });
});
afterAll(async () => {
  await server?.drain();
});

const post = (body: { headers: Record<string, string>; body: Buffer }) =>
  fetch(`${server.url}/v2/models/model/infer`, { method: "POST", headers: body.headers, body: body.body });

describe("serve-load harness: requests and checks", () => {
  it("a 3-row request's answer matches PyTorch; the same answer checked against swapped rows fails", async () => {
    const r = await post(requestBody(WIRE, X.slice(0, 3)));
    expect(r.status).toBe(200);
    const bytes = new Uint8Array(await r.arrayBuffer());
    const h = r.headers.get("inference-header-content-length") ?? undefined;
    const ok = checkAnswer(WIRE, h, bytes, Y.slice(0, 3), TOL);
    expect(ok.ok).toBe(true);
    expect(ok.relative).toBeLessThanOrEqual(TOL);
    const swapped = checkAnswer(WIRE, h, bytes, [Y[0], Y[2], Y[1]], TOL);
    expect(swapped.ok).toBe(false);
    expect(swapped.why).toMatch(/max\|err\|\/max\|ref\|/);
    expect(checkAnswer(WIRE, h, bytes, Y.slice(0, 2), TOL).ok).toBe(false); // a row too many in the answer
  });

  it.each(MALFORMED_KINDS)("a malformed request (%s) is answered 400", async (kind) => {
    const r = await post(malformedBody(WIRE, X[0], kind));
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: string }).error.length).toBeGreaterThan(0);
  });
});

describe("serve-load harness: the load generator", () => {
  it("counts correct answers at concurrency 4 over 2 threads, with latencies and batches merged", async () => {
    const before = server.batcher.stats;
    const r = await runLoad({
      origin: server.url,
      wire: WIRE,
      cases: CASES,
      tolerance: TOL,
      concurrency: 4,
      warmS: 0.2,
      measureS: 0.6,
      threads: 2,
    });
    expect(r.threads).toBe(2);
    expect(r.errors).toBe(0);
    expect(r.wrong).toBe(0);
    expect(r.window["200"]).toBeGreaterThan(10);
    expect(r.throughput).toBeCloseTo(r.window["200"] / 0.6, 6);
    expect(r.checked).toBeGreaterThanOrEqual(r.total["200"]);
    expect(r.p50Ms).toBeGreaterThan(0);
    expect(r.p50Ms).toBeLessThanOrEqual(r.p99Ms);
    expect(r.p99Ms).toBeLessThanOrEqual(r.maxMs);
    const after = server.batcher.stats;
    // the server saw every valid request and merged some of them
    expect(after.rows - before.rows).toBe(r.total["200"]);
    expect(after.batches - before.batches).toBeLessThan(after.rows - before.rows);
  });

  it("a wrong answer is caught however fast it comes (references rotated by one row)", async () => {
    const rotated = CASES.map((c, k) => ({ input: c.input, output: Y[(k + 1) % Y.length] }));
    const r = await runLoad({
      origin: server.url,
      wire: WIRE,
      cases: rotated,
      tolerance: TOL,
      concurrency: 2,
      warmS: 0,
      measureS: 0.3,
      threads: 1,
    });
    expect(r.total["200"] ?? 0).toBe(0);
    expect(r.wrong).toBeGreaterThan(0);
    expect(r.wrong).toBe(r.checked);
    expect(r.throughput).toBe(0);
    expect(r.examples[0]).toMatch(/^case \d: max\|err\|/);
  });

  it("the soak mixes in all three malformed kinds, each answered 400, and passes on a healthy server", async () => {
    const child = {
      label: "in-process",
      url: server.url,
      pid: process.pid,
      exit: undefined,
      rssBytes: () => process.memoryUsage().rss,
      cpuSeconds: () => undefined,
      batchRows: async () => ({
        rows: 0,
        batches: 0,
        gathered: 0,
        merged: 0,
        slotBodies: 0,
        allocatedBodies: 0,
        queueS: 0,
        queued: 0,
        computeS: 0,
        computed: 0,
      }),
      stderrTail: () => "",
      stop: async () => ({ code: 0, signal: null }),
    };
    const r = await soak(
      child,
      WIRE,
      { cases: CASES, tolerance: TOL, threads: 2 },
      { seconds: 0.8, concurrency: 4, malformedEvery: 5 },
    );
    expect(r.failures).toEqual([]);
    expect(r.failedValid).toBe(0);
    expect(Object.keys(r.malformed.byKind).sort()).toEqual([...MALFORMED_KINDS].sort());
    expect(r.malformed.byStatus).toEqual({ "400": r.malformed.sent });
    expect(r.valid["200"]).toBeGreaterThan(0);
    expect(r.readyAfter).toBe(true);
    expect(Number.isFinite(r.rss.growthMiB)).toBe(true);
  });
});

describe("serve-load harness: torchc serve as a child process", () => {
  it("starts from the CLI with a batch range (the GPU run's flags), reports batches, RSS and CPU, exits 0 on SIGTERM", async () => {
    const s = await startServer({
      label: "child",
      model: dynamicArchive({ name: "mlp", batch: 4, min: 1, max: 8 }),
      flags: ["--backend", "reference", "--input-shape", "1x20:4x20:4x20", "--max-batch", "4"],
      logFile: join(tempDir(), "child.log"),
      timeoutMs: 30_000,
    });
    try {
      const r = await fetch(`${s.url}/v2/models/model/infer`, {
        method: "POST",
        ...requestBody(WIRE, X.slice(0, 3)),
      });
      expect(r.status).toBe(200);
      // one input merged on the batching thread (no ingest threads: no slots, nothing gathered)
      const counts = await s.batchRows();
      expect(counts).toMatchObject({
        rows: 3,
        batches: 1,
        gathered: 0,
        merged: 1,
        slotBodies: 0,
        allocatedBodies: 0,
        queued: 1,
        computed: 1,
      });
      expect(counts.queueS).toBeGreaterThanOrEqual(0);
      expect(counts.computeS).toBeGreaterThan(0);
      expect(s.rssBytes()).toBeGreaterThan(10 << 20);
      expect(s.cpuSeconds()).toBeGreaterThan(0);
    } finally {
      expect(await s.stop()).toEqual({ code: 0, signal: null });
    }
    expect(s.exit).toEqual({ code: 0, signal: null });
  }, 30_000);
});

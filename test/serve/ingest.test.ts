/**
 * `torchc serve --ingest-threads`: the limits checked before anything loads, the messages between an ingest thread
 * and the batcher's thread (errors keep their status, request bodies move rather than copy, results own their
 * bytes), and several threads on one port answering every request from the one batcher (Node 22.12+). The REST
 * conformance suite runs on one ingest thread in serve.test.ts.
 */
import { spawnSync } from "node:child_process";
import { type AddressInfo, createServer } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { compareTensors } from "../../src/cli/compare.js";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import { DeadlineError, QueueFullError } from "../../src/serve/batcher.js";
import { InferenceClient } from "../../src/serve/client.js";
import { startIngestThreads } from "../../src/serve/ingest.js";
import { ingestThreadsRefusal, reusePortSupported } from "../../src/serve/ingest-limits.js";
import { fromWireError, ownedOutputs, toWireError, transferables } from "../../src/serve/ingest-protocol.js";
import { ProtocolError } from "../../src/serve/protocol.js";
import { type Server, serve } from "../../src/serve/server.js";
import { MODELS, ROOT } from "../helpers.js";
import { row, X, Y } from "./support.js";

describe("--ingest-threads: what is accepted", () => {
  it("1 to 64 threads; more than one needs SO_REUSEPORT (Node 22.12+, 23.1+)", () => {
    expect(ingestThreadsRefusal(0)).toMatch(/from 1 to 64, got 0/);
    expect(ingestThreadsRefusal(65)).toMatch(/from 1 to 64, got 65/);
    expect(ingestThreadsRefusal(1.5)).toMatch(/integer/);
    expect(ingestThreadsRefusal(1, "20.20.2")).toBeUndefined();
    expect(ingestThreadsRefusal(4, "20.20.2")).toBe(
      "--ingest-threads 4 needs Node 22.12 or newer (several threads on one port need SO_REUSEPORT); this is Node 20.20.2: use --ingest-threads 1 or --processes",
    );
    for (const [v, ok] of [
      ["22.11.0", false],
      ["22.12.0", true],
      ["22.21.1", true],
      ["23.0.0", false],
      ["23.1.0", true],
      ["24.0.0", true],
    ] as const)
      expect([v, reusePortSupported(v)]).toEqual([v, ok]);
  });

  it("the command refuses bad counts and --processes with it in one line, before loading the model", () => {
    const run = (...flags: string[]) =>
      spawnSync(
        process.execPath,
        [
          join(ROOT, "bin", "torchc.js"),
          "serve",
          join(MODELS, "mlp.pt2"),
          "--backend",
          "reference",
          ...flags,
        ],
        { encoding: "utf8", timeout: 60_000 },
      );
    const both = run("--ingest-threads", "2", "--processes", "2");
    expect(both.status).not.toBe(0);
    expect(both.stderr.trim()).toMatch(/--ingest-threads and --processes do not combine/);
    expect(both.stderr).not.toMatch(/\n\s+at /);
    const zero = run("--ingest-threads", "0");
    expect(zero.status).not.toBe(0);
    expect(zero.stderr.trim()).toMatch(/--ingest-threads 0: expected an integer ≥ 1/);
  }, 120_000);
});

describe("--ingest-threads: the messages between threads", () => {
  it("errors keep their kind, status and Retry-After across threads", () => {
    const round = (e: Error) => fromWireError(toWireError(e));
    const p = round(new ProtocolError("unknown output 'z'", 404));
    expect(p).toBeInstanceOf(ProtocolError);
    expect([(p as ProtocolError).status, p.message]).toEqual([404, "unknown output 'z'"]);
    const q = round(new QueueFullError(3));
    expect(q).toBeInstanceOf(QueueFullError);
    expect((q as QueueFullError).retryAfterS).toBe(3);
    expect(round(new DeadlineError())).toBeInstanceOf(DeadlineError);
    const other = round(new TypeError("injected failure"));
    expect(other.constructor).toBe(Error);
    expect(other.message).toBe("injected failure");
  });

  it("request bodies move (each large allocation once), small ones are copied", () => {
    const body = new ArrayBuffer(1 << 20);
    const a: Tensor = { dtype: "float32", shape: [4], data: new Float32Array(body, 0, 4) };
    const b: Tensor = { dtype: "float32", shape: [4], data: new Float32Array(body, 64, 4) };
    const small: Tensor = { dtype: "float32", shape: [4], data: new Float32Array(4) };
    expect(transferables([a, b, small])).toEqual([body]);
  });

  it("results are copied out of the batch's buffer, so that only their own bytes cross", () => {
    const batch = new Float32Array(40).map((_, i) => i);
    const view: Tensor = { dtype: "float32", shape: [1, 10], data: batch.subarray(10, 20) };
    const [owned] = ownedOutputs([{ name: "y", tensor: view }]);
    expect(owned.tensor.data.buffer.byteLength).toBe(40);
    batch.fill(-1);
    expect(Array.from(owned.tensor.data as Float32Array)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  });
});

let server: Server | undefined;
afterEach(async () => {
  await server?.drain();
  server = undefined;
});

/** A port nothing listens on now. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("--ingest-threads: start-up failures", () => {
  it("a gRPC port in use fails serve() and leaves no HTTP thread listening", async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const grpcPort = (busy.address() as AddressInfo).port;
    const port = await freePort();
    try {
      const compiled = await compile(await loadModel(join(MODELS, "mlp.pt2")), { backend: "reference" });
      await expect(serve(compiled, { port, grpcPort, log: false, ingestThreads: 1 })).rejects.toThrow();
      // the HTTP port is free again: the thread that took it was closed
      const again = createServer();
      await new Promise<void>((resolve, reject) => {
        again.once("error", reject);
        again.listen(port, "127.0.0.1", () => resolve());
      });
      await new Promise<void>((r) => again.close(() => r()));
      await compiled.dispose();
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
  }, 30_000);

  it("an HTTP port in use is an error from serve(), not a hang", async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const port = (busy.address() as AddressInfo).port;
    try {
      const compiled = await compile(await loadModel(join(MODELS, "mlp.pt2")), { backend: "reference" });
      await expect(serve(compiled, { port, log: false, ingestThreads: 1 })).rejects.toThrow(/EADDRINUSE/);
      await compiled.dispose();
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
  }, 30_000);
});

describe("--ingest-threads 3: three threads on one port, one batcher", () => {
  it.skipIf(!reusePortSupported())(
    `every request answered with its own row, merged across threads (needs Node 22.12+; this is ${process.versions.node})`,
    async () => {
      const compiled = await compile(await loadModel(join(MODELS, "mlp.pt2")), { backend: "reference" });
      server = await serve(compiled, { port: 0, log: false, ingestThreads: 3, maxQueueDelayUs: 50_000 });
      // one client per request: separate connections, which the kernel spreads over the threads
      const outs = await Promise.all(
        Array.from({ length: 24 }, (_, k) =>
          new InferenceClient(server!.url).infer({ x: row(X, k % 4) }, { binary: k % 2 === 0 }),
        ),
      );
      for (const [k, o] of outs.entries())
        expect(compareTensors(o.softmax, row(Y, k % 4)).relative).toBeLessThanOrEqual(1e-4);
      expect(server.batcher.stats.rows).toBe(24);
      expect(server.batcher.stats.batches).toBeLessThan(24);
      // each thread's count and another thread's /metrics ask cross on different ports: poll briefly
      const counted = /torchc_requests_total\{model="model",status="200"\} 24/;
      let metrics = "";
      for (let i = 0; i < 50 && !counted.test(metrics); i++) {
        metrics = await (await fetch(new URL("/metrics", server.url))).text();
        if (!counted.test(metrics)) await new Promise((r) => setTimeout(r, 20));
      }
      expect(metrics).toMatch(counted);
    },
    30_000,
  );
});

describe("--ingest-threads 1 with request slots (TORCHC_SERVE_INGEST_SLOTS)", () => {
  it("bodies land in the thread's shared slots, each freed once answered, with spills to allocations when all are taken", async () => {
    const compiled = await compile(await loadModel(join(MODELS, "mlp.pt2")), { backend: "reference" });
    const before = process.env.TORCHC_SERVE_INGEST_SLOTS;
    process.env.TORCHC_SERVE_INGEST_SLOTS = "2";
    try {
      server = await serve(compiled, { port: 0, log: false, ingestThreads: 1, maxQueueDelayUs: 20_000 });
    } finally {
      if (before === undefined) delete process.env.TORCHC_SERVE_INGEST_SLOTS;
      else process.env.TORCHC_SERVE_INGEST_SLOTS = before;
    }
    const c = new InferenceClient(server.url);
    // one at a time: every body fits a slot freed by the answer before it
    for (let k = 0; k < 6; k++) {
      const o = await c.infer({ x: row(X, k % 4) }, { binary: true });
      expect(compareTensors(o.softmax, row(Y, k % 4)).relative).toBeLessThanOrEqual(1e-4);
    }
    // a malformed body in a slot answers 400 and frees its slot too
    const header = new TextEncoder().encode(
      JSON.stringify({
        inputs: [{ name: "x", shape: [1, 20], datatype: "FP32", parameters: { binary_data_size: 80 } }],
      }),
    );
    for (let k = 0; k < 3; k++) {
      const bad = await fetch(new URL("/v2/models/model/infer", server.url), {
        method: "POST",
        headers: {
          "content-type": "application/octet-stream",
          "inference-header-content-length": String(header.byteLength),
        },
        body: Buffer.concat([header, new Uint8Array(40)]),
      });
      expect(bad.status).toBe(400);
    }
    // twelve at once over two slots: the rest spill to allocations, every answer still its own row
    const outs = await Promise.all(
      Array.from({ length: 12 }, (_, k) =>
        new InferenceClient(server!.url).infer({ x: row(X, k % 4) }, { binary: k !== 5 }),
      ),
    );
    for (const [k, o] of outs.entries())
      expect(compareTensors(o.softmax, row(Y, k % 4)).relative).toBeLessThanOrEqual(1e-4);
    const counted = (place: string) =>
      new RegExp(`torchc_request_bodies_total\\{model="model",place="${place}"\\} (\\d+)`);
    let metrics = "";
    for (let i = 0; i < 50 && !/status="200"\} 18/.test(metrics); i++) {
      metrics = await (await fetch(new URL("/metrics", server.url))).text();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(metrics).toMatch(/status="200"\} 18/);
    const inSlots = Number(counted("slot").exec(metrics)?.[1] ?? 0);
    const spilled = Number(counted("allocation").exec(metrics)?.[1] ?? 0);
    // 6 one at a time + 3 malformed + at least 2 of the 12 (the slots freed by then), 11 binary bodies at once
    expect(inSlots).toBeGreaterThanOrEqual(6 + 3 + 2);
    expect(spilled).toBeGreaterThanOrEqual(1);
    expect(inSlots + spilled).toBe(6 + 3 + 11);
    // the reference backend gathers nothing: every batch input was merged on the batcher's thread
    expect(server.batcher.stats.gatheredInputs).toBe(0);
  }, 30_000);
});

describe("--ingest-threads: request slots' registration", () => {
  it("each thread's slots are registered once and released once, after its last request was answered", async () => {
    const events: string[] = [];
    let answer: (() => void) | undefined;
    const spec = { name: "x", dtype: "float32" as const, shape: [4, 20] };
    const side = await startIngestThreads(
      1,
      {
        name: "model",
        metadata: {},
        inputs: [spec],
        batching: true,
        bodyLimit: 1 << 20,
        log: false,
        host: "127.0.0.1",
        port: 0,
        slots: {
          slotBytes: 4096 * 6,
          count: 3,
          register(memory) {
            events.push(`register ${memory.byteLength}`);
            return { offset: 0, bytes: memory.byteLength, release: () => events.push("release") };
          },
        },
      },
      {
        draining: () => false,
        // the answer waits until the test lets it go: the request is in flight when the server closes
        infer: (d) =>
          new Promise((resolve) => {
            events.push(`infer ${d.tensors[0].data.buffer instanceof SharedArrayBuffer ? "slot" : "heap"}`);
            answer = () => {
              events.push("answered");
              resolve([{ name: "y", tensor: d.tensors[0] }]);
            };
          }),
        count: () => {},
        metrics: async () => ({ contentType: "text/plain", text: "" }),
      },
    );
    const pending = new InferenceClient(side.url).infer({ x: row(X, 0) }, { binary: true });
    for (let i = 0; i < 100 && !answer; i++) await new Promise((r) => setTimeout(r, 10));
    expect(events).toEqual([`register ${4096 * 6 * 3 + 4096}`, "infer slot"]);
    const closed = side.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(events).not.toContain("release"); // its request is still being answered
    const t0 = performance.now();
    answer!();
    const out = await pending;
    expect(Array.from(out.y.data as Float32Array)).toEqual(Array.from(row(X, 0).data as Float32Array));
    await closed;
    // the answer closed its keep-alive connection, so the thread ended at once (not after its 10 s grace)
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(events).toEqual([`register ${4096 * 6 * 3 + 4096}`, "infer slot", "answered", "release"]);
  }, 30_000);
});

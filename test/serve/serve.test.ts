import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { referenceBackend } from "../../src/backends/reference/index.js";
import { compareTensors } from "../../src/cli/compare.js";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Graph } from "../../src/ir/graph.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import type { ExecutionContext } from "../../src/runtime/execution.js";
import type { Backend, SegmentRunner } from "../../src/runtime/segment-runner.js";
import { InferenceClient, type InferenceError } from "../../src/serve/client.js";
import { grpc, loadInferenceService } from "../../src/serve/grpc.js";
import { type ServeOptions, type Server, serve } from "../../src/serve/server.js";
import { MODELS } from "../helpers.js";
import { logged, row, servedUrl, spawnServe, X, Y } from "./support.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The reference backend with contexts that take `delayMs` per run and fail on a marker value (999). */
function slowBackend(delayMs: number): Backend {
  return {
    ...referenceBackend,
    name: "slow-reference",
    createContext(graph: Graph, runners: readonly SegmentRunner[]): ExecutionContext {
      return {
        async run(inputs) {
          await sleep(delayMs);
          const x = inputs[0] as Tensor;
          if ((x.data as Float32Array).includes(999)) throw new Error("injected failure");
          const values = new Map<string, Tensor>([[graph.inputs[0], x]]);
          for (const r of runners) for (const [k, v] of await r.run(values)) values.set(k, v);
          return graph.outputs.map((n) => values.get(n)!);
        },
        memory: { activations: 0, workspaces: 0, io: 0, pinnedHost: 0 },
        dispose() {},
      };
    },
  };
}

let server: Server | undefined;
afterEach(async () => {
  await server?.drain();
  server = undefined;
});

async function start(
  opts: ServeOptions = {},
  backend: Backend | "reference" = "reference",
): Promise<InferenceClient> {
  return startWith({}, opts, backend);
}

/** Where HTTP is answered: on the server's own thread, or on an ingest thread that hands requests over. */
const MODES: readonly [string, ServeOptions][] = [
  ["this thread", {}],
  ["an ingest thread (--ingest-threads 1)", { ingestThreads: 1 }],
];

async function startWith(
  mode: ServeOptions,
  opts: ServeOptions = {},
  backend: Backend | "reference" = "reference",
): Promise<InferenceClient> {
  opts = { ...mode, ...opts };
  const compiled = await compile(await loadModel(join(MODELS, "mlp.pt2")), { backend });
  server = await serve(compiled, { port: 0, log: false, ...opts });
  return new InferenceClient(server.url, opts.name ?? "model");
}

const post = (path: string, body: unknown) =>
  fetch(new URL(path, server!.url), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

for (const [where, mode] of MODES) {
  describe(`torchc serve, HTTP on ${where}: Open Inference Protocol endpoints`, () => {
    const start = (opts: ServeOptions = {}, backend: Backend | "reference" = "reference") =>
      startWith(mode, opts, backend);
    it("health, server and model metadata, readiness", async () => {
      const c = await start({ name: "mlp", version: "3" });
      expect(await c.live()).toBe(true);
      expect(await c.ready()).toBe(true);
      expect(await (await fetch(new URL("/v2", server!.url))).json()).toMatchObject({ name: "torchc" });
      expect(await c.metadata()).toEqual({
        name: "mlp",
        versions: ["3"],
        platform: "torchc",
        inputs: [{ name: "x", datatype: "FP32", shape: [-1, 20] }],
        outputs: [{ name: "softmax", datatype: "FP32", shape: [-1, 10] }],
      });
    });

    it("infer: the full batch matches PyTorch, with the request id echoed", async () => {
      const c = await start();
      const r = await post("/v2/models/model/infer", {
        id: "req-1",
        inputs: [{ name: "x", shape: [4, 20], datatype: "FP32", data: Array.from(X.data as Float32Array) }],
      });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { id: string; outputs: { shape: number[]; data: number[] }[] };
      expect(body.id).toBe("req-1");
      const out: Tensor = {
        dtype: "float32",
        shape: body.outputs[0].shape,
        data: Float32Array.from(body.outputs[0].data),
      };
      expect(compareTensors(out, Y).relative).toBeLessThanOrEqual(1e-4);
      const viaClient = await c.infer({ x: X });
      expect(compareTensors(viaClient.softmax, Y).relative).toBeLessThanOrEqual(1e-4);
    });

    it("dynamic batching: 16 concurrent one-row requests are merged and each gets its own row", async () => {
      // Each request must get its own row back: only checkable if PyTorch's rows differ from each other.
      for (let k = 1; k < 4; k++) expect(compareTensors(row(Y, k), row(Y, 0)).relative).toBeGreaterThan(1e-2);
      const c = await start({ maxQueueDelayUs: 100_000 });
      const outs = await Promise.all(Array.from({ length: 16 }, (_, k) => c.infer({ x: row(X, k % 4) })));
      for (const [k, o] of outs.entries())
        expect(compareTensors(o.softmax, row(Y, k % 4)).relative).toBeLessThanOrEqual(1e-4);
      const stats = server!.batcher.stats;
      expect(stats.rows).toBe(16);
      expect(stats.batches).toBeLessThan(16);
      const metrics = await (await fetch(new URL("/metrics", server!.url))).text();
      expect(metrics).toMatch(/torchc_requests_total\{model="model",status="200"\} 16/);
      expect(metrics).toMatch(/torchc_batch_rows_count\{model="model"\} \d+/);
    });

    it.each([
      [
        { inputs: [{ name: "y", shape: [1, 20], datatype: "FP32", data: new Array(20).fill(0) }] },
        /unknown input 'y'/,
      ],
      [
        { inputs: [{ name: "x", shape: [1, 20], datatype: "INT64", data: new Array(20).fill(0) }] },
        /datatype INT64, expected FP32/,
      ],
      [
        { inputs: [{ name: "x", shape: [5, 20], datatype: "FP32", data: new Array(100).fill(0) }] },
        /shape \[5, 20\], expected \[1\.\.4, 20\]/,
      ],
      [
        { inputs: [{ name: "x", shape: [1, 21], datatype: "FP32", data: new Array(21).fill(0) }] },
        /shape \[1, 21\]/,
      ],
      [
        { inputs: [{ name: "x", shape: [1, 20], datatype: "FP32", data: new Array(19).fill(0) }] },
        /19 values for shape \[1, 20\]/,
      ],
      [
        { inputs: [{ name: "x", shape: [1, 20], datatype: "FP32", data: ["a", ...new Array(19).fill(0)] }] },
        /value 0 is not a number/,
      ],
      [{ nothing: true }, /no 'inputs' list/],
      ["{not json", /json/i],
    ])("a malformed request answers 400 with one line: %j", async (body, msg) => {
      await start();
      const r = await post("/v2/models/model/infer", body);
      expect(r.status).toBe(400);
      const { error } = (await r.json()) as { error: string };
      expect(error).toMatch(msg);
      expect(error).not.toContain("\n");
      expect(server!.batcher.stats.batches).toBe(0);
    });

    it("a body over the limit is refused (413) before it is parsed", async () => {
      await start({ bodyLimit: 1000 });
      const r = await post("/v2/models/model/infer", {
        inputs: [{ name: "x", shape: [4, 20], datatype: "FP32", data: new Array(80).fill(0.123456789) }],
      });
      expect(r.status).toBe(413);
    });

    it("a full queue answers 503 with Retry-After", async () => {
      const c = await start({ maxQueue: 4, maxQueueDelayUs: 0 }, slowBackend(300));
      const results = await Promise.allSettled(
        Array.from({ length: 16 }, (_, k) => c.infer({ x: row(X, k % 4) })),
      );
      const refused = results
        .filter((r) => r.status === "rejected")
        .map((r) => (r as PromiseRejectedResult).reason as InferenceError);
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.every((e) => e.status === 503 && Number(e.retryAfter) >= 1)).toBe(true);
      expect(results.some((r) => r.status === "fulfilled")).toBe(true);
    });

    it("a request whose deadline passes answers 504; a failing run answers 500 for that request only", async () => {
      // maxBatch 1: one request per run, so the failing request shares its run with no other.
      const c = await start({ maxQueueDelayUs: 0, maxBatch: 1 }, slowBackend(30));
      await expect(c.infer({ x: row(X, 0) }, { timeoutUs: 1000 })).rejects.toMatchObject({ status: 504 });
      const bad: Tensor = { ...row(X, 0), data: new Float32Array(20).fill(999) };
      const [failed, fine] = await Promise.allSettled([c.infer({ x: bad }), c.infer({ x: row(X, 1) })]);
      expect((failed as PromiseRejectedResult).reason).toMatchObject({ status: 500 });
      expect(((failed as PromiseRejectedResult).reason as Error).message).toMatch(/injected failure/);
      expect(fine.status).toBe("fulfilled");
      expect(await c.ready()).toBe(true);
    });

    it("drain: stops taking requests, answers the queued ones, then closes", async () => {
      const c = await start({ maxQueueDelayUs: 0 }, slowBackend(80));
      const inFlight = c.infer({ x: row(X, 2) });
      // Drain only once the request is in the server (queued or running), however slow the machine.
      while (server!.batcher.stats.queuedRows + server!.batcher.stats.inFlight === 0) await sleep(2);
      const s = server!;
      server = undefined;
      const draining = s.drain();
      const readyDuring = await fetch(new URL("/v2/health/ready", s.url))
        .then((r) => r.status)
        .catch(() => "closed");
      const out = await inFlight;
      expect(compareTensors(out.softmax, row(Y, 2)).relative).toBeLessThanOrEqual(1e-4);
      await draining;
      expect([503, "closed"]).toContain(readyDuring);
      await expect(fetch(new URL("/v2/health/live", s.url))).rejects.toThrow();
    });

    it("torchc serve: SIGTERM drains the request in flight and exits 0", async () => {
      const child = spawnServe(join(MODELS, "mlp.pt2"), [
        "--grpc-port",
        "0",
        "--max-queue-delay-us",
        "400000",
        ...(mode.ingestThreads ? ["--ingest-threads", String(mode.ingestThreads)] : []),
      ]);
      const { url } = await servedUrl(child);
      const client = new InferenceClient(url);
      // The server logs each request it receives (JSON lines on stdout): send SIGTERM once ours is there.
      const received = logged(child, "/v2/models/model/infer");
      const pending = client.infer({ x: row(X, 3) });
      await received;
      await sleep(50); // from received to queued is microseconds; the batch waits 400 ms
      const exited = new Promise<number | null>((r) => child.on("exit", r));
      child.kill("SIGTERM");
      const out = await pending;
      expect(compareTensors(out.softmax, row(Y, 3)).relative).toBeLessThanOrEqual(1e-4);
      expect(await exited).toBe(0);
    }, 30_000);
  });

  describe(`torchc serve, HTTP on ${where}: the binary tensor data extension`, () => {
    const start = (opts: ServeOptions = {}) => startWith(mode, opts);
    it("binary inputs and outputs give the same answer as JSON", async () => {
      const c = await start();
      const viaJson = await c.infer({ x: X });
      const viaBinary = await c.infer({ x: X }, { binary: true });
      expect(compareTensors(viaBinary.softmax, viaJson.softmax).relative).toBe(0);
      expect(compareTensors(viaBinary.softmax, Y).relative).toBeLessThanOrEqual(1e-4);
      const meta = (await (await fetch(new URL("/v2", server!.url))).json()) as { extensions: string[] };
      expect(meta.extensions).toContain("binary_tensor_data");
    });

    it("binary one-row requests, merged and in rounds that reuse their bodies' memory, each get their own row", async () => {
      const c = await start({ maxQueueDelayUs: 20_000 });
      for (let round = 0; round < 3; round++) {
        const outs = await Promise.all(
          Array.from({ length: 8 }, (_, k) => c.infer({ x: row(X, (k + round) % 4) }, { binary: true })),
        );
        for (const [k, o] of outs.entries())
          expect(compareTensors(o.softmax, row(Y, (k + round) % 4)).relative).toBeLessThanOrEqual(1e-4);
      }
      expect(server!.batcher.stats.batches).toBeLessThan(24);
    });

    it("a binary body whose sizes do not add up answers 400", async () => {
      await start();
      const header = new TextEncoder().encode(
        JSON.stringify({
          inputs: [{ name: "x", shape: [4, 20], datatype: "FP32", parameters: { binary_data_size: 320 } }],
        }),
      );
      const send = (body: Uint8Array, headerLength: number) =>
        fetch(new URL("/v2/models/model/infer", server!.url), {
          method: "POST",
          headers: {
            "content-type": "application/octet-stream",
            "inference-header-content-length": String(headerLength),
          },
          body,
        });
      const short = await send(Buffer.concat([header, new Uint8Array(100)]), header.byteLength);
      expect(short.status).toBe(400);
      expect(((await short.json()) as { error: string }).error).toMatch(/fewer binary bytes/);
      const long = await send(Buffer.concat([header, new Uint8Array(400)]), header.byteLength);
      expect(((await long.json()) as { error: string }).error).toMatch(/80 binary bytes no input claims/);
      const badLen = await send(Buffer.concat([header, new Uint8Array(320)]), 99999);
      expect(((await badLen.json()) as { error: string }).error).toMatch(/does not fit/);
    });
  });
}

describe("torchc serve: gRPC (the protocol's GRPCInferenceService)", () => {
  // biome-ignore lint/suspicious/noExplicitAny: a dynamic client from the .proto
  const call = (client: any, method: string, req: unknown) =>
    new Promise<Record<string, unknown>>((resolve, reject) =>
      client[method](req, (e: unknown, r: Record<string, unknown>) => (e ? reject(e) : resolve(r))),
    );
  const connect = () => {
    const Service = loadInferenceService();
    return new Service(server!.grpcAddress!, grpc.credentials.createInsecure());
  };

  it("live, ready, metadata, and infer with typed and with raw contents match PyTorch", async () => {
    await start({ grpcPort: 0 });
    const client = connect();
    try {
      expect(await call(client, "ServerLive", {})).toEqual({ live: true });
      expect(await call(client, "ModelReady", { name: "model" })).toEqual({ ready: true });
      const meta = await call(client, "ModelMetadata", { name: "model" });
      expect(meta.inputs).toEqual([{ name: "x", datatype: "FP32", shape: [-1, 20] }]);
      const typed = await call(client, "ModelInfer", {
        model_name: "model",
        id: "g1",
        inputs: [
          {
            name: "x",
            datatype: "FP32",
            shape: [4, 20],
            contents: { fp32_contents: Array.from(X.data as Float32Array) },
          },
        ],
      });
      expect(typed.id).toBe("g1");
      const raw = typed.raw_output_contents as Buffer[];
      const out = (b: Buffer): Tensor => ({
        dtype: "float32",
        shape: [4, 10],
        data: new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
      });
      expect(compareTensors(out(raw[0]), Y).relative).toBeLessThanOrEqual(1e-4);
      const rawReq = await call(client, "ModelInfer", {
        model_name: "model",
        inputs: [{ name: "x", datatype: "FP32", shape: [4, 20] }],
        raw_input_contents: [Buffer.from((X.data as Float32Array).buffer.slice(0))],
      });
      expect(
        compareTensors(out((rawReq.raw_output_contents as Buffer[])[0]), Y).relative,
      ).toBeLessThanOrEqual(1e-4);
    } finally {
      client.close();
    }
  });

  it("a malformed request is INVALID_ARGUMENT with the same message as over REST", async () => {
    await start({ grpcPort: 0 });
    const client = connect();
    try {
      await expect(
        call(client, "ModelInfer", {
          model_name: "model",
          inputs: [
            {
              name: "x",
              datatype: "FP32",
              shape: [1, 21],
              contents: { fp32_contents: new Array(21).fill(0) },
            },
          ],
        }),
      ).rejects.toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
        details: expect.stringMatching(/shape \[1, 21\]/),
      });
      await expect(call(client, "ModelInfer", { model_name: "other", inputs: [] })).rejects.toMatchObject({
        code: grpc.status.INVALID_ARGUMENT,
      });
    } finally {
      client.close();
    }
  });
});

/**
 * `torchc serve` / `serve()`: a compiled module behind the Open Inference Protocol's REST endpoints
 * (fastify), with dynamic batching (./batcher.ts), Prometheus metrics (prom-client), JSON-line logs with a
 * request id, backpressure, deadlines and a graceful drain on SIGTERM.
 *
 *   GET  /v2/health/live · /v2/health/ready · /v2 · /v2/models/{name} · /v2/models/{name}/ready
 *   POST /v2/models/{name}/infer                                     GET /metrics
 */
import type { IncomingMessage } from "node:http";
import Fastify, { type FastifyInstance } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Tensor } from "../ir/tensor.js";
import type { CompiledModule } from "../runtime/compile.js";
import type { ModulePool } from "../runtime/pool.js";
import { type BatcherOptions, DeadlineError, DynamicBatcher, QueueFullError } from "./batcher.js";
import { BodyPool, readAlignedBody } from "./body.js";
import { clusterMetrics } from "./cluster-metrics.js";
import { grpc, grpcStatusOf, loadInferenceService, requestFromGrpc, responseToGrpc } from "./grpc.js";
import { isServerProcess } from "./processes.js";
import {
  DATATYPE,
  decodeRequest,
  encodeTensor,
  ProtocolError,
  type ResponseTensor,
  splitBinaryBody,
  type TensorSpec,
  tensorData,
} from "./protocol.js";

export interface ServeOptions extends BatcherOptions {
  /** The model's name in URLs (default "model"). */
  readonly name?: string;
  readonly version?: string;
  readonly port?: number;
  readonly host?: string;
  /** Largest request body in bytes (default 64 MiB). */
  readonly bodyLimit?: number;
  /** JSON-line logs (default true; false for tests). */
  readonly log?: boolean;
  /** Also serve the protocol over gRPC on this port (0: any free port); off when undefined. */
  readonly grpcPort?: number;
}

export interface Server {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly batcher: DynamicBatcher;
  /** host:port of the gRPC endpoint, when started. */
  readonly grpcAddress?: string;
  /** Stops accepting, answers everything queued and running, closes, disposes the module. */
  drain(): Promise<void>;
}

const SERVER = { name: "torchc", version: "0.1.0", extensions: ["binary_tensor_data"] };

/** What serve() runs: one compiled module, or a pool of replicas across GPUs (runtime/pool.ts). */
export type Served = CompiledModule | ModulePool;

/** Per device: its runs at once (instances), running now, finished, failed, and the device bytes held there. */
interface DeviceCounts {
  readonly device: number;
  readonly instances: number;
  readonly busy: number;
  readonly completed: number;
  readonly failed: number;
  readonly bytes: number;
}

/** The devices `served` runs on; none for a single module without device memory (the reference backend). */
function deviceCounts(served: Served): DeviceCounts[] {
  if ("replicas" in served) {
    const memory = served.memory().devices;
    return served.load().map((l, i) => ({
      device: l.device,
      instances: l.capacity,
      busy: l.busy,
      completed: l.completed,
      failed: l.failed,
      bytes: memory[i].memory.deviceTotal,
    }));
  }
  const q = served.queue;
  if (!q) return [];
  return [
    {
      device: served.options.device ?? 0,
      instances: q.contexts,
      busy: q.busy,
      completed: q.completed,
      // A single module's queue does not count failures; the per-status request counter does.
      failed: 0,
      bytes: served.memory().deviceTotal,
    },
  ];
}

function specs(compiled: Served, names: readonly string[]): TensorSpec[] {
  return names.map((name) => ({
    name,
    dtype: compiled.graph.values[name].dtype,
    shape: compiled.graph.values[name].shape,
  }));
}

function metrics(registry: Registry) {
  collectDefaultMetrics({ register: registry });
  return {
    requests: new Counter({
      name: "torchc_requests_total",
      help: "Inference requests by HTTP status",
      labelNames: ["model", "status"],
      registers: [registry],
    }),
    queue: new Histogram({
      name: "torchc_queue_seconds",
      help: "Time requests waited for a batch",
      labelNames: ["model"],
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    }),
    compute: new Histogram({
      name: "torchc_compute_seconds",
      help: "Time a batch ran on the device",
      labelNames: ["model"],
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    }),
    batch: new Histogram({
      name: "torchc_batch_rows",
      help: "Rows per batch run",
      labelNames: ["model"],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers: [registry],
    }),
    deviceBytes: new Gauge({
      name: "torchc_device_memory_bytes",
      help: "Device memory the compiled module holds, per device",
      labelNames: ["model", "device"],
      registers: [registry],
    }),
    processes: new Gauge({
      name: "torchc_server_processes",
      help: "Server processes answering (1 each; summed over `--processes`)",
      labelNames: ["model"],
      registers: [registry],
    }),
    deviceInstances: new Gauge({
      name: "torchc_device_instances",
      help: "Runs a device may have in flight at once (execution contexts of its replica)",
      labelNames: ["model", "device"],
      registers: [registry],
    }),
    deviceBusy: new Gauge({
      name: "torchc_device_busy",
      help: "Runs in flight on a device",
      labelNames: ["model", "device"],
      registers: [registry],
    }),
    deviceRuns: new Counter({
      name: "torchc_device_runs_total",
      help: "Batch runs finished on a device",
      labelNames: ["model", "device"],
      registers: [registry],
    }),
    deviceFailures: new Counter({
      name: "torchc_device_run_failures_total",
      help: "Batch runs that failed on a device",
      labelNames: ["model", "device"],
      registers: [registry],
    }),
  };
}

/** Sets the per-device metrics from `counts` (the run counters move by what finished since the last call). */
function deviceMetrics(m: ReturnType<typeof metrics>, model: string) {
  const last = new Map<number, { completed: number; failed: number }>();
  return (counts: readonly DeviceCounts[]) => {
    for (const c of counts) {
      const labels = { model, device: String(c.device) };
      const before = last.get(c.device) ?? { completed: 0, failed: 0 };
      m.deviceBytes.set(labels, c.bytes);
      m.deviceInstances.set(labels, c.instances);
      m.deviceBusy.set(labels, c.busy);
      if (c.completed > before.completed) m.deviceRuns.inc(labels, c.completed - before.completed);
      if (c.failed > before.failed) m.deviceFailures.inc(labels, c.failed - before.failed);
      last.set(c.device, { completed: c.completed, failed: c.failed });
    }
  };
}

export async function serve(compiled: Served, opts: ServeOptions = {}): Promise<Server> {
  const name = opts.name ?? "model";
  // A batch range: requests of up to its max rows, merged batches run at their own size (no padding to opt).
  const range = (compiled as { range?: { min: number; opt: number; max: number; buckets: number[] } }).range;
  const atMax = (s: TensorSpec): TensorSpec =>
    range && s.shape[0] === range.opt ? { ...s, shape: [range.max, ...s.shape.slice(1)] } : s;
  const inputs = specs(compiled, compiled.graph.inputs).map(atMax);
  const outputs = specs(compiled, compiled.graph.outputs).map(atMax);
  const registry = new Registry();
  const m = metrics(registry);
  const contexts = compiled.queue?.contexts ?? 1;
  const batcher = new DynamicBatcher(
    {
      inputs,
      outputs,
      run: (x) => compiled.run(x) as Promise<Tensor[]>,
      rowRange: range,
      // One module: merged batches in its page-locked memory (no staging copy). A pool of replicas over several
      // GPUs takes ordinary memory.
      allocate: "replicas" in compiled ? undefined : (dtype, shape) => compiled.allocateHost(dtype, shape),
    },
    { concurrency: contexts, ...opts },
    (rows) => m.batch.observe({ model: name }, rows),
  );
  m.processes.set({ model: name }, 1);
  const updateDevices = deviceMetrics(m, name);
  const devices = deviceCounts(compiled);
  updateDevices(devices);
  let draining = false;
  const app = Fastify({
    logger: opts.log === false ? false : { level: "info" },
    bodyLimit: opts.bodyLimit ?? 64 << 20,
    genReqId: () => crypto.randomUUID(),
  });
  const modelPath = `/v2/models/${encodeURIComponent(name)}`;
  const metadata = {
    name,
    versions: opts.version ? [opts.version] : [],
    platform: "torchc",
    inputs: inputs.map((s) => ({
      name: s.name,
      datatype: DATATYPE[s.dtype],
      shape: batcher.batching ? [-1, ...s.shape.slice(1)] : s.shape,
    })),
    outputs: outputs.map((s) => ({
      name: s.name,
      datatype: DATATYPE[s.dtype],
      shape: batcher.batching ? [-1, ...s.shape.slice(1)] : s.shape,
    })),
    // Where it runs, and how many batches each device takes at once (absent on the CPU reference backend).
    ...(devices.length
      ? { devices: devices.map((d) => ({ device: d.device, instances: d.instances })) }
      : {}),
  };

  // Binary tensor data extension: a JSON header of Inference-Header-Content-Length bytes, then raw tensors.
  const bodyLimit = opts.bodyLimit ?? 64 << 20;
  const bodies = new BodyPool();
  // Bodies whose batch has run: nothing reads their tensor views once the answer is sent.
  const spent = new WeakSet<object>();
  app.addHook("onResponse", async (req) => {
    if (Buffer.isBuffer(req.body) && spent.has(req)) bodies.give(req.body);
  });
  app.addContentTypeParser("application/octet-stream", (req, payload, done) => {
    readAlignedBody(payload as IncomingMessage, bodyLimit, bodies).then(
      (body) => done(null, body),
      (e: Error) => done(e, undefined),
    );
    void req;
  });

  app.setErrorHandler((e, req, reply) => {
    const err = e as Error & { statusCode?: number };
    // Body too large, malformed JSON: fastify's own 4xx; anything else is ours.
    const status = err.statusCode ?? 500;
    req.log.warn({ err: err.message }, "request failed");
    m.requests.inc({ model: name, status: String(status) });
    void reply.status(status).send({ error: err.message.split("\n")[0] });
  });

  app.get("/v2/health/live", async () => ({ live: true }));
  app.get("/v2/health/ready", async (_req, reply) =>
    draining ? reply.status(503).send({ ready: false }) : { ready: true },
  );
  app.get("/v2", async () => SERVER);
  app.get(modelPath, async () => metadata);
  app.get(`${modelPath}/ready`, async (_req, reply) =>
    draining ? reply.status(503).send({ ready: false }) : { name, ready: true },
  );
  // Under `--processes`, every process's metrics summed by the primary, whichever process is asked.
  const refreshDevices = () => updateDevices(deviceCounts(compiled));
  const metricsText = isServerProcess()
    ? clusterMetrics(registry, refreshDevices)
    : async () => {
        refreshDevices();
        return registry.metrics();
      };
  app.get("/metrics", async (_req, reply) => reply.type(registry.contentType).send(await metricsText()));
  /** A decoded request through the batcher: the wanted outputs, or a thrown ProtocolError/QueueFull/Deadline/other. */
  const inferDecoded = async (decoded: ReturnType<typeof decodeRequest>, deadline: number) => {
    for (const o of decoded.outputs ?? [])
      if (!outputs.some((s) => s.name === o)) throw new ProtocolError(`unknown output '${o.slice(0, 80)}'`);
    if (draining) throw new QueueFullError(1);
    const timeout =
      decoded.timeoutUs === undefined
        ? deadline
        : Math.min(deadline, performance.now() + decoded.timeoutUs / 1000);
    const r = await batcher.submit(decoded.tensors, decoded.batch, timeout);
    m.queue.observe({ model: name }, r.queueMs / 1000);
    m.compute.observe({ model: name }, r.computeMs / 1000);
    const wanted = decoded.outputs ?? outputs.map((s) => s.name);
    return outputs.flatMap((s, k) =>
      wanted.includes(s.name) ? [{ name: s.name, tensor: r.tensors[k] }] : [],
    );
  };

  app.post(`${modelPath}/infer`, async (req, reply) => {
    const fail = (status: number, message: string, headers: Record<string, string> = {}) => {
      m.requests.inc({ model: name, status: String(status) });
      return reply.status(status).headers(headers).send({ error: message });
    };
    if (draining) return fail(503, "the server is shutting down", { "retry-after": "1" });
    let decoded: ReturnType<typeof decodeRequest>;
    try {
      const headerLength = req.headers["inference-header-content-length"];
      if (headerLength !== undefined || Buffer.isBuffer(req.body)) {
        if (!Buffer.isBuffer(req.body))
          throw new ProtocolError("Inference-Header-Content-Length needs an application/octet-stream body");
        const n = headerLength === undefined ? req.body.byteLength : Number(headerLength);
        const { json, binary } = splitBinaryBody(req.body, n);
        decoded = decodeRequest(json, inputs, batcher.batching, binary);
      } else decoded = decodeRequest(req.body, inputs, batcher.batching);
    } catch (e) {
      if (e instanceof ProtocolError) return fail(e.status, e.message);
      throw e;
    }
    try {
      const results = await inferDecoded(decoded, Number.POSITIVE_INFINITY);
      spent.add(req);
      m.requests.inc({ model: name, status: "200" });
      const bin = decoded.binaryOutputs;
      const chunks: Uint8Array[] = [];
      const body = {
        model_name: name,
        ...(opts.version ? { model_version: opts.version } : {}),
        ...(decoded.id !== undefined ? { id: decoded.id } : {}),
        outputs: results.map(({ name: n, tensor: t }): ResponseTensor => {
          if (bin !== "all" && !bin.has(n)) return encodeTensor(n, t);
          const bytes = tensorData(t);
          chunks.push(bytes);
          const meta = { binary_data_size: bytes.byteLength };
          return { name: n, shape: [...t.shape], datatype: DATATYPE[t.dtype] ?? t.dtype, parameters: meta };
        }),
      };
      if (chunks.length === 0) return body;
      const header = Buffer.from(JSON.stringify(body));
      return reply
        .header("inference-header-content-length", String(header.byteLength))
        .type("application/octet-stream")
        .send(Buffer.concat([header, ...chunks]));
    } catch (e) {
      if (e instanceof ProtocolError) return fail(e.status, e.message);
      if (e instanceof QueueFullError) return fail(503, e.message, { "retry-after": String(e.retryAfterS) });
      if (e instanceof DeadlineError) return fail(504, e.message);
      req.log.error({ err: (e as Error).message }, "inference failed");
      return fail(500, `inference failed: ${(e as Error).message.split("\n")[0]}`);
    }
  });

  const address = await app.listen({ port: opts.port ?? 8000, host: opts.host ?? "127.0.0.1" });
  const rpc =
    opts.grpcPort === undefined
      ? undefined
      : await startGrpc(opts.host ?? "127.0.0.1", opts.grpcPort, {
          ready: () => !draining,
          metadata,
          name,
          version: opts.version,
          infer: async (body, binary, deadline) =>
            inferDecoded(decodeRequest(body, inputs, batcher.batching, binary), deadline),
          count: (status) => m.requests.inc({ model: name, status }),
        });
  let drained: Promise<void> | undefined;
  return {
    app,
    url: address,
    batcher,
    grpcAddress: rpc?.address,
    drain() {
      drained ??= (async () => {
        draining = true;
        await batcher.drain();
        await Promise.all([app.close(), rpc?.close()]);
        await compiled.dispose();
      })();
      return drained;
    },
  };
}

interface GrpcHandlers {
  ready(): boolean;
  readonly metadata: { inputs: unknown[]; outputs: unknown[]; versions: string[]; platform: string };
  readonly name: string;
  readonly version?: string;
  infer(
    body: unknown,
    binary: Uint8Array | undefined,
    deadline: number,
  ): Promise<{ name: string; tensor: Tensor }[]>;
  count(status: string): void;
}

/** The gRPC transport over the same checked path as REST (./grpc.ts). */
async function startGrpc(
  host: string,
  port: number,
  h: GrpcHandlers,
): Promise<{ address: string; close(): Promise<void> }> {
  const server = new grpc.Server();
  type Call<T> = grpc.ServerUnaryCall<T, unknown>;
  type Done = grpc.sendUnaryData<unknown>;
  const unary =
    <T>(f: (req: T, call: Call<T>) => unknown | Promise<unknown>) =>
    (call: Call<T>, done: Done) => {
      Promise.resolve()
        .then(() => f(call.request, call))
        .then(
          (r) => done(null, r),
          (e) => {
            const s = grpcStatusOf(e);
            h.count(String({ 3: 400, 14: 503, 4: 504 }[s.code as number] ?? 500));
            done({ code: s.code, details: s.details });
          },
        );
    };
  server.addService(loadInferenceService().service, {
    ServerLive: unary(() => ({ live: true })),
    ServerReady: unary(() => ({ ready: h.ready() })),
    ModelReady: unary((r: { name: string }) => ({ ready: h.ready() && r.name === h.name })),
    ServerMetadata: unary(() => SERVER),
    ModelMetadata: unary((r: { name: string }) => {
      if (r.name !== h.name) throw new ProtocolError(`unknown model '${String(r.name).slice(0, 80)}'`);
      return { name: h.name, ...h.metadata };
    }),
    ModelInfer: unary(async (r: Parameters<typeof requestFromGrpc>[0] & { model_name: string }, call) => {
      if (r.model_name !== h.name)
        throw new ProtocolError(`unknown model '${String(r.model_name).slice(0, 80)}'`);
      const { body, binary } = requestFromGrpc(r);
      const d = call.getDeadline();
      const deadline =
        d === Number.POSITIVE_INFINITY || d === undefined
          ? Number.POSITIVE_INFINITY
          : performance.now() + (new Date(d).getTime() - Date.now());
      const outs = await h.infer(body, binary, deadline);
      h.count("200");
      return responseToGrpc(h.name, h.version, (body as { id?: string }).id, outs);
    }),
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return {
    address: `${host}:${bound}`,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}

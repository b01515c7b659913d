/**
 * `torchc serve` / `serve()`: a compiled module behind the Open Inference Protocol's REST endpoints
 * (fastify), with dynamic batching (./batcher.ts), Prometheus metrics (prom-client), JSON-line logs with a
 * request id, backpressure, deadlines and a graceful drain on SIGTERM.
 *
 *   GET  /v2/health/live · /v2/health/ready · /v2 · /v2/models/{name} · /v2/models/{name}/ready
 *   POST /v2/models/{name}/infer                                     GET /metrics
 */
import type { FastifyInstance } from "fastify";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { Tensor } from "../ir/tensor.js";
import type { CompiledModule } from "../runtime/compile.js";
import type { ModulePool } from "../runtime/pool.js";
import { type BatcherOptions, DynamicBatcher, QueueFullError } from "./batcher.js";
import { BodyPool } from "./body.js";
import { clusterMetrics } from "./cluster-metrics.js";
import { deviceGather, ingestSlots } from "./device-gather.js";
import { grpc, grpcStatusOf, loadInferenceService, requestFromGrpc, responseToGrpc } from "./grpc.js";
import { type DecodedRequest, httpApp, type NamedOutputs, SERVER } from "./http-app.js";
import { type HttpSide, startIngestThreads } from "./ingest.js";
import { isServerProcess } from "./processes.js";
import { DATATYPE, decodeRequest, ProtocolError, type TensorSpec } from "./protocol.js";

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
  /**
   * Answer HTTP on this many worker threads (./ingest.ts), which read and decode request bodies and hand the
   * tensors to this thread's batcher; off (this thread answers HTTP) when undefined. More than one needs Node
   * 22.12+ (SO_REUSEPORT).
   */
  readonly ingestThreads?: number;
}

export interface Server {
  /** The HTTP app on this thread; undefined when ingest threads answer HTTP. */
  readonly app: FastifyInstance | undefined;
  readonly url: string;
  readonly batcher: DynamicBatcher;
  /** host:port of the gRPC endpoint, when started. */
  readonly grpcAddress?: string;
  /** Stops accepting, answers everything queued and running, closes, disposes the module. */
  drain(): Promise<void>;
  /**
   * Settles once the server has drained: after drain(), or after the HTTP side failed for good (ingest threads
   * dying faster than they are replaced), which rejects it with why.
   */
  readonly closed: Promise<void>;
}

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
    bodies: new Counter({
      name: "torchc_request_bodies_total",
      help: "Request bodies the ingest threads read, by place: a page-locked slot, or an allocation (none fit or was free)",
      labelNames: ["model", "place"],
      registers: [registry],
    }),
    batchInputs: new Counter({
      name: "torchc_batch_inputs_total",
      help: "Batch inputs by path: gathered to the device from request slots, or merged on the batching thread",
      labelNames: ["model", "path"],
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
  // Rows in page-locked request slots (ingest threads) go to the GPU by DMA from there (./device-gather.ts).
  // TORCHC_SERVE_PREFETCH=1 forms one batch more than the contexts and copies it while they run (its run waits in
  // the module's queue). It lost: H100, session 17, 8 ingest threads at concurrency 128, batches of 12.3 rows
  // instead of 29.4 (the extra batch leaves with what is queued), 10,612 req/s, p99 25.2 ms against 11,823, 19.2.
  const ahead = opts.ingestThreads && process.env.TORCHC_SERVE_PREFETCH === "1" ? 1 : 0;
  const gathering = opts.ingestThreads ? deviceGather(compiled, contexts + ahead) : undefined;
  const gather = gathering?.gather;
  const batcher = new DynamicBatcher(
    {
      inputs,
      outputs,
      run: (x) => compiled.run(x) as Promise<Tensor[]>,
      rowRange: range,
      // One module: merged batches in its page-locked memory (no staging copy). A pool of replicas over several
      // GPUs takes ordinary memory.
      allocate: "replicas" in compiled ? undefined : (dtype, shape) => compiled.allocateHost(dtype, shape),
      // Opt-in (TORCHC_SERVE_THREADED_MERGE=1): the rows written there by memcpys on worker threads. It lost: H100,
      // session 16, --ingest-threads 8 --instances 2 at concurrency 128, the batching thread spent 51% of its time
      // dispatching koffi's asynchronous calls (~90 µs each, a 602 KB row's memcpy here costs less) at 5,468 req/s.
      copy:
        "replicas" in compiled || process.env.TORCHC_SERVE_THREADED_MERGE !== "1"
          ? undefined
          : (dst, at, src) => compiled.copyIntoHost(dst, at, src),
      gather,
    },
    { concurrency: contexts + (gather ? ahead : 0), ...opts },
    (rows) => m.batch.observe({ model: name }, rows),
  );
  m.processes.set({ model: name }, 1);
  const updateDevices = deviceMetrics(m, name);
  const devices = deviceCounts(compiled);
  updateDevices(devices);
  let draining = false;
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
  // What a scrape reads from elsewhere: the devices' gauges, and the batcher's input counts since the last scrape.
  let inputsSeen = { gathered: 0, merged: 0 };
  const refreshScraped = () => {
    updateDevices(deviceCounts(compiled));
    const { gatheredInputs: g, mergedInputs: mg } = batcher.stats;
    if (g > inputsSeen.gathered)
      m.batchInputs.inc({ model: name, path: "gathered" }, g - inputsSeen.gathered);
    if (mg > inputsSeen.merged) m.batchInputs.inc({ model: name, path: "merged" }, mg - inputsSeen.merged);
    inputsSeen = { gathered: g, merged: mg };
  };
  // Under `--processes`, every process's metrics summed by the primary, whichever process is asked.
  const metricsText = isServerProcess()
    ? clusterMetrics(registry, refreshScraped)
    : async () => {
        refreshScraped();
        return registry.metrics();
      };
  /** A decoded request through the batcher: the wanted outputs, or a thrown ProtocolError/QueueFull/Deadline/other. */
  const inferDecoded = async (decoded: DecodedRequest, deadline: number): Promise<NamedOutputs> => {
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
  const appOptions = {
    name,
    version: opts.version,
    metadata,
    inputs,
    batching: batcher.batching,
    bodyLimit: opts.bodyLimit ?? 64 << 20,
    log: opts.log !== false,
  };
  const handlers = {
    draining: () => draining,
    infer: (d: DecodedRequest) => inferDecoded(d, Number.POSITIVE_INFINITY),
    count: (status: string) => m.requests.inc({ model: name, status }),
    bodies(placed: { slot: number; allocation: number }) {
      if (placed.slot) m.bodies.inc({ model: name, place: "slot" }, placed.slot);
      if (placed.allocation) m.bodies.inc({ model: name, place: "allocation" }, placed.allocation);
    },
    metrics: async () => ({ contentType: registry.contentType, text: await metricsText() }),
  };
  let drained: Promise<void> | undefined;
  let failure: string | undefined;
  let settle: { resolve(): void; reject(e: Error): void } | undefined;
  const closed = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  closed.catch(() => {}); // a caller that never looks at it is not an unhandled rejection
  const drain = () => {
    drained ??= (async () => {
      draining = true;
      http?.stopAccepting();
      await batcher.drain();
      await Promise.all([http?.close(), rpc?.close()]);
      gathering?.dispose();
      await compiled.dispose();
    })().then(
      () => (failure === undefined ? settle?.resolve() : settle?.reject(new Error(failure))),
      (e: Error) => {
        settle?.reject(e);
        throw e;
      },
    );
    return drained;
  };
  // The HTTP side on this thread, or on `ingestThreads` threads that hand decoded requests to this one's batcher;
  // if those are lost for good, the server drains (gRPC too) and `closed` says why.
  const onFatal = (why: string) => {
    failure = why;
    void drain().catch(() => {});
  };
  let http: HttpSide | undefined;
  let rpc: Awaited<ReturnType<typeof startGrpc>> | undefined;
  try {
    http = opts.ingestThreads
      ? await startIngestThreads(
          opts.ingestThreads,
          {
            ...appOptions,
            host: opts.host ?? "127.0.0.1",
            port: opts.port ?? 8000,
            slots: ingestSlots(compiled, inputs, batcher.batching),
          },
          handlers,
          onFatal,
        )
      : await listenHere(httpApp({ ...appOptions, bodies: new BodyPool() }, handlers), opts);
    rpc =
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
  } catch (e) {
    // a port in use: nothing started here stays listening (the module is the caller's)
    await http?.close();
    throw e;
  }
  return { app: http.app, url: http.url, batcher, grpcAddress: rpc?.address, drain, closed };
}

/** The HTTP side on this thread: the app listening on the server's port. */
async function listenHere(app: FastifyInstance, opts: ServeOptions): Promise<HttpSide> {
  const url = await app.listen({ port: opts.port ?? 8000, host: opts.host ?? "127.0.0.1" });
  return { app, url, stopAccepting: () => {}, close: () => app.close() };
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

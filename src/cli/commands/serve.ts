import cluster from "node:cluster";
import { parseArgs } from "node:util";
import { InputError } from "../../errors.js";
import { loadModel } from "../../frontends/load-model.js";
import { type CompiledModule, compile, loadCompiled } from "../../runtime/compile.js";
import type { CompileOptions } from "../../runtime/options.js";
import { buildPool } from "../../runtime/pool.js";
import { ingestThreadsRefusal } from "../../serve/ingest-limits.js";
import { announceReady, isServerProcess, leaveCluster } from "../../serve/processes.js";
import { COMPILE_FLAGS, compileOptionsFrom, compileUsage } from "../compile-options.js";
import { withProgress } from "../progress.js";
import type { Command } from "./command.js";

function count(flag: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InputError(`--${flag} ${v}: expected an integer ≥ ${min}`);
  return n;
}

/** `--device 0,1`: the devices to serve from (one replica each); a single ordinal, as every command takes it. */
export function parseDevices(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  return v.split(",").map((part) => {
    const n = Number(part.trim());
    if (part.trim() === "" || !Number.isInteger(n) || n < 0 || n > 1023)
      throw new InputError(`--device ${v}: expected a device ordinal or a list of them, e.g. 0,1`);
    return n;
  });
}

/** The flags `torchc serve` takes (besides the compile options), for deploy/ manifests' tests too. */
export const SERVE_FLAGS = {
  ...COMPILE_FLAGS,
  name: { type: "string" },
  port: { type: "string" },
  "grpc-port": { type: "string" },
  host: { type: "string" },
  "max-batch": { type: "string" },
  "max-queue-delay-us": { type: "string" },
  "max-queue": { type: "string" },
  instances: { type: "string" },
  processes: { type: "string" },
  "ingest-threads": { type: "string" },
} as const;

export const serveCommand: Command = {
  name: "serve",
  summary: "serve a model over the Open Inference Protocol (REST), with dynamic batching and /metrics",
  usage:
    "usage: torchc serve <model.pt2|model.torchc> [--name model] [--port 8000] [--grpc-port 8001] [--host 127.0.0.1]\n" +
    "       [--max-batch N] [--max-queue-delay-us 2000] [--max-queue ROWS] [--instances N] [--processes N] [options]\n" +
    "  --max-batch N            rows merged into one run (default: the model's batch; 1 = no batching)\n" +
    "  --max-queue-delay-us US  how long a request may wait for others to batch with (default 2000)\n" +
    "  --max-queue ROWS         queued rows before 503 + Retry-After (default 16 × the model's batch)\n" +
    "  --instances N            batches in flight at once on each device (execution contexts; default 1)\n" +
    "  --device 0,1             one replica per listed GPU; batches go to the least busy (--instances each)\n" +
    "  --processes N            N server processes sharing the ports, each with its own model copy and batcher\n" +
    "                           (request parsing on N cores; /metrics sums them all; default 1)\n" +
    "  --ingest-threads N       read and decode requests on N threads feeding this process's one model and\n" +
    "                           batcher (more than 1 needs Node 22.12+; not with --processes)\n" +
    "  --grpc-port P            the protocol over gRPC too (default 8001; off with --grpc-port off)\n" +
    "SIGTERM or SIGINT: stop taking requests, answer the queued and running ones, exit.\n" +
    compileUsage("cuda"),
  async run(argv) {
    if (!isServerProcess()) return serveCommandLine(argv, this.usage);
    // One of --processes' servers: its IPC channel would keep it alive after an error, too.
    const { answerClusterMetrics } = await import("../../serve/cluster-metrics.js");
    answerClusterMetrics();
    try {
      return await serveCommandLine(argv, this.usage);
    } finally {
      leaveCluster();
    }
  },
};

async function serveCommandLine(argv: readonly string[], usage: string): Promise<number> {
  {
    const { values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: SERVE_FLAGS,
    });
    if (positionals.length !== 1) {
      process.stderr.write(`${usage}\n`);
      return 2;
    }
    const processes = count("processes", values.processes, 1) ?? 1;
    const ingestThreads = count("ingest-threads", values["ingest-threads"], 1);
    const ingestRefusal =
      ingestThreads === undefined
        ? undefined
        : processes > 1
          ? "--ingest-threads and --processes do not combine: the threads feed one process's model"
          : ingestThreadsRefusal(ingestThreads);
    if (ingestRefusal) throw new InputError(ingestRefusal);
    if (processes > 1 && cluster.isPrimary) {
      const { runServerProcesses } = await import("../../serve/processes.js");
      return runServerProcesses(processes, (line) => process.stderr.write(`${line}\n`));
    }
    const instances = count("instances", values.instances, 1);
    const devices = parseDevices(values.device);
    const options: CompileOptions = {
      ...compileOptionsFrom({ ...values, device: undefined }, { backend: "cuda" }),
      ...(instances ? { contexts: instances } : {}),
      ...(devices?.length === 1 ? { device: devices[0] } : {}),
    };
    const path = positionals[0];
    const compiled = await withProgress("load", async () => {
      const model = path.endsWith(".torchc")
        ? undefined
        : await loadModel(path, { inputTypes: options.inputs });
      const build = (o: CompileOptions): Promise<CompiledModule> =>
        model ? compile(model, o) : loadCompiled(path, o);
      return devices && devices.length > 1
        ? buildPool(devices, (device) => build({ ...options, device }))
        : build(options);
    });
    const first = "replicas" in compiled ? compiled.replicas[0].module : compiled;
    const where = "replicas" in compiled ? `devices ${compiled.devices.join(", ")}; ` : "";
    // Loaded here, not at start-up: fastify and gRPC cost ~230 ms that no other command should pay.
    const { serve } = await import("../../serve/server.js");
    const server = await serve(compiled, {
      name: values.name,
      port: count("port", values.port, 0) ?? 8000,
      host: values.host,
      maxBatch: count("max-batch", values["max-batch"], 1),
      maxQueueDelayUs: count("max-queue-delay-us", values["max-queue-delay-us"], 0),
      maxQueue: count("max-queue", values["max-queue"], 1),
      grpcPort:
        values["grpc-port"] === "off" ? undefined : (count("grpc-port", values["grpc-port"], 0) ?? 8001),
      ingestThreads,
    });
    const line = `torchc serve: ${server.url}/v2/models/${values.name ?? "model"}${server.grpcAddress ? `, gRPC ${server.grpcAddress}` : ""} (${where}${first.report.runners.join("; ")})`;
    // One of --processes' servers: the primary prints the line once all are ready.
    if (isServerProcess()) announceReady(line);
    else process.stderr.write(`${line}\n`);
    const ended = await new Promise<string | undefined>((resolve) => {
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        // A plain server: a second signal ends it at once. One of --processes' servers keeps ignoring them while
        // it drains: Ctrl-C reaches it from the terminal and again from the primary.
        if (!isServerProcess()) {
          process.off("SIGTERM", stop);
          process.off("SIGINT", stop);
        }
        void server.drain().then(() => resolve(undefined));
      };
      process.on("SIGTERM", stop);
      process.on("SIGINT", stop);
      // the server can also stop itself: its HTTP threads lost for good (it has drained by then)
      server.closed.catch((e: Error) => resolve(e.message));
    });
    if (ended !== undefined) {
      process.stderr.write(`error: ${ended}\n`);
      return 1;
    }
    return 0;
  }
}

/**
 * `torchc serve --processes N`: N server processes (node:cluster) sharing the HTTP and gRPC ports, each with its
 * own copy of the model and its own batcher. One process parses every request body on one event loop (a 602 KB
 * image is ~10 socket reads and a copy), which caps a server well below what the GPU can take; the cluster
 * primary only hands out connections. The GPU is shared by time-slicing between the processes' contexts.
 *
 * The primary prints one address line once every process is ready, forwards SIGTERM/SIGINT (each process drains
 * its own requests), answers /metrics with every process's metrics summed (prom-client's AggregatorRegistry), and
 * replaces a process that dies while serving. A process that fails before it is ready stops them all (its error
 * is the user's: a bad model, a busy port).
 */
import cluster, { type Worker } from "node:cluster";

const READY = "torchc-serve-ready";
export const METRICS = "torchc-serve-metrics";

interface ReadyMessage {
  readonly type: typeof READY;
  readonly line: string;
}

export interface MetricsMessage {
  readonly type: typeof METRICS;
  readonly id: number;
  readonly text?: string;
  readonly error?: string;
}

export const isMessage = <T extends { type: string }>(m: unknown, type: T["type"]): m is T =>
  typeof m === "object" && m !== null && (m as { type?: unknown }).type === type;

/** Whether this process is one of `--processes`' servers (not the primary, not a plain server). */
export const isServerProcess = (): boolean => cluster.isWorker && process.env.TORCHC_SERVE_PROCESS === "1";

/** Primary: runs `n` servers with this process's own command line; resolves with the exit code. */
export async function runServerProcesses(n: number, write: (line: string) => void): Promise<number> {
  // prom-client only here and in the servers: no other command pays for loading it.
  const { AggregatorRegistry } = await import("prom-client");
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  let ready = 0;
  let failure: number | undefined;
  /** Whether all n served once: after that a process that ends is replaced, not fatal. */
  let started = false;
  let restartMs = 0;
  const lines: string[] = [];
  const fork = () => cluster.fork({ TORCHC_SERVE_PROCESS: "1" });
  const workers = new Set<Worker>();

  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      stopping = true;
      for (const w of workers) w.process.kill(signal);
    };
    const onSignal = (signal: NodeJS.Signals) => () => stop(signal);
    const term = onSignal("SIGTERM");
    const int = onSignal("SIGINT");
    process.on("SIGTERM", term);
    process.on("SIGINT", int);

    const watch = (w: Worker) => {
      workers.add(w);
      let wasReady = false;
      w.on("message", (m: unknown) => {
        if (isMessage<ReadyMessage>(m, READY)) {
          wasReady = true;
          ready++;
          lines.push(m.line);
          if (ready === n && !started) {
            started = true;
            write(`${lines[0]} (${n} processes)`);
          }
        } else if (isMessage<MetricsMessage>(m, METRICS)) {
          aggregator.clusterMetrics().then(
            (text) => w.isConnected() && w.send({ type: METRICS, id: m.id, text }),
            (e: Error) => w.isConnected() && w.send({ type: METRICS, id: m.id, error: e.message }),
          );
        }
      });
      w.on("exit", (code, signal) => {
        workers.delete(w);
        if (!stopping && (wasReady || started)) {
          // Serving goes on in the others: replace it, waiting longer after each replacement that fails to
          // start (its GPU memory may not be free yet), until one serves again.
          const wait = restartMs;
          restartMs = wasReady ? 0 : Math.min(30_000, Math.max(1000, restartMs * 2));
          write(
            JSON.stringify({
              level: "error",
              msg: "server process ended; starting another",
              code,
              signal,
              inMs: wait,
            }),
          );
          setTimeout(() => {
            if (!stopping) watch(fork());
          }, wait);
          return;
        }
        if (!stopping) {
          // Failed before the server first served (its own one-line error is on stderr): stop the rest.
          failure ??= code || 1;
          stop("SIGTERM");
        } else if (code !== null && code !== 0) failure ??= code;
        if (workers.size === 0) {
          process.off("SIGTERM", term);
          process.off("SIGINT", int);
          resolve(failure ?? 0);
        }
      });
    };
    for (let i = 0; i < n; i++) watch(fork());
  });
}

/** Server process: tells the primary it serves (`line` is what a single server prints). */
export function announceReady(line: string): void {
  process.send?.({ type: READY, line } satisfies ReadyMessage);
}

/** Server process: after draining, let the process end (the IPC channel would keep it alive). */
export function leaveCluster(): void {
  // cluster.worker.disconnect() marks the exit as intended, so the process keeps its own exit code (a bare
  // process.disconnect() makes Node's cluster code exit 0).
  if (cluster.worker?.isConnected()) cluster.worker.disconnect();
  else if (process.connected) process.disconnect();
}

/**
 * `torchc serve --ingest-threads N`: the HTTP side on N worker threads (./ingest-worker.ts) that read, check and
 * decode request bodies, and hand the decoded tensors (moved, not copied) to this thread, which owns the one
 * model, its one batcher and the GPU's one context.
 *
 * Why: one event loop reading 602 KB bodies caps a server far below the GPU (bench/NOTES.md, sessions 6–11), and
 * `--processes N` splits the reading but also the model: N CUDA contexts time-slice one GPU and N batchers each
 * see a quarter of the requests, so batches stay small (9.5 rows at concurrency 128 with four processes). Here
 * every request meets every other in one queue.
 *
 * Several threads share the port with SO_REUSEPORT (Node 22.12+); the kernel spreads connections over them. A
 * thread that dies is replaced on the same port.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { FastifyInstance } from "fastify";
import type { HostRegistration } from "../core/execution.js";
import type { BodySlots } from "./body.js";
import type { HttpAppHandlers, HttpAppOptions } from "./http-app.js";
import { ingestThreadsRefusal } from "./ingest-limits.js";
import {
  type IngestWorkerData,
  ownedOutputs,
  type ToMain,
  type ToWorker,
  toWireError,
  transferables,
} from "./ingest-protocol.js";

/** The HTTP side of a server, wherever it runs. */
export interface HttpSide {
  /** The app, when it runs on this thread. */
  readonly app: FastifyInstance | undefined;
  readonly url: string;
  /** New requests are answered 503 from now on; those in flight go on. */
  stopAccepting(): void;
  close(): Promise<void>;
}

export interface IngestConfig extends Omit<HttpAppOptions, "bodies"> {
  readonly host: string;
  readonly port: number;
  /** Request bodies read into slots of memory shared with this thread (each thread its own), see ingestSlots. */
  readonly slots?: IngestSlots;
}

/**
 * `count` slots of `slotBytes` per ingest thread, in a SharedArrayBuffer made here and handed to `register`
 * (the module page-locks it, so batches are gathered from the slots by DMA). A body larger than a slot, or one
 * that arrives while every slot is taken, goes in an ordinary allocation as before.
 */
export interface IngestSlots {
  readonly slotBytes: number;
  readonly count: number;
  register?(memory: SharedArrayBuffer): HostRegistration;
}

/** One thread's slots, and the registration released once that thread is gone and its requests are answered. */
function makeSlots(cfg: IngestSlots | undefined): { data?: BodySlots; release(): void } {
  if (!cfg || cfg.count <= 0 || cfg.slotBytes <= 0) return { release() {} };
  const memory = new SharedArrayBuffer(cfg.slotBytes * cfg.count + 4096);
  let reg: HostRegistration | undefined;
  try {
    reg = cfg.register?.(memory);
  } catch (e) {
    // Slots work unregistered (batches are then merged on this thread): a warning, not a failure.
    process.stderr.write(`torchc serve: request slots not page-locked: ${(e as Error).message}\n`);
  }
  const offset = reg?.offset ?? 0;
  const count = Math.min(cfg.count, Math.floor((reg?.bytes ?? memory.byteLength) / cfg.slotBytes));
  return { data: { memory, offset, slotBytes: cfg.slotBytes, count }, release: () => reg?.release() };
}

/**
 * The worker beside this file: the compiled package runs ingest-worker.js; TypeScript sources (a checkout, the
 * tests) register tsx's loader in the new thread first (found from here, not from the working directory), then
 * import ingest-worker.ts.
 */
function workerEntry(): { entry: string; eval: boolean } {
  const ts = import.meta.url.endsWith(".ts");
  const script = new URL(`./ingest-worker.${ts ? "ts" : "js"}`, import.meta.url);
  if (!ts) return { entry: fileURLToPath(script), eval: false };
  const api = pathToFileURL(tsxEsmApi()).href;
  const code = `import(${JSON.stringify(api)}).then((t) => { t.register(); return import(${JSON.stringify(script.href)}); });`;
  return { entry: code, eval: true };
}

/** tsx's ESM register API (its package's "./esm/api" import export; createRequire alone resolves the CJS one). */
function tsxEsmApi(): string {
  const manifest = createRequire(import.meta.url).resolve("tsx/package.json");
  const pkg = JSON.parse(readFileSync(manifest, "utf8")) as {
    exports: Record<string, { import?: { default?: string } }>;
  };
  const rel = pkg.exports["./esm/api"]?.import?.default;
  if (!rel) throw new Error(`tsx at ${dirname(manifest)} has no ESM register API ("./esm/api")`);
  return join(dirname(manifest), rel);
}

/** Threads that may die and be replaced in a minute before the server gives up. */
const RESTARTS_PER_MINUTE = 5;
/** How long close() lets a thread finish what it has in flight. */
const CLOSE_GRACE_MS = 10_000;

/**
 * Starts `n` ingest threads answering HTTP on `cfg`'s port for `h`. `onFatal` is told when the HTTP side is gone
 * for good (threads dying faster than they can be replaced, or a replacement failing to listen).
 */
export async function startIngestThreads(
  n: number,
  cfg: IngestConfig,
  h: HttpAppHandlers,
  onFatal?: (why: string) => void,
): Promise<HttpSide> {
  const why = ingestThreadsRefusal(n);
  if (why) throw new Error(why);
  const { host, port, slots, ...app } = cfg;
  /** Each thread's requests in flight here, and its slots' release (once it has exited and they are answered). */
  const threads = new Map<Worker, { inFlight: number; exited: boolean; release(): void }>();
  const releaseIfDone = (w: Worker) => {
    const t = threads.get(w);
    if (t?.exited && t.inFlight === 0) {
      threads.delete(w);
      try {
        t.release();
      } catch (e) {
        // a context with a sticky fault cannot unregister; the process goes on draining
        process.stderr.write(`torchc serve: releasing request slots failed: ${(e as Error).message}\n`);
      }
    }
  };
  const workers = new Set<Worker>();
  let closing = false;
  let draining = false;
  let url = "";
  let boundPort = port;

  const post = (w: Worker, m: ToWorker, transfer: ArrayBuffer[] = []) => {
    try {
      w.postMessage(m, transfer);
      return;
    } catch {}
    try {
      w.postMessage(m); // a buffer that cannot move is copied
    } catch (e) {
      // what cannot be cloned at all fails that request only
      if ("id" in m && m.t !== "error")
        w.postMessage({ t: "error", id: m.id, error: toWireError(e) } satisfies ToWorker);
    }
  };
  /** Thread deaths while serving, newest last: more than RESTARTS_PER_MINUTE in a minute is fatal. */
  const deaths: number[] = [];
  const lost = (why: string) => {
    if (closing) return;
    closing = true;
    process.stderr.write(`torchc serve: ${why}; the server stops\n`);
    onFatal?.(why);
  };

  const onMessage = (w: Worker, m: ToMain) => {
    switch (m.t) {
      case "infer": {
        // the request's moved buffers go back with the answer, for the thread's body pool: once the batch has
        // run (or failed) nothing reads them (its rows were copied into the batch, or it ran and is done)
        const bodies = transferables(m.req.tensors);
        const t = threads.get(w);
        if (t) t.inFlight++;
        h.infer(m.req)
          .then(
            (outputs) => {
              const owned = ownedOutputs(outputs);
              const out = transferables(owned.map((o) => o.tensor));
              post(w, { t: "result", id: m.id, outputs: owned, bodies }, [...out, ...bodies]);
            },
            (e) => post(w, { t: "error", id: m.id, error: toWireError(e), bodies }, bodies),
          )
          .finally(() => {
            const t = threads.get(w);
            if (t) t.inFlight--;
            releaseIfDone(w);
          });
        return;
      }
      case "count":
        h.count(m.status);
        if (m.bodies) h.bodies?.(m.bodies);
        return;
      case "metrics":
        h.metrics().then(
          (r) => post(w, { t: "metrics", id: m.id, ...r }),
          (e) => post(w, { t: "metrics", id: m.id, contentType: "text/plain", text: `# ${String(e)}\n` }),
        );
        return;
      default:
        return;
    }
  };

  /** One thread, resolved once it listens (or rejected with why it could not). */
  const spawn = (listenPort: number): Promise<{ url: string; port: number }> => {
    const { entry, eval: isCode } = workerEntry();
    const own = makeSlots(slots);
    const workerData: IngestWorkerData = {
      app,
      host,
      port: listenPort,
      reusePort: n > 1,
      ...(own.data ? { slots: own.data } : {}),
    };
    const w = new Worker(entry, { workerData, eval: isCode });
    workers.add(w);
    threads.set(w, { inFlight: 0, exited: false, release: own.release });
    return new Promise((resolve, reject) => {
      let listening = false;
      w.on("message", (m: ToMain) => {
        if (m.t === "listening") {
          listening = true;
          if (draining) post(w, { t: "drain" });
          resolve({ url: m.url, port: m.port });
        } else if (m.t === "failed") reject(new Error(m.message));
        else onMessage(w, m);
      });
      w.on("error", (e) => {
        if (!listening) reject(e);
        else process.stderr.write(`torchc serve: ingest thread failed: ${e.message}\n`);
      });
      w.on("exit", (code) => {
        workers.delete(w);
        // its slots stay page-locked while requests it handed over are still being answered here
        const t = threads.get(w);
        if (t) t.exited = true;
        releaseIfDone(w);
        if (!listening) return reject(new Error(`ingest thread exited (${code}) before it listened`));
        if (closing) return;
        // a thread that dies while serving is replaced on the same port, unless they keep dying
        const now = performance.now();
        deaths.push(now);
        while (deaths.length && now - deaths[0] > 60_000) deaths.shift();
        if (deaths.length > RESTARTS_PER_MINUTE)
          return lost(
            `${deaths.length} ingest threads died within a minute (the last with exit code ${code})`,
          );
        spawn(boundPort).catch((e) => lost(`replacing an ingest thread failed: ${(e as Error).message}`));
      });
    });
  };

  try {
    // the first thread resolves a port of 0; the others join it there
    const first = await spawn(port);
    url = first.url;
    boundPort = first.port;
    await Promise.all(Array.from({ length: n - 1 }, () => spawn(boundPort)));
  } catch (e) {
    closing = true;
    await Promise.all([...workers].map((w) => w.terminate()));
    throw e;
  }

  return {
    app: undefined,
    get url() {
      return url;
    },
    stopAccepting() {
      draining = true;
      for (const w of workers) post(w, { t: "drain" });
    },
    async close() {
      closing = true;
      // each thread answers what it has in flight and ends; one that does not within the grace period is stopped
      await Promise.all(
        [...workers].map(
          (w) =>
            new Promise<void>((resolve) => {
              const stop = setTimeout(() => void w.terminate(), CLOSE_GRACE_MS);
              w.once("exit", () => {
                clearTimeout(stop);
                resolve();
              });
              post(w, { t: "close" });
            }),
        ),
      );
    },
  };
}

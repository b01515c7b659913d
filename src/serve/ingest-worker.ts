/**
 * One ingest thread of `torchc serve --ingest-threads` (./ingest.ts): the protocol's HTTP app (./http-app.ts)
 * whose runs are messages to the thread that owns the batcher. Request bodies are read into allocations of their
 * own and decoded here; the decoded tensors move to that thread (the allocation is transferred, not copied).
 * Requests that fail to parse or check are answered here and never leave the thread.
 */
import { parentPort, workerData } from "node:worker_threads";
import { BodyPool } from "./body.js";
import { httpApp, type NamedOutputs } from "./http-app.js";
import {
  fromWireError,
  type IngestWorkerData,
  type ToMain,
  type ToWorker,
  transferables,
} from "./ingest-protocol.js";

const data = workerData as IngestWorkerData;
const port = parentPort;
if (!port) throw new Error("ingest-worker.ts runs as a worker thread of `torchc serve --ingest-threads`");

const send = (m: ToMain, transfer: ArrayBuffer[] = []) => {
  try {
    port.postMessage(m, transfer);
  } catch {
    port.postMessage(m); // a buffer that cannot move is copied
  }
};

let nextId = 0;
let draining = false;
/** `slot`: the body slot the request's tensors view, freed when the batching thread answers (it read them then). */
const pending = new Map<
  number,
  { resolve(v: NamedOutputs): void; reject(e: Error): void; slot: number | undefined }
>();
const metricsWaiting = new Map<number, (r: { contentType: string; text: string }) => void>();

// Bodies are read into this pool's slots (shared with the batcher's thread, page-locked there) or allocations
// (moved to the batcher's thread and back with the answer).
const pool = new BodyPool(undefined, data.slots);
const app = httpApp(
  { ...data.app, bodies: pool, bodiesLeave: true },
  {
    draining: () => draining,
    infer(decoded, body) {
      const id = nextId++;
      return new Promise<NamedOutputs>((resolve, reject) => {
        pending.set(id, { resolve, reject, slot: body ? pool.slotOf(body) : undefined });
        send({ t: "infer", id, req: decoded }, transferables(decoded.tensors));
      });
    },
    count: (status) => send({ t: "count", status, bodies: pool.takePlaced() }),
    metrics() {
      const id = nextId++;
      return new Promise((resolve) => {
        metricsWaiting.set(id, resolve);
        send({ t: "metrics", id });
      });
    },
  },
);

port.on("message", (m: ToWorker) => {
  switch (m.t) {
    case "result":
    case "error": {
      for (const b of m.bodies ?? []) pool.adopt(b);
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (p?.slot !== undefined) pool.freeSlot(p.slot);
      if (m.t === "result") p?.resolve(m.outputs);
      else p?.reject(fromWireError(m.error));
      return;
    }
    case "metrics":
      metricsWaiting.get(m.id)?.(m);
      metricsWaiting.delete(m.id);
      return;
    case "drain":
      draining = true;
      return;
    case "close":
      draining = true;
      // answers what is in flight, then the thread ends (the port is the last handle keeping it alive)
      void app.close().finally(() => port.close());
      return;
  }
});

app.listen({ host: data.host, port: data.port, ...(data.reusePort ? { reusePort: true } : {}) }).then(
  (url) => {
    const address = app.server.address();
    send({ t: "listening", url, port: typeof address === "object" && address ? address.port : data.port });
  },
  (e: Error) => {
    send({ t: "failed", message: e.message });
    port.close();
  },
);

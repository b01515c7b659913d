/**
 * One load-generator thread (./serve-load-gen.ts starts several): a closed loop per virtual user, each on its
 * own keep-alive connection (undici Client), sending a batch-1 request, reading the whole answer, checking it
 * against PyTorch's output for that input, and sending the next. Latency is from the request's start to the
 * answer's last byte. Every `malformedEvery`-th request of a user is a malformed one that must be answered 400.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Client } from "undici";
import {
  type Body,
  type Case,
  checkAnswer,
  MALFORMED_KINDS,
  malformedBody,
  requestBody,
  type Wire,
} from "./serve-load-wire.js";

export interface WorkerJob {
  readonly origin: string;
  readonly wire: Wire;
  readonly cases: readonly Case[];
  readonly tolerance: number;
  /** Virtual user ids this thread runs. */
  readonly users: readonly number[];
  readonly warmMs: number;
  readonly measureMs: number;
  /** 0: none. */
  readonly malformedEvery: number;
}

export interface WorkerResult {
  /** Latencies (ms) of correct 200 answers to valid requests that completed inside the measured window. */
  readonly latencies: Float64Array;
  /** Valid requests completed inside the window, by outcome: "200", other statuses, "transport", "wrong". */
  readonly window: Record<string, number>;
  /** The same over the whole run, warm-up included. */
  readonly total: Record<string, number>;
  readonly checked: number;
  readonly worstRelative: number;
  /** The first few wrong answers and transport errors, for the log. */
  readonly examples: readonly string[];
  readonly malformed: {
    readonly sent: number;
    readonly byStatus: Record<string, number>;
    readonly byKind: Record<string, number>;
  };
  /** This thread's event-loop utilization over the window (near 1: the generator itself is the limit). */
  readonly elu: number;
}

const bump = (o: Record<string, number>, k: string) => {
  o[k] = (o[k] ?? 0) + 1;
};

async function run(job: WorkerJob, startAt: number): Promise<WorkerResult> {
  const path = `/v2/models/${encodeURIComponent(job.wire.model)}/infer`;
  const valid: Body[] = job.cases.map((c) => requestBody(job.wire, [c.input]));
  const measureAt = startAt + job.warmMs;
  const endAt = measureAt + job.measureMs;
  const latencies: number[] = [];
  const window: Record<string, number> = {};
  const total: Record<string, number> = {};
  const malformed = { sent: 0, byStatus: {} as Record<string, number>, byKind: {} as Record<string, number> };
  const examples: string[] = [];
  let checked = 0;
  let badCount = 0;
  let worst = 0;
  let eluStart = performance.eventLoopUtilization();
  let eluEnd: ReturnType<typeof performance.eventLoopUtilization> | undefined;
  setTimeout(() => {
    eluStart = performance.eventLoopUtilization();
  }, measureAt - Date.now());
  setTimeout(() => {
    eluEnd = performance.eventLoopUtilization(eluStart);
  }, endAt - Date.now());

  const user = async (id: number) => {
    const client = new Client(job.origin, {
      keepAliveTimeout: 60_000,
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    let k = 0;
    await new Promise((r) => setTimeout(r, Math.max(0, startAt - Date.now())));
    while (Date.now() < endAt) {
      k++;
      const bad = job.malformedEvery > 0 && (k + id) % job.malformedEvery === 0;
      const which = (id + k) % job.cases.length;
      // The kinds in turn across this thread's malformed requests.
      const kind = MALFORMED_KINDS[badCount % MALFORMED_KINDS.length];
      if (bad) {
        badCount++;
        bump(malformed.byKind, kind);
      }
      const req = bad ? malformedBody(job.wire, job.cases[which].input, kind) : valid[which];
      const t0 = performance.now();
      let outcome: string;
      try {
        const r = await client.request({ path, method: "POST", headers: req.headers, body: req.body });
        const bytes = new Uint8Array(await r.body.arrayBuffer());
        if (bad) {
          malformed.sent++;
          bump(malformed.byStatus, String(r.statusCode));
          continue;
        }
        if (r.statusCode !== 200) outcome = String(r.statusCode);
        else {
          const h = r.headers["inference-header-content-length"];
          const v = checkAnswer(
            job.wire,
            Array.isArray(h) ? h[0] : h,
            bytes,
            [job.cases[which].output],
            job.tolerance,
          );
          checked++;
          worst = Math.max(worst, v.relative);
          outcome = v.ok ? "200" : "wrong";
          if (!v.ok && examples.length < 5) examples.push(`case ${which}: ${v.why}`);
        }
      } catch (e) {
        if (bad) {
          malformed.sent++;
          bump(malformed.byStatus, "transport");
        }
        outcome = "transport";
        if (examples.length < 5) examples.push(`transport: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 20)); // a dead server must not turn this into a busy loop
      }
      const t1 = performance.now();
      const now = Date.now();
      if (bad) continue;
      bump(total, outcome);
      if (now >= measureAt && now <= endAt) {
        bump(window, outcome);
        if (outcome === "200") latencies.push(t1 - t0);
      }
    }
    await client.close();
  };
  await Promise.all(job.users.map(user));
  return {
    latencies: Float64Array.from(latencies),
    window,
    total,
    checked,
    worstRelative: worst,
    examples,
    malformed,
    elu: (eluEnd ?? performance.eventLoopUtilization(eluStart)).utilization,
  };
}

// Started with the job; says it is ready, then is told when to begin (a wall-clock time shared by all threads).
const port = parentPort;
if (port) {
  port.postMessage({ ready: true });
  port.once("message", (m: { startAt: number }) => {
    void run(workerData as WorkerJob, m.startAt).then(
      (r) => port.postMessage({ result: r }, [r.latencies.buffer as ArrayBuffer]),
      (e: Error) => port.postMessage({ error: e.stack ?? e.message }),
    );
  });
}

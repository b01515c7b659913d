/**
 * Runs the zoo's jobs in child processes (bench/zoo-one): `slots` at a time, each slot pinned to a GPU
 * (CUDA_VISIBLE_DEVICES), a time limit per job, and a deadline for the whole run after which nothing new starts
 * and running children are stopped. Timing is exclusive per GPU: a child asks before compiled.benchmark() and
 * waits until no other child on its GPU is timing (others may still be compiling or checking numbers).
 */
import { type ChildProcess, fork } from "node:child_process";
import type { ErrorInfo, PrecisionRun, Stage } from "./zoo-classify.js";
import type { ChildMessage, OneJob } from "./zoo-one.js";

export interface Slot {
  /** CUDA_VISIBLE_DEVICES for its children; undefined leaves the environment alone. */
  readonly gpu?: string;
}

export type JobOutcome =
  | { readonly kind: "result"; readonly run: PrecisionRun; readonly error?: ErrorInfo }
  | { readonly kind: "timeout"; readonly stage?: Stage; readonly seconds: number }
  | { readonly kind: "crash"; readonly stage?: Stage; readonly exit: string; readonly stderrTail: string }
  | { readonly kind: "not-run"; readonly reason: string };

export interface PoolOptions {
  readonly script: string;
  readonly slots: readonly Slot[];
  readonly timeoutS: number;
  /** performance.now() after which no job starts and running ones are stopped (recorded as not run). */
  readonly deadline: number;
  /** Extra node flags for the children (the parent's execArgv come first: tsx's loader when run from source). */
  readonly nodeFlags?: readonly string[];
  readonly log?: (line: string) => void;
}

class GpuLock {
  private holder: ChildProcess | undefined;
  private readonly waiting: ChildProcess[] = [];
  acquire(c: ChildProcess): void {
    if (this.holder === undefined) this.grant(c);
    else this.waiting.push(c);
  }
  release(c: ChildProcess): void {
    const i = this.waiting.indexOf(c);
    if (i >= 0) this.waiting.splice(i, 1);
    if (this.holder !== c) return;
    this.holder = undefined;
    const next = this.waiting.shift();
    if (next) this.grant(next);
  }
  private grant(c: ChildProcess): void {
    this.holder = c;
    if (c.connected) c.send({ type: "gpu-granted" });
  }
}

/** Children alive now, so that a runner stopped by a signal can take them down with it. */
const LIVE = new Set<ChildProcess>();

export function killChildren(): void {
  for (const c of LIVE) c.kill("SIGKILL");
}

function runChild(job: OneJob, slot: Slot, lock: GpuLock, o: PoolOptions, tag: string): Promise<JobOutcome> {
  return new Promise((settle) => {
    const env = { ...process.env, ...(slot.gpu !== undefined ? { CUDA_VISIBLE_DEVICES: slot.gpu } : {}) };
    const child = fork(o.script, [JSON.stringify(job)], {
      env,
      execArgv: [...process.execArgv, ...(o.nodeFlags ?? [])],
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    LIVE.add(child);
    let stage: Stage | undefined;
    let outcome: JobOutcome | undefined;
    let stderrTail = "";
    const keepTail = (s: string) => {
      stderrTail = (stderrTail + s).slice(-2000);
    };
    child.stdout?.on("data", (d: Buffer) => o.log?.(`  [${tag}] ${d.toString().trimEnd()}`));
    child.stderr?.on("data", (d: Buffer) => {
      keepTail(d.toString());
      o.log?.(`  [${tag}] ${d.toString().trimEnd()}`);
    });
    child.on("message", (m: ChildMessage) => {
      if (m.type === "stage") stage = m.stage;
      else if (m.type === "gpu") m.gpu === "wanted" ? lock.acquire(child) : lock.release(child);
      else if (m.type === "result")
        outcome = { kind: "result", run: m.run, ...(m.error ? { error: m.error } : {}) };
    });
    const started = performance.now();
    const limitMs = Math.max(0, Math.min(o.timeoutS * 1000, o.deadline - started));
    const byDeadline = o.timeoutS * 1000 > o.deadline - started;
    const timer = setTimeout(() => {
      if (outcome) return;
      outcome = byDeadline
        ? { kind: "not-run", reason: `stopped at the run's time budget (in ${stage ?? "start-up"})` }
        : { kind: "timeout", ...(stage ? { stage } : {}), seconds: o.timeoutS };
      child.kill("SIGKILL");
    }, limitMs);
    // "close", not "exit": by then every IPC message and the last stderr lines have arrived.
    child.on("close", (code, signal) => {
      LIVE.delete(child);
      clearTimeout(timer);
      lock.release(child);
      settle(
        outcome ?? {
          kind: "crash",
          ...(stage ? { stage } : {}),
          exit: signal ? `signal ${signal}` : `exit code ${code}`,
          stderrTail,
        },
      );
    });
  });
}

/**
 * Runs every job; onOutcome sees each as it ends (write results there, so that a killed run keeps them).
 * Jobs left when the deadline passes are reported as not run.
 */
export async function runPool<J extends { readonly job: OneJob; readonly tag: string }>(
  jobs: readonly J[],
  o: PoolOptions,
  onOutcome: (job: J, outcome: JobOutcome) => void,
): Promise<void> {
  const locks = new Map<string, GpuLock>();
  const lockOf = (s: Slot) => {
    const key = s.gpu ?? "default";
    if (!locks.has(key)) locks.set(key, new GpuLock());
    return locks.get(key) as GpuLock;
  };
  let next = 0;
  const worker = async (slot: Slot) => {
    while (next < jobs.length) {
      const j = jobs[next++];
      if (performance.now() >= o.deadline) {
        onOutcome(j, { kind: "not-run", reason: "the run's time budget was spent before it started" });
        continue;
      }
      o.log?.(`start ${j.tag}${slot.gpu !== undefined ? ` on GPU ${slot.gpu}` : ""}`);
      onOutcome(j, await runChild(j.job, slot, lockOf(slot), o, j.tag));
    }
  };
  await Promise.all(o.slots.map(worker));
}

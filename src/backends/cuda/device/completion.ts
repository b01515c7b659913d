/**
 * Waiting for queued GPU work without blocking the JS event loop. Three ways, chosen per module
 * (bench/NOTES.md has the measurements behind the default; H100, EfficientNet-B0 fp16, host in/out:
 * batch 1 poll 0.497 / worker 0.546 / hostfn 0.605 ms, batch 128 6.75 / 7.56 / 7.15 ms):
 *
 * - "poll" (default): cuEventQuery between turns of the event loop (setImmediate). Lowest latency; timers
 *   and I/O still run every turn. It spins for at most POLL_SPIN_MS, then hands the rest of the wait to a
 *   worker thread as "worker" does: a batch-128 pass (~7 ms) otherwise costs thousands of loop turns, each an
 *   Immediate object and a driver call: garbage, the source of the 2.3 ms GC pause inside the event-loop
 *   check's 4.3 ms gap (H200, session 10). With the spin bounded, no GC fell in any gap over seven H100 runs
 *   (session 11). A short pass (batch 1, ~0.4 ms) still finishes while spinning.
 * - "worker": cuEventSynchronize on one of koffi's worker threads; the promise settles when the worker
 *   returns. The JS thread is idle meanwhile (the worker spins in the driver instead); one thread hand-off
 *   more of latency.
 * - "hostfn": cuLaunchHostFunc with a koffi-registered callback. The driver's callback thread blocks until
 *   the main thread has run the callback, so the stream (and every stream's host functions) stalls behind a
 *   busy event loop; and a host-blocking CUDA call on the main thread while one is pending deadlocks. Kept
 *   for the measurement, not for production.
 */
import { CUDA } from "../../../ffi/cuda.js";
import { koffi } from "../../../ffi/koffi.js";
import { callAsync } from "../../../ffi/library.js";
import { checkCuda } from "../../../ffi/status.js";
import type { CompileOptions } from "../../../runtime/options.js";
import type { CudaEvent } from "./event.js";
import { type Stream, streamHandle } from "./stream.js";
import { fail } from "./validate.js";

/** The `completion` compile option (checked there: runtime/validate-options.ts). */
export type CompletionStrategy = NonNullable<CompileOptions["completion"]>;

/** How long "poll" spins before it waits on a worker thread (TORCHC_POLL_SPIN_MS overrides it, for A/B timing). */
export const POLL_SPIN_MS = 1;

/** Worker-thread waits "poll" may hold at once: at most half of the 8–16 libuv threads torchc asks for (host-copy.ts). */
const MAX_WORKER_WAITS = 4;
let workerWaits = 0;

function pollSpinMs(): number {
  const v = Number(process.env.TORCHC_POLL_SPIN_MS);
  return process.env.TORCHC_POLL_SPIN_MS !== undefined && Number.isFinite(v) && v >= 0 ? v : POLL_SPIN_MS;
}

/** Queries `event` between event-loop turns until it completes (true) or `deadline` passes (false). */
function spinUntil(event: CudaEvent, deadline: number): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const tick = () => {
      try {
        if (event.query()) resolve(true);
        else if (performance.now() >= deadline) resolve(false);
        else setImmediate(tick);
      } catch (e) {
        reject(e);
      }
    };
    setImmediate(tick);
  });
}

/** Resolves once all work recorded before `event` on `stream` has finished. */
export async function whenComplete(
  stream: Stream,
  event: CudaEvent,
  strategy: CompletionStrategy = "poll",
): Promise<void> {
  switch (strategy) {
    case "worker":
      // Fast path: already done (small models finish while the host was still copying).
      if (event.query()) return;
      checkCuda("cuEventSynchronize", await callAsync(CUDA.fn.cuEventSynchronize, event.handle));
      return;
    case "poll": {
      if (event.query()) return;
      // One promise per wait; past the spin budget the wait moves to a worker thread.
      if (await spinUntil(event, performance.now() + pollSpinMs())) return;
      // Each worker wait holds a libuv thread (host copies run there too): past the cap, go on polling.
      if (workerWaits >= MAX_WORKER_WAITS) {
        await spinUntil(event, Number.POSITIVE_INFINITY);
        return;
      }
      workerWaits++;
      try {
        checkCuda("cuEventSynchronize", await callAsync(CUDA.fn.cuEventSynchronize, event.handle));
      } finally {
        workerWaits--;
      }
      return;
    }
    case "hostfn":
      return hostFunctionDone(stream);
    default:
      fail(`unknown completion strategy '${String(strategy)}' (worker, poll, hostfn)`);
  }
}

let hostFn: { pointer: unknown; pending: Map<number, () => void>; next: number } | undefined;
// A callback from the driver's thread does not keep Node's event loop alive: a timer does while any is pending.
let keepAlive: ReturnType<typeof setInterval> | undefined;

function hostFunctionDone(stream: Stream): Promise<void> {
  if (!hostFn) {
    const k = koffi();
    const proto = k.proto("void torchc_host_fn(void *userData)");
    const pending = new Map<number, () => void>();
    const pointer = k.register((userData: unknown) => {
      const id = Number(typeof userData === "bigint" ? userData : k.address(userData as never));
      const done = pending.get(id);
      pending.delete(id);
      if (pending.size === 0 && keepAlive) {
        clearInterval(keepAlive);
        keepAlive = undefined;
      }
      done?.();
    }, k.pointer(proto));
    hostFn = { pointer, pending, next: 1 };
  }
  const h = hostFn;
  const id = h.next++;
  return new Promise<void>((resolve) => {
    h.pending.set(id, resolve);
    keepAlive ??= setInterval(() => {}, 1 << 30);
    const rc = CUDA.fn.cuLaunchHostFunc(streamHandle(stream), h.pointer, BigInt(id) as never);
    if (rc !== 0) {
      h.pending.delete(id);
      if (h.pending.size === 0 && keepAlive) {
        clearInterval(keepAlive);
        keepAlive = undefined;
      }
      checkCuda("cuLaunchHostFunc", rc);
    }
  });
}

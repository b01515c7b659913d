/** CUDA events: ordering between streams and GPU-side timing. */
import { CU_EVENT_BLOCKING_SYNC, CU_EVENT_DISABLE_TIMING, CUDA } from "../../../ffi/cuda.js";
import { checkCuda } from "../../../ffi/status.js";
import type { OutNum, OutPtr } from "../../../ffi/types.js";
import { CudaContext } from "./context.js";
import { type Stream, streamHandle } from "./stream.js";
import { checkInt, fail } from "./validate.js";

export class CudaEvent {
  private destroyed = false;

  private constructor(
    private readonly raw: bigint,
    readonly timing: boolean,
  ) {}

  /** `timing: false` makes a cheaper event for ordering only; `blockingSync` makes synchronize() sleep. */
  static create(opts: { timing?: boolean; blockingSync?: boolean } = {}): CudaEvent {
    CudaContext.current();
    const timing = opts.timing !== false;
    const flags = (timing ? 0 : CU_EVENT_DISABLE_TIMING) | (opts.blockingSync ? CU_EVENT_BLOCKING_SYNC : 0);
    const out: OutPtr = [null];
    checkCuda("cuEventCreate", CUDA.fn.cuEventCreate(out, flags));
    if (out[0] === null) throw new Error("cuEventCreate returned a NULL event");
    return new CudaEvent(out[0], timing);
  }

  get handle(): bigint {
    if (this.destroyed) fail("the event has been destroyed");
    return this.raw;
  }

  record(stream: Stream | null = null): this {
    checkCuda("cuEventRecord", CUDA.fn.cuEventRecord(this.handle, streamHandle(stream)));
    return this;
  }

  synchronize(): void {
    checkCuda("cuEventSynchronize", CUDA.fn.cuEventSynchronize(this.handle));
  }

  /** True when the recorded work has completed. */
  query(): boolean {
    const rc = CUDA.fn.cuEventQuery(this.handle);
    if (rc === 600) return false;
    checkCuda("cuEventQuery", rc);
    return true;
  }

  /** Milliseconds between `start` and this event; both must be recorded and this one complete. */
  elapsedSince(start: CudaEvent): number {
    if (!this.timing || !start.timing) fail("elapsed time needs two events created with timing enabled");
    const ms: OutNum = [0];
    checkCuda("cuEventElapsedTime_v2", CUDA.fn.cuEventElapsedTime_v2(ms, start.handle, this.handle));
    return ms[0];
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    checkCuda("cuEventDestroy_v2", CUDA.fn.cuEventDestroy_v2(this.raw));
  }
}

/**
 * GPU time per repetition of `body` on `stream`, from events around `reps` calls after `warmup` calls.
 * `body` must only queue work on `stream`.
 */
export function timeOnStream(
  stream: Stream,
  body: () => void,
  opts: { warmup?: number; reps?: number } = {},
): number {
  const warmup = checkInt("warmup", opts.warmup ?? 3, 0);
  const reps = checkInt("reps", opts.reps ?? 20, 1);
  for (let i = 0; i < warmup; i++) body();
  const start = CudaEvent.create();
  const end = CudaEvent.create();
  try {
    start.record(stream);
    for (let i = 0; i < reps; i++) body();
    end.record(stream);
    end.synchronize();
    return end.elapsedSince(start) / reps;
  } finally {
    start.destroy();
    end.destroy();
  }
}

/**
 * Times each step of a forward pass on its own: a CUDA event pair around every launch, the steps queued one after
 * another on one stream (eagerly, not as a CUDA graph), one host wait per repetition.
 */
import { CudaEvent } from "../device/event.js";
import type { Stream } from "../device/stream.js";
import { checkInt } from "../device/validate.js";

/** GPU ms of step i in repetition r, as `ms[i][r]`. Each launch must only queue work on `stream`. */
export function timeStepsWithEvents(
  stream: Stream,
  launches: readonly (() => void)[],
  opts: { reps?: number; warmup?: number } = {},
): number[][] {
  const reps = checkInt("reps", opts.reps ?? 20, 1);
  const warmup = checkInt("warmup", opts.warmup ?? 3, 0);
  for (let w = 0; w < warmup; w++) for (const l of launches) l();
  const made: CudaEvent[] = [];
  try {
    const pairs = launches.map(() => {
      const p = { start: CudaEvent.create(), end: CudaEvent.create() };
      made.push(p.start, p.end);
      return p;
    });
    const ms = launches.map(() => [] as number[]);
    for (let r = 0; r < reps; r++) {
      launches.forEach((l, i) => {
        pairs[i].start.record(stream);
        l();
        pairs[i].end.record(stream);
      });
      stream.synchronize();
      for (const [i, p] of pairs.entries()) ms[i].push(p.end.elapsedSince(p.start));
    }
    return ms;
  } finally {
    for (const e of made) e.destroy();
  }
}

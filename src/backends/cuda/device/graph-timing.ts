/**
 * GPU time per call of two candidates, measured the way the engine runs them: each candidate's calls captured
 * into a CUDA graph (thread-local capture, as engine.ts does) and the graphs replayed, timed with events,
 * alternating the two, median of the rounds. Graph replay leaves out the host's per-call cost (koffi, library
 * launch overhead), which in eager calls can outweigh a GEMM of a few microseconds. When either candidate
 * cannot be captured, both are timed by eager calls instead, and the result says why.
 */
import { CudaEvent, timeOnStream } from "./event.js";
import { type CudaGraph, captureGraph } from "./graph.js";
import type { Stream } from "./stream.js";
import { checkInt } from "./validate.js";

export interface PairTimingOptions {
  /** Calls captured into each graph (default 20). */
  readonly perGraph?: number;
  /** Graph replays timed per round (default 3). */
  readonly replays?: number;
  /** Rounds, each timing both candidates, first then second (default 5). */
  readonly rounds?: number;
}

export interface PairTiming {
  /** Median GPU ms per call of each candidate, in the order given. */
  readonly ms: readonly [number, number];
  /** Every round's ms per call of each candidate. */
  readonly rounds: readonly [readonly number[], readonly number[]];
  /** False when a candidate could not be captured and both were timed by eager calls. */
  readonly graph: boolean;
  /** Why capture failed (first line of the error), when `graph` is false. */
  readonly why?: string;
}

/** The median of `v` (the mean of the middle two when its length is even). */
export function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Times `runs[0]` against `runs[1]` on `stream`; each must only queue work on `stream`, and be capturable
 * there. Each runs once eagerly first (lazy library initialisation stays outside capture, as in the engine).
 */
export function timePairOnStream(
  stream: Stream,
  runs: readonly [() => void, () => void],
  opts: PairTimingOptions = {},
): PairTiming {
  const perGraph = checkInt("perGraph", opts.perGraph ?? 20, 1);
  const replays = checkInt("replays", opts.replays ?? 3, 1);
  const rounds = checkInt("rounds", opts.rounds ?? 5, 1);
  for (const run of runs) run();
  stream.synchronize();
  const graphs: CudaGraph[] = [];
  try {
    for (const run of runs) graphs.push(captureCalls(stream, run, perGraph));
  } catch (e) {
    for (const g of graphs) g.destroy();
    stream.synchronize();
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    const eager = (run: () => void) => () =>
      timeOnStream(stream, run, { warmup: 2, reps: perGraph * replays });
    return { ...alternate(rounds, [eager(runs[0]), eager(runs[1])]), graph: false, why };
  }
  try {
    for (const g of graphs) {
      g.upload(stream);
      g.launch(stream);
    }
    const timed = (g: CudaGraph) => () => replayMs(stream, g, replays) / perGraph;
    return { ...alternate(rounds, [timed(graphs[0]), timed(graphs[1])]), graph: true };
  } finally {
    stream.synchronize();
    for (const g of graphs) g.destroy();
  }
}

/** `n` calls of `run` captured thread-locally on `stream`, as the engine captures its launches. */
function captureCalls(stream: Stream, run: () => void, n: number): CudaGraph {
  return captureGraph(
    stream,
    () => {
      for (let i = 0; i < n; i++) run();
    },
    { mode: "threadLocal" },
  );
}

/** GPU ms per replay of `graph`, from events around `replays` launches. */
function replayMs(stream: Stream, graph: CudaGraph, replays: number): number {
  const start = CudaEvent.create();
  const end = CudaEvent.create();
  try {
    start.record(stream);
    for (let r = 0; r < replays; r++) graph.launch(stream);
    end.record(stream);
    end.synchronize();
    return end.elapsedSince(start) / replays;
  } finally {
    start.destroy();
    end.destroy();
  }
}

function alternate(
  rounds: number,
  time: readonly [() => number, () => number],
): Pick<PairTiming, "ms" | "rounds"> {
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    a.push(time[0]());
    b.push(time[1]());
  }
  return { ms: [median(a), median(b)], rounds: [a, b] };
}

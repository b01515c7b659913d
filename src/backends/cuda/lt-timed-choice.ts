/**
 * cuBLASLt's algorithm by timing rather than by its heuristic's first answer (opt-in, TORCHC_LT_TIMED=1): the
 * heuristic's candidates for one problem (up to 8) are timed on scratch buffers the way the engine runs them
 * (graph-timing.ts: calls captured in a CUDA graph and replayed), pairwise against the best so far, and a
 * candidate replaces it only when it is at least 3% faster. TensorRT's tactic selection and torch.compile's
 * max-autotune do the same for their GEMMs. Each distinct problem of a build is timed once.
 */
import {
  buildLtPlan,
  destroyLtPlan,
  type LtActivation,
  type LtAlgo,
  type LtHandle,
  ltAlgoCandidates,
  runLtPlan,
  setLtBias,
} from "./device/blaslt-plan.js";
import { timePairOnStream } from "./device/graph-timing.js";
import { DeviceBuffer } from "./device/memory.js";
import { Stream } from "./device/stream.js";
import { ltProblemOf, type MatmulGeometry } from "./kernels/matmul-cublaslt.js";

/** Whether matmul algorithms are chosen by timing. */
export function ltTimedChoiceEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TORCHC_LT_TIMED === "1";
}

/** A candidate must beat the best so far by this factor to replace it (timing noise is a few percent). */
export const LT_TIMED_MARGIN = 0.97;

export interface LtTimedChoice {
  /** Index of the chosen candidate in the heuristic's order (0: the heuristic's own first choice). */
  readonly index: number;
  readonly candidates: number;
  /** GPU ms per call of the heuristic's first choice and of the chosen one. */
  readonly firstMs: number;
  readonly chosenMs: number;
  readonly algo: LtAlgo;
}

/**
 * The tournament over `n` candidates: `time(best, i)` gives [ms of best, ms of i]; pure, so that the rule is
 * tested without a GPU.
 */
export function tournament(
  n: number,
  time: (best: number, challenger: number) => readonly [number, number],
): { index: number; firstMs: number; chosenMs: number } {
  let index = 0;
  let firstMs = Number.NaN;
  let chosenMs = Number.NaN;
  for (let i = 1; i < n; i++) {
    const [bestMs, ms] = time(index, i);
    if (index === 0) firstMs = bestMs;
    chosenMs = bestMs;
    if (ms < bestMs * LT_TIMED_MARGIN) {
      index = i;
      chosenMs = ms;
    }
  }
  return { index, firstMs, chosenMs };
}

const ELEMENT_BYTES = { float16: 2, float32: 4 } as const;

/** Scratch operands sized for `g` (batch strides included), filled with a non-zero pattern. */
function scratch(g: MatmulGeometry, workspaceBytes: number, stream: Stream) {
  const e = ELEMENT_BYTES[g.dtype];
  const span = (stride: number, one: number) => e * (g.batch > 1 && stride > 0 ? stride * g.batch : one);
  const sizes = [span(g.strideA, g.m * g.k), span(g.strideB, g.k * g.n), span(g.strideD, g.m * g.n), e * g.n];
  const buffers = [...sizes, workspaceBytes].map((bytes) => DeviceBuffer.alloc(Math.max(256, bytes)));
  // 0x3c3c is 1.06 in fp16: timing on zeros would flatter some kernels.
  for (const b of buffers.slice(0, 2)) b.fill(0x3c, { stream });
  return buffers;
}

/**
 * Plans `g` with its epilogue, times the heuristic's candidates on scratch buffers and returns the fastest (by
 * the margin), or undefined when the heuristic offers one candidate only. The caller builds the engine's plan
 * with the chosen algorithm (buildLtMatmul's `saved`).
 */
export function timeLtCandidates(
  handle: LtHandle,
  g: MatmulGeometry,
  epilogue: { bias: boolean; activation: LtActivation },
  allowTf32: boolean,
  maxWorkspace: number,
): LtTimedChoice | undefined {
  const what = `${g.m}x${g.n}x${g.k} batch ${g.batch}, timed`;
  const plan = buildLtPlan(handle, ltProblemOf(g, epilogue, allowTf32), maxWorkspace, what);
  let stream: Stream | undefined;
  let buffers: DeviceBuffer[] = [];
  try {
    const algos = ltAlgoCandidates(handle, plan.desc, plan.layouts, maxWorkspace, what);
    if (algos.length < 2) return undefined;
    stream = Stream.create();
    buffers = scratch(g, Math.max(...algos.map((c) => c.workspaceBytes)), stream);
    const [a, b, d, bias, workspace] = buffers;
    if (epilogue.bias) setLtBias(plan, bias.ptr);
    const alpha = new Float32Array([1]);
    const beta = new Float32Array([0]);
    const s = stream;
    const run = (c: LtAlgo) => () =>
      runLtPlan(
        handle,
        { ...plan, ...c },
        { a: a.ptr, b: b.ptr, d: d.ptr, alpha, beta, workspace: c.workspaceBytes > 0 ? workspace.ptr : null },
        s,
      );
    const t = tournament(
      algos.length,
      (best, i) =>
        timePairOnStream(s, [run(algos[best]), run(algos[i])], { perGraph: 10, replays: 3, rounds: 3 }).ms,
    );
    return { ...t, candidates: algos.length, algo: algos[t.index] };
  } finally {
    stream?.synchronize();
    for (const buf of buffers) buf.free();
    stream?.destroy();
    destroyLtPlan(plan);
  }
}

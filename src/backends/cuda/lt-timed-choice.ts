/**
 * cuBLASLt's algorithm by timing rather than by its heuristic's first answer (on by default since session 13;
 * TORCHC_LT_TIMED=0 turns it off): the
 * heuristic's candidates for one problem (up to 8) are timed on scratch buffers the way the engine runs them
 * (graph-timing.ts: calls captured in a CUDA graph and replayed), pairwise against the best so far, and a
 * candidate replaces it only when it is at least 3% faster. TensorRT's tactic selection and torch.compile's
 * max-autotune do the same for their GEMMs. Each distinct problem of a build is timed once. H100, session 11:
 * ViT-B/16 cuBLASLt time −11% at batch 1, −2.3% at batch 64; session 14, whole models against TORCHC_LT_TIMED=0
 * (with the residual epilogue): ViT b1 0.486 vs 0.528, b64 5.026 vs 5.203, BERT b8 0.651 vs 0.679.
 *
 * With TORCHC_LT_SPLITK=1 the heuristic is asked for 16 answers and split-K variants of its first answers that can
 * split K (device/blaslt-splitk.ts) join the tournament after them, under the same rule: small-M, large-K GEMMs
 * (ViT-B/16 batch 1's fc2: 12 CTAs of 128×128 on 132 SMs) get more CTAs. Measured slower, so opt-in (H100,
 * cuBLASLt 13, session 14, bench lt-splitk-sweep): every answer is algo 66, the only reduction scheme offered is
 * COMPUTE_TYPE (a second kernel), and every split lost to its unsplit algorithm (ViT b1 fc2: best unsplit 7.15 µs,
 * best split 9.32); the heuristic gave 8 answers when asked for 32.
 */
import { NativeError } from "../../errors.js";
import {
  buildLtPlan,
  destroyLtPlan,
  type LtActivation,
  type LtAlgo,
  type LtHandle,
  type LtPlan,
  ltAlgoCandidates,
  runLtPlan,
  setLtBias,
} from "./device/blaslt-plan.js";
import { ENGINE_SPLITK, ltSplitKCandidates } from "./device/blaslt-splitk.js";
import { CudaContext } from "./device/context.js";
import { timePairOnStream } from "./device/graph-timing.js";
import type { DeviceBuffer } from "./device/memory.js";
import { TimingScratch } from "./device/timing-scratch.js";
import { ltProblemOf, type MatmulGeometry } from "./kernels/matmul-cublaslt.js";

/**
 * Whether matmul algorithms are chosen by timing: yes unless TORCHC_LT_TIMED=0. H100, session 11 (alone): ViT-B/16
 * −7% at batch 1, −2% at 64; session 13 (with the residual epilogue): ViT-B/16 b1 0.525 → 0.492 ms.
 */
export function ltTimedChoiceEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TORCHC_LT_TIMED !== "0";
}

/**
 * Whether the timing also weighs split-K variants (and 16 heuristic answers rather than 8): only with
 * TORCHC_LT_SPLITK=1, read at each call.
 */
export function ltSplitKEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.TORCHC_LT_SPLITK === "1";
}

/** Heuristic answers asked for when split-K variants are timed too. */
export const LT_SPLITK_HEURISTIC_ALGOS = 16;

/** A candidate must beat the best so far by this factor to replace it (timing noise is a few percent). */
export const LT_TIMED_MARGIN = 0.97;

export interface LtTimedChoice {
  /**
   * Index of the chosen candidate in the heuristic's order, split-K variants after its answers (0: the heuristic's
   * own first choice).
   */
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

/**
 * How much timing a problem gets: 10 calls per graph, 3 replays, 3 rounds (180 calls per pair) for GEMMs of a
 * fraction of a millisecond; past 2·10¹¹ flops (~0.3 ms on an H100) 2 calls per graph and 2 rounds (24 per pair),
 * so that a large GEMM's seven pairs cost tens of milliseconds of its own time, not seconds.
 */
export function ltTimingBudget(g: Pick<MatmulGeometry, "m" | "n" | "k" | "batch">): {
  perGraph: number;
  replays: number;
  rounds: number;
} {
  const flops = 2 * g.m * g.n * g.k * g.batch;
  return flops > 2e11 ? { perGraph: 2, replays: 3, rounds: 2 } : { perGraph: 10, replays: 3, rounds: 3 };
}

/** Scratch operands sized for `g` (batch strides included): A, B, D, the bias and the workspace. */
function scratch(g: MatmulGeometry, workspaceBytes: number, bench: TimingScratch): DeviceBuffer[] {
  const e = ELEMENT_BYTES[g.dtype];
  const span = (stride: number, one: number) => e * (g.batch > 1 && stride > 0 ? stride * g.batch : one);
  // 0x3c3c is 1.06 in fp16 (A, B and the bias); D and the workspace are written by the candidates.
  return [
    bench.buffer(span(g.strideA, g.m * g.k), 0x3c),
    bench.buffer(span(g.strideB, g.k * g.n), 0x3c),
    bench.buffer(span(g.strideD, g.m * g.n), 0),
    bench.buffer(e * g.n, 0x3c),
    bench.buffer(workspaceBytes, 0),
  ];
}

/**
 * The candidates to time: the heuristic's answers; with TORCHC_LT_SPLITK=1 more of them, then their split-K
 * variants (ENGINE_SPLITK: at most 8, none for a problem whose tiles already fill the SMs). A failure to make the
 * variants that is the library's (a cuBLASLt without the calls) leaves the heuristic's answers alone.
 */
function timingCandidates(
  handle: LtHandle,
  plan: LtPlan,
  g: MatmulGeometry,
  maxWorkspace: number,
  what: string,
): LtAlgo[] {
  if (!ltSplitKEnabled()) return ltAlgoCandidates(handle, plan.desc, plan.layouts, maxWorkspace, what);
  const heuristic = ltAlgoCandidates(
    handle,
    plan.desc,
    plan.layouts,
    maxWorkspace,
    what,
    LT_SPLITK_HEURISTIC_ALGOS,
  );
  try {
    const problem = { ...g, sms: CudaContext.current().info.multiprocessors };
    const { candidates } = ltSplitKCandidates(handle, plan, heuristic, problem, maxWorkspace, ENGINE_SPLITK);
    return [...heuristic, ...candidates.map((c) => ({ algo: c.algo, workspaceBytes: c.workspaceBytes }))];
  } catch (e) {
    if (e instanceof NativeError) return heuristic;
    throw e;
  }
}

/**
 * Plans `g` with its epilogue, times the heuristic's candidates on scratch buffers and returns the fastest (by
 * the margin), or undefined when fewer than two candidates run. A candidate cuBLASLt refuses to run (a heuristic
 * answer does not guarantee it) is dropped before timing. The caller builds the engine's plan with the chosen
 * algorithm (buildLtMatmul's `saved`); this plan, its descriptor pointing at scratch, is destroyed here.
 */
export function timeLtCandidates(
  handle: LtHandle,
  g: MatmulGeometry,
  epilogue: { bias: boolean; activation: LtActivation; residual?: true },
  allowTf32: boolean,
  maxWorkspace: number,
): LtTimedChoice | undefined {
  const what = `${g.m}x${g.n}x${g.k} batch ${g.batch}, timed`;
  const plan = buildLtPlan(handle, ltProblemOf(g, epilogue, allowTf32), maxWorkspace, what);
  let bench: TimingScratch | undefined;
  try {
    // asked (and the variants checked) before the bias pointer is set, as buildLtPlan's heuristic query was
    const algos = timingCandidates(handle, plan, g, maxWorkspace, what);
    if (algos.length < 2) return undefined;
    bench = new TimingScratch();
    const s = bench.stream;
    const [a, b, d, bias, workspace] = scratch(g, Math.max(...algos.map((c) => c.workspaceBytes)), bench);
    if (epilogue.bias) setLtBias(plan, bias.ptr);
    const alpha = new Float32Array([1]);
    // a step that adds its residual is timed reading C, as it runs (C: a buffer of D's size)
    const beta = new Float32Array([epilogue.residual ? 1 : 0]);
    const c = epilogue.residual ? { c: bench.buffer(d.bytes, 0x3c).ptr } : {};
    const run = (algo: LtAlgo) => () =>
      runLtPlan(
        handle,
        { ...plan, ...algo },
        {
          a: a.ptr,
          b: b.ptr,
          d: d.ptr,
          ...c,
          alpha,
          beta,
          workspace: algo.workspaceBytes > 0 ? workspace.ptr : null,
        },
        s,
      );
    const runs = algos.filter((c) => {
      try {
        run(c)();
        return true;
      } catch {
        return false;
      }
    });
    s.synchronize();
    if (runs.length < 2) return undefined;
    const t = tournament(
      runs.length,
      (best, i) => timePairOnStream(s, [run(runs[best]), run(runs[i])], ltTimingBudget(g)).ms,
    );
    // The index in the heuristic's order: 0 (its first answer stands) only when that answer ran and won.
    return { ...t, index: algos.indexOf(runs[t.index]), candidates: runs.length, algo: runs[t.index] };
  } finally {
    try {
      bench?.release();
    } finally {
      destroyLtPlan(plan);
    }
  }
}

// The rule that picks cuBLASLt's algorithm by timing (src/backends/cuda/lt-timed-choice.ts): a candidate
// replaces the best so far only when it is at least 3% faster, and what the engine's report says of it.
import { describe, expect, it } from "vitest";
import { REQUESTED_ALGOS } from "../../../src/backends/cuda/device/blaslt-plan.js";
import { describeEngine } from "../../../src/backends/cuda/engine.js";
import {
  LT_SPLITK_HEURISTIC_ALGOS,
  LT_TIMED_MARGIN,
  ltSplitKEnabled,
  ltTimedChoiceEnabled,
  ltTimingBudget,
  tournament,
} from "../../../src/backends/cuda/lt-timed-choice.js";

/** A timer from fixed per-candidate times, recording which pairs were timed. */
function timer(ms: readonly number[]) {
  const pairs: [number, number][] = [];
  const time = (best: number, i: number): [number, number] => {
    pairs.push([best, i]);
    return [ms[best], ms[i]];
  };
  return { time, pairs };
}

describe("cuBLASLt algorithm by timing", () => {
  it("keeps the heuristic's first choice unless another is at least 3% faster", () => {
    const close = timer([10, 9.8, 9.75, 11]);
    expect(tournament(4, close.time)).toEqual({ index: 0, firstMs: 10, chosenMs: 10 });
    const faster = timer([10, 9.8, 8, 11]);
    expect(tournament(4, faster.time)).toEqual({ index: 2, firstMs: 10, chosenMs: 8 });
    expect(8 < 10 * LT_TIMED_MARGIN).toBe(true);
  });

  it("times every challenger against the best so far, once each", () => {
    const t = timer([10, 7, 6.9, 5]);
    const r = tournament(4, t.time);
    // 7 beats 10; 6.9 is not 3% faster than 7; 5 beats 7
    expect(t.pairs).toEqual([
      [0, 1],
      [1, 2],
      [1, 3],
    ]);
    expect(r).toEqual({ index: 3, firstMs: 10, chosenMs: 5 });
  });

  it("times a large GEMM with fewer calls, so that its timing stays tens of milliseconds", () => {
    const g = (m: number, n: number, k: number) =>
      ({
        m,
        n,
        k,
        batch: 1,
        aT: false,
        bT: true,
        strideA: 0,
        strideB: 0,
        strideD: 0,
        dtype: "float16",
      }) as const;
    const calls = (b: { perGraph: number; replays: number; rounds: number }) =>
      2 * b.perGraph * b.replays * b.rounds;
    // ViT-B/16 batch 64's fc1: 12608 × 3072 × 768 (6·10¹⁰ flops): the full budget
    expect(calls(ltTimingBudget(g(12608, 3072, 768)))).toBe(180);
    // an LLM-sized projection, 8192 × 8192 × 8192 (1.1·10¹² flops): 24 calls per pair
    expect(calls(ltTimingBudget(g(8192, 8192, 8192)))).toBe(24);
  });

  it("is on unless TORCHC_LT_TIMED=0", () => {
    expect(ltTimedChoiceEnabled({})).toBe(true);
    expect(ltTimedChoiceEnabled({ TORCHC_LT_TIMED: "0" })).toBe(false);
    expect(ltTimedChoiceEnabled({ TORCHC_LT_TIMED: "1" })).toBe(true);
  });

  it("weighs split-K variants only with TORCHC_LT_SPLITK=1", () => {
    expect(ltSplitKEnabled({})).toBe(false);
    expect(ltSplitKEnabled({ TORCHC_LT_SPLITK: "0" })).toBe(false);
    expect(ltSplitKEnabled({ TORCHC_LT_SPLITK: "1" })).toBe(true);
    expect(LT_SPLITK_HEURISTIC_ALGOS).toBeGreaterThan(REQUESTED_ALGOS);
  });

  it("the engine's line says how many problems were timed and changed", () => {
    const stats = { layers: 10, kernels: 4, fusedGroups: 1, libraryRefusals: [] as string[] };
    expect(
      describeEngine({ ...stats, timedMatmuls: { problems: 6, changed: 2, savedUs: 3.5 } } as never),
    ).toBe(
      "cuda engine (10 layers → 4 kernels and library calls, 1 fused groups, 6 matmul problems timed (2 changed algorithm, −3.5 µs))",
    );
  });
});

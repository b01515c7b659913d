import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CI_SEED, resolveRuns, resolveSeed } from "./fast-check-seed.js";

describe("fast-check seed", () => {
  it("is the fixed CI seed unless TORCHC_FC_SEED names one", () => {
    expect(resolveSeed(undefined)).toBe(CI_SEED);
    expect(resolveSeed("")).toBe(CI_SEED);
    expect(resolveSeed("-21653162")).toBe(-21653162);
  });

  it("is fresh with TORCHC_FC_SEED=random, and rejects anything else", () => {
    const a = resolveSeed("random", () => 0.25);
    const b = resolveSeed("random", () => 0.75);
    expect(a).not.toBe(b);
    for (const s of [a, b]) expect(Number.isSafeInteger(s)).toBe(true);
    expect(() => resolveSeed("abc")).toThrow(/TORCHC_FC_SEED/);
    expect(() => resolveSeed("1.5")).toThrow(/TORCHC_FC_SEED/);
    expect(() => resolveRuns("0")).toThrow(/TORCHC_FC_RUNS/);
    expect(resolveRuns("250")).toBe(250);
  });

  it("is applied to every property in this worker, so draws repeat from run to run", () => {
    expect(fc.readConfigureGlobal().seed).toBe(Number(process.env.TORCHC_FC_SEED));
    const draw = () => fc.sample(fc.array(fc.integer(), { minLength: 5, maxLength: 5 }), 3);
    expect(draw()).toEqual(draw());
  });
});

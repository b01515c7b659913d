// The three range algorithms on distributions whose answer is known.
import { describe, expect, it } from "vitest";
import { AbsHistogram, amaxOf, PERCENTILE } from "../../src/runtime/calibration-histogram.js";
import { seeded } from "./tiny-cnn.js";

describe("calibration ranges", () => {
  it("minmax is the largest |x|, however the data arrives (the range grows by merging bins)", () => {
    const h = new AbsHistogram();
    h.add([0.001, -0.002]);
    h.add([5, -7.5]);
    h.add([-100]);
    expect(amaxOf(h, "minmax")).toBe(100);
    expect(h.total).toBe(5);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(5);
  });

  it(`percentile keeps the |x| below which ${PERCENTILE} % fall: 1 for uniform [0, 1) plus far outliers`, () => {
    const r = seeded(7);
    const h = new AbsHistogram();
    const v = Array.from({ length: 1_000_000 }, () => (r() + 1) / 2);
    // 50 outliers out of a million (0.005 %) at 1000: below the 0.01 % the percentile drops
    for (let i = 0; i < 50; i++) v[i * 1000] = 1000;
    h.add(v);
    expect(amaxOf(h, "minmax")).toBe(1000);
    const p = amaxOf(h, "percentile");
    // the histogram spans [0, 1024) in 2048 bins of 0.5: the answer is the first bin's edge
    expect(p).toBeGreaterThanOrEqual(1);
    expect(p).toBeLessThanOrEqual(1.5);
  });

  it("entropy clips a heavy tail well below its maximum but keeps the bulk of a bounded distribution", () => {
    const r = seeded(11);
    const tail = new AbsHistogram();
    // |x| = 0.01 / u: most values small, a few huge (a Pareto-like tail)
    tail.add(Array.from({ length: 200_000 }, () => 0.01 / Math.max((r() + 1) / 2, 1e-6)));
    expect(amaxOf(tail, "entropy")).toBeLessThan(amaxOf(tail, "minmax") / 10);
    const uniform = new AbsHistogram();
    uniform.add(Array.from({ length: 200_000 }, () => r()));
    const e = amaxOf(uniform, "entropy");
    expect(e).toBeGreaterThan(0.9);
    expect(e).toBeLessThanOrEqual(amaxOf(uniform, "minmax"));
  });
});

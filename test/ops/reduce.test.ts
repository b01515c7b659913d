import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { B, F, I, Is, iota, NONE, run, run1, T, t, values } from "./helpers.js";

const x = { x: iota([2, 3]) }; // [[0 1 2] [3 4 5]]

describe("reductions by hand", () => {
  it("sums and averages over dims, keeping them or not", () => {
    expect(values(run1("aten.sum.dim_IntList", { self: T("x"), dim: Is(1) }, x))).toEqual([3, 12]);
    const kept = run1("aten.mean.dim", { self: T("x"), dim: Is(0), keepdim: B(true) }, x);
    expect(kept.shape).toEqual([1, 3]);
    expect(values(kept)).toEqual([1.5, 2.5, 3.5]);
    expect(values(run1("aten.mean.dim", { self: T("x"), dim: Is(-1, -2) }, x))).toEqual([2.5]);
    expect(run1("aten.sum.default", { self: T("x") }, x).shape).toEqual([]);
    // an empty dim list means every dim
    expect(values(run1("aten.sum.dim_IntList", { self: T("x"), dim: Is() }, x))).toEqual([15]);
    expect(values(run1("aten.sum.dim_IntList", { self: T("x"), dim: NONE }, x))).toEqual([15]);
  });

  it("any.dims/all.dims: dim=None reduces every dim, dim=[] none (ATen's allow_empty_dims)", () => {
    // PyTorch 2.11: torch.any(torch.tensor([True, False]), dim=[], keepdim=True) → tensor([True, False]);
    // with dim=None → tensor([True]). The CUDA run of the fallback catalogue gave bool[2] for the first.
    const b = { b: t([2], [1, 0], "bool") };
    const none = run1("aten.any.dims", { self: T("b"), dim: Is(), keepdim: B(true) }, b);
    expect(none.shape).toEqual([2]);
    expect(values(none)).toEqual([1, 0]);
    expect(values(run1("aten.all.dims", { self: T("b"), dim: Is() }, b))).toEqual([1, 0]);
    const every = run1("aten.any.dims", { self: T("b"), dim: NONE, keepdim: B(true) }, b);
    expect(every.shape).toEqual([1]);
    expect(values(every)).toEqual([1]);
    expect(values(run1("aten.all.dims", { self: T("b") }, b))).toEqual([0]);
    // float input: nonzero is true
    const f = run1("aten.any.dims", { self: T("x"), dim: Is() }, x);
    expect(f.dtype).toBe("bool");
    expect(values(f)).toEqual([0, 1, 1, 1, 1, 1]);
  });

  it("sums integers and bools into int64", () => {
    expect(run1("aten.sum.default", { self: T("b") }, { b: t([3], [1, 0, 1], "bool") })).toMatchObject({
      dtype: "int64",
    });
    expect(values(run1("aten.sum.default", { self: T("b") }, { b: t([3], [1, 0, 1], "bool") }))).toEqual([2]);
  });

  it("takes extremes with amax/amin, max.dim and argmax (first index on ties)", () => {
    const ts = { a: t([2, 3], [1, 5, 5, 7, 0, 7]) };
    expect(values(run1("aten.amax.default", { self: T("a"), dim: Is(1) }, ts))).toEqual([5, 7]);
    expect(values(run1("aten.amin.default", { self: T("a") }, ts))).toEqual([0]);
    const [v, i] = run("aten.max.dim", { self: T("a"), dim: I(1), keepdim: B(true) }, ts);
    expect(v.shape).toEqual([2, 1]);
    expect(values(v)).toEqual([5, 7]);
    expect(i.dtype).toBe("int64");
    expect(values(i)).toEqual([1, 0]);
    expect(values(run1("aten.argmax.default", { self: T("a") }, ts))).toEqual([3]);
    expect(values(run1("aten.argmin.default", { self: T("a"), dim: I(0) }, ts))).toEqual([0, 1, 0]);
  });

  it("computes var and std with a correction", () => {
    const ts = { a: t([4], [1, 2, 3, 4]) };
    expect(values(run1("aten.var.correction", { self: T("a") }, ts))[0]).toBeCloseTo(5 / 3, 6);
    expect(values(run1("aten.var.correction", { self: T("a"), correction: I(0) }, ts))[0]).toBeCloseTo(
      1.25,
      6,
    );
    expect(values(run1("aten.std.dim", { self: T("a"), dim: Is(0), unbiased: B(false) }, ts))[0]).toBeCloseTo(
      Math.sqrt(1.25),
      6,
    );
  });

  it("accumulates with cumsum", () => {
    expect(values(run1("aten.cumsum.default", { self: T("x"), dim: I(1) }, x))).toEqual([0, 1, 3, 3, 7, 12]);
  });
});

describe("softmax", () => {
  it("matches a hand computation", () => {
    const out = run1("aten.softmax.int", { self: T("a"), dim: I(0) }, { a: t([2], [0, Math.log(3)]) });
    values(out).forEach((v, i) => {
      expect(v).toBeCloseTo([0.25, 0.75][i], 6);
    });
    const log = run1(
      "aten._log_softmax.default",
      { self: T("a"), dim: I(0), half_to_float: B(false) },
      { a: t([2], [0, Math.log(3)]) },
    );
    values(log).forEach((v, i) => {
      expect(v).toBeCloseTo(Math.log([0.25, 0.75][i]), 6);
    });
  });

  it("survives huge logits", () => {
    expect(
      values(run1("aten.softmax.int", { self: T("a"), dim: I(0) }, { a: t([2], [1000, 1000]) })),
    ).toEqual([0.5, 0.5]);
  });

  it("gives rows that sum to 1 along any dim", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.double({ min: 0.1, max: 30, noNaN: true }),
        (shape, d, scale) => {
          const dim = d % shape.length;
          const n = shape.reduce((p, s) => p * s, 1);
          const a = t(
            shape,
            Array.from({ length: n }, (_, i) => Math.sin(i * 2.3) * scale),
          );
          const s = run1(
            "aten._softmax.default",
            { self: T("a"), dim: I(dim), half_to_float: B(false) },
            { a },
          );
          const sums = run1("aten.sum.dim_IntList", { self: T("s"), dim: Is(dim) }, { s });
          for (const v of values(sums)) expect(v).toBeCloseTo(1, 5);
          const ls = run1("aten.log_softmax.int", { self: T("a"), dim: I(dim) }, { a });
          values(ls).forEach((v, i) => {
            expect(Math.exp(v)).toBeCloseTo(values(s)[i], 5);
          });
        },
      ),
    );
  });
});

describe("normalization", () => {
  it("layer_norm gives zero mean and unit variance before the affine part", () => {
    const [out, mean, rstd] = run(
      "aten.native_layer_norm.default",
      { input: T("x"), normalized_shape: Is(3), weight: NONE, bias: NONE, eps: F(0) },
      x,
    );
    expect(mean.shape).toEqual([2, 1]);
    expect(values(mean)).toEqual([1, 4]);
    values(rstd).forEach((v) => {
      expect(v).toBeCloseTo(1 / Math.sqrt(2 / 3), 5);
    });
    values(out).forEach((v, i) => {
      expect(v).toBeCloseTo([-1, 0, 1][i % 3] * Math.sqrt(3 / 2), 5);
    });
    const affine = run1(
      "aten.layer_norm.default",
      { input: T("x"), normalized_shape: Is(3), weight: T("w"), bias: T("b"), eps: F(0) },
      { ...x, w: t([3], [2, 2, 2]), b: t([3], [1, 1, 1]) },
    );
    values(affine).forEach((v, i) => {
      expect(v).toBeCloseTo(1 + 2 * [-1, 0, 1][i % 3] * Math.sqrt(3 / 2), 5);
    });
  });

  it("batch_norm in eval mode uses the running statistics", () => {
    const ts = {
      x: t([1, 2, 1, 2], [1, 2, 3, 4]),
      m: t([2], [1, 3]),
      v: t([2], [4, 1]),
      w: t([2], [1, 10]),
      b: t([2], [0, 5]),
    };
    const out = run1(
      "aten.batch_norm.default",
      {
        input: T("x"),
        weight: T("w"),
        bias: T("b"),
        running_mean: T("m"),
        running_var: T("v"),
        training: B(false),
        momentum: F(0.1),
        eps: F(0),
        cudnn_enabled: B(true),
      },
      ts,
    );
    // channel 0: (x-1)/2; channel 1: 10·(x-3)+5
    expect(values(out)).toEqual([0, 0.5, 5, 15]);
    const three = run(
      "aten._native_batch_norm_legit_no_training.default",
      {
        input: T("x"),
        weight: T("w"),
        bias: T("b"),
        running_mean: T("m"),
        running_var: T("v"),
        momentum: F(0.1),
        eps: F(0),
      },
      ts,
    );
    expect(three.map((r) => r.shape)).toEqual([[1, 2, 1, 2], [0], [0]]);
  });

  it("batch_norm without running statistics normalizes by the batch", () => {
    const [out, mean, invstd] = run(
      "aten._native_batch_norm_legit.no_stats",
      { input: T("x"), weight: NONE, bias: NONE, training: B(true), momentum: F(0.1), eps: F(0) },
      { x: t([2, 1, 2], [1, 3, 5, 7]) },
    );
    expect(values(mean)).toEqual([4]);
    expect(values(invstd)[0]).toBeCloseTo(1 / Math.sqrt(5), 6);
    values(out).forEach((v, i) => {
      expect(v).toBeCloseTo(([1, 3, 5, 7][i] - 4) / Math.sqrt(5), 5);
    });
  });

  it("group_norm with one group per channel is instance norm", () => {
    const out = run1(
      "aten.group_norm.default",
      { input: T("x"), num_groups: I(2), eps: F(0) },
      { x: t([1, 2, 2], [1, 3, 10, 30]) },
    );
    expect(values(out)).toEqual([-1, 1, -1, 1]);
  });
});

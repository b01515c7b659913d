import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { F, iota, NONE, run, run1, T, t, values } from "./helpers.js";

describe("matrix products by hand", () => {
  const a = t([2, 3], [1, 2, 3, 4, 5, 6]);
  const b = t([3, 2], [7, 8, 9, 10, 11, 12]);

  it("mm", () => {
    // [1 2 3]·[7 9 11]ᵀ = 58, ·[8 10 12]ᵀ = 64; [4 5 6] → 139, 154
    expect(values(run1("aten.mm.default", { self: T("a"), mat2: T("b") }, { a, b }))).toEqual([
      58, 64, 139, 154,
    ]);
  });

  it("addmm with beta and alpha, bias broadcast over rows", () => {
    const out = run1(
      "aten.addmm.default",
      { self: T("c"), mat1: T("a"), mat2: T("b"), beta: F(0.5), alpha: F(2) },
      { a, b, c: t([2], [10, 20]) },
    );
    expect(values(out)).toEqual([121, 138, 283, 318]);
  });

  it("linear uses the weight as [out, in] and adds the bias", () => {
    const out = run1(
      "aten.linear.default",
      { input: T("x"), weight: T("w"), bias: T("b") },
      { x: t([1, 2], [1, 2]), w: t([3, 2], [1, 0, 0, 1, 1, 1]), b: t([3], [0, 10, 100]) },
    );
    expect(out.shape).toEqual([1, 3]);
    expect(values(out)).toEqual([1, 12, 103]);
    const noBias = run1(
      "aten.linear.default",
      { input: T("x"), weight: T("w"), bias: NONE },
      { x: t([2], [1, 2]), w: t([3, 2], [1, 0, 0, 1, 1, 1]) },
    );
    expect(noBias.shape).toEqual([3]);
  });

  it("matmul follows torch.matmul's shape rules", () => {
    const shape = (x: number[], y: number[]) =>
      run1("aten.matmul.default", { self: T("a"), other: T("b") }, { a: iota(x), b: iota(y) }).shape;
    expect(shape([3], [3])).toEqual([]);
    expect(shape([2, 3], [3])).toEqual([2]);
    expect(shape([3], [3, 4])).toEqual([4]);
    expect(shape([5, 1, 2, 3], [4, 3, 6])).toEqual([5, 4, 2, 6]);
    expect(
      values(
        run1(
          "aten.matmul.default",
          { self: T("a"), other: T("b") },
          { a: t([3], [1, 2, 3]), b: t([3], [4, 5, 6]) },
        ),
      ),
    ).toEqual([32]);
    expect(() => shape([2, 3], [4, 2])).toThrow(/cannot be multiplied/);
  });

  it("bmm multiplies batch by batch", () => {
    const out = run1(
      "aten.bmm.default",
      { self: T("a"), mat2: T("b") },
      { a: t([2, 1, 1], [2, 3]), b: t([2, 1, 2], [1, 2, 3, 4]) },
    );
    expect(values(out)).toEqual([2, 4, 9, 12]);
  });
});

describe("properties", () => {
  const fill = (shape: number[], seed: number) =>
    t(
      shape,
      Array.from({ length: shape.reduce((p, d) => p * d, 1) }, (_, i) => Math.cos(seed + i)),
    );

  it("linear(x, W, b) = x @ Wᵀ + b", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer(),
        (m, k, n, seed) => {
          const ts: Record<string, ReturnType<typeof t>> = {
            x: fill([m, k], seed),
            w: fill([n, k], seed + 1),
            b: fill([n], seed + 2),
          };
          const lin = run1("aten.linear.default", { input: T("x"), weight: T("w"), bias: T("b") }, ts);
          ts.wt = run1("aten.t.default", { self: T("w") }, ts);
          const mm = run1("aten.addmm.default", { self: T("b"), mat1: T("x"), mat2: T("wt") }, ts);
          values(lin).forEach((v, i) => {
            expect(v).toBeCloseTo(values(mm)[i], 5);
          });
        },
      ),
    );
  });

  it("batched matmul equals per-batch mm", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        (bs, m, k, n) => {
          const ts: Record<string, ReturnType<typeof t>> = { a: fill([bs, m, k], 1), b: fill([k, n], 2) };
          const all = values(run1("aten.matmul.default", { self: T("a"), other: T("b") }, ts));
          const pieces = run("aten.unbind.int", { self: T("a") }, ts).flatMap((p) =>
            values(run1("aten.mm.default", { self: T("p"), mat2: T("b") }, { p, b: ts.b })),
          );
          all.forEach((v, i) => {
            expect(v).toBeCloseTo(pieces[i], 6);
          });
        },
      ),
    );
  });
});

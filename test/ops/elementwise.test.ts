import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { DType } from "../../src/ir/dtype.js";
import { B, F, I, NONE, run1, S, T, t, values } from "./helpers.js";

describe("binary arithmetic", () => {
  it("adds with alpha and broadcasts [2,1] with [3]", () => {
    const out = run1(
      "aten.add.Tensor",
      { self: T("a"), other: T("b"), alpha: I(2) },
      { a: t([2, 1], [10, 20]), b: t([3], [1, 2, 3]) },
    );
    expect(out.shape).toEqual([2, 3]);
    expect(values(out)).toEqual([12, 14, 16, 22, 24, 26]);
  });

  it("takes plain numbers where a Tensor is expected (FX writes add.Tensor(x, 3))", () => {
    const out = run1("aten.add.Tensor", { self: T("a"), other: I(3) }, { a: t([2], [1, 2]) });
    expect(values(out)).toEqual([4, 5]);
    expect(out.dtype).toBe("float32");
  });

  it("subtracts, reverse-subtracts and multiplies scalars", () => {
    const a = { a: t([3], [1, 2, 3]) };
    expect(values(run1("aten.sub.Scalar", { self: T("a"), other: F(0.5), alpha: I(2) }, a))).toEqual([
      0, 1, 2,
    ]);
    expect(values(run1("aten.rsub.Scalar", { self: T("a"), other: I(10) }, a))).toEqual([9, 8, 7]);
    expect(values(run1("aten.mul.Scalar", { self: T("a"), other: F(-2) }, a))).toEqual([-2, -4, -6]);
  });

  it("divides truly, by trunc and by floor", () => {
    const ts = { a: t([4], [7, -7, 7, -7], "int64"), b: t([4], [2, 2, -2, -2], "int64") };
    const div = run1("aten.div.Tensor", { self: T("a"), other: T("b") }, ts);
    expect(div.dtype).toBe("float32");
    expect(values(div)).toEqual([3.5, -3.5, -3.5, 3.5]);
    const tr = run1("aten.div.Tensor_mode", { self: T("a"), other: T("b"), rounding_mode: S("trunc") }, ts);
    expect(tr.dtype).toBe("int64");
    expect(values(tr)).toEqual([3, -3, -3, 3]);
    expect(
      values(run1("aten.div.Tensor_mode", { self: T("a"), other: T("b"), rounding_mode: S("floor") }, ts)),
    ).toEqual([3, -4, -4, 3]);
    expect(
      values(run1("aten.div.Tensor_mode", { self: T("a"), other: T("b"), rounding_mode: NONE }, ts)),
    ).toEqual([3.5, -3.5, -3.5, 3.5]);
  });

  it("raises to powers", () => {
    const a = { a: t([3], [4, 9, 16]), e: t([3], [0, 1, 2]) };
    expect(values(run1("aten.pow.Tensor_Scalar", { self: T("a"), exponent: F(0.5) }, a))).toEqual([2, 3, 4]);
    expect(values(run1("aten.pow.Tensor_Tensor", { self: T("a"), exponent: T("e") }, a))).toEqual([
      1, 9, 256,
    ]);
    expect(values(run1("aten.pow.Scalar", { self: I(2), exponent: T("e") }, a))).toEqual([1, 2, 4]);
  });

  it("clamps, with either bound optional", () => {
    const a = { a: t([5], [-2, -0.5, 0, 0.5, 2]) };
    expect(values(run1("aten.clamp.default", { self: T("a"), min: F(-1), max: F(1) }, a))).toEqual([
      -1, -0.5, 0, 0.5, 1,
    ]);
    expect(values(run1("aten.clamp.default", { self: T("a"), min: NONE, max: I(0) }, a))).toEqual([
      -2, -0.5, 0, 0, 0,
    ]);
    expect(values(run1("aten.clamp_min.default", { self: T("a"), min: I(0) }, a))).toEqual([0, 0, 0, 0.5, 2]);
    expect(values(run1("aten.clamp_max.default", { self: T("a"), max: I(0) }, a))).toEqual([
      -2, -0.5, 0, 0, 0,
    ]);
    expect(() => run1("aten.clamp.default", { self: T("a") }, a)).toThrow(/clamp needs min or max/);
  });

  it("propagates NaN through clamp, minimum and maximum", () => {
    const a = { a: t([2], [Number.NaN, 1]), b: t([2], [0, Number.NaN]) };
    expect(values(run1("aten.clamp.default", { self: T("a"), min: I(0), max: I(2) }, a))[0]).toBeNaN();
    expect(values(run1("aten.maximum.default", { self: T("a"), other: T("b") }, a)).every(Number.isNaN)).toBe(
      true,
    );
  });
});

describe("type promotion", () => {
  const cases: [string, DType, number[], DType | "float" | "int" | "bool", DType][] = [
    ["int tensor + float number", "int64", [], "float", "float32"],
    ["int tensor + int number", "int32", [], "int", "int32"],
    ["bool tensor + int number", "bool", [], "int", "int64"],
    ["float16 tensor + float number", "float16", [], "float", "float16"],
  ];
  it.each(cases)("%s", (_name, dtype, _s, scalar, want) => {
    const other = scalar === "float" ? F(1.5) : scalar === "int" ? I(2) : B(true);
    const out = run1("aten.add.Tensor", { self: T("a"), other }, { a: t([2], [1, 0], dtype) });
    expect(out.dtype).toBe(want);
  });

  it("lets a dimensioned tensor win over a 0-d tensor of the same category", () => {
    const ts = {
      a: t([2], [1, 2], "float32"),
      z: t([], [0.5], "float64"),
      i: t([2], [1, 2], "int32"),
      l: t([], [3], "int64"),
    };
    expect(run1("aten.mul.Tensor", { self: T("a"), other: T("z") }, ts).dtype).toBe("float32");
    expect(run1("aten.mul.Tensor", { self: T("i"), other: T("l") }, ts).dtype).toBe("int32");
    // …but a 0-d float tensor lifts an int tensor to its float type.
    expect(run1("aten.mul.Tensor", { self: T("i"), other: T("z") }, ts).dtype).toBe("float64");
  });

  it("makes floating results of integer inputs float32", () => {
    expect(run1("aten.sqrt.default", { self: T("a") }, { a: t([1], [4], "int64") })).toMatchObject({
      dtype: "float32",
    });
    expect(run1("aten.neg.default", { self: T("a") }, { a: t([1], [4], "int64") })).toMatchObject({
      dtype: "int64",
    });
  });
});

describe("comparisons and selection", () => {
  const ts = { a: t([3], [1, 2, 3]), b: t([3], [3, 2, 1]), c: t([3], [1, 0, 1], "bool") };
  it.each([
    ["eq", [0, 1, 0]],
    ["ne", [1, 0, 1]],
    ["lt", [1, 0, 0]],
    ["gt", [0, 0, 1]],
    ["le", [1, 1, 0]],
    ["ge", [0, 1, 1]],
  ] as const)("%s gives bools", (k, want) => {
    const out = run1(`aten.${k}.Tensor`, { self: T("a"), other: T("b") }, ts);
    expect(out.dtype).toBe("bool");
    expect(values(out)).toEqual(want);
    expect(values(run1(`aten.${k}.Scalar`, { self: T("a"), other: I(2) }, ts))).toEqual(
      values(run1(`aten.${k}.Tensor`, { self: T("a"), other: T("b") }, { ...ts, b: t([3], [2, 2, 2]) })),
    );
  });

  it("selects with where and masked_fill", () => {
    expect(values(run1("aten.where.self", { condition: T("c"), self: T("a"), other: T("b") }, ts))).toEqual([
      1, 2, 3,
    ]);
    expect(values(run1("aten.where.self", { condition: T("c"), self: T("a"), other: F(-1) }, ts))).toEqual([
      1, -1, 3,
    ]);
    expect(values(run1("aten.masked_fill.Scalar", { self: T("a"), mask: T("c"), value: I(0) }, ts))).toEqual([
      0, 2, 0,
    ]);
  });
});

describe("unary math", () => {
  it("matches known values", () => {
    const x = { a: t([4], [0, 0.5, 1, 2]) };
    const close = (op: string, want: number[]) =>
      values(run1(op, { self: T("a") }, x)).forEach((v, i) => {
        expect(v).toBeCloseTo(want[i], 6);
      });
    close("aten.erf.default", [0, 0.5204998778, 0.8427007929, 0.995322265]);
    close("aten.exp.default", [1, 1.6487212707, Math.E, 7.3890560989]);
    expect(values(run1("aten.rsqrt.default", { self: T("a") }, x)).slice(1)).toEqual([
      Math.fround(Math.SQRT2),
      1,
      Math.fround(Math.SQRT1_2),
    ]);
    expect(values(run1("aten.reciprocal.default", { self: T("a") }, x))).toEqual([
      Number.POSITIVE_INFINITY,
      2,
      1,
      0.5,
    ]);
  });

  it("rounds half to even", () => {
    expect(
      values(run1("aten.round.default", { self: T("a") }, { a: t([6], [0.5, 1.5, 2.5, -0.5, -1.5, 2.4]) })),
    ).toEqual([0, 2, 2, -0, -2, 2]);
  });
});

describe("properties", () => {
  const dims = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 3 });
  // Two shapes that broadcast: the second keeps or ones-out some trailing dims of the first.
  const pair = dims.chain((s) =>
    fc
      .tuple(
        fc.constant(s),
        fc.array(fc.boolean(), { minLength: s.length, maxLength: s.length }),
        fc.integer({ min: 0, max: s.length }),
      )
      .map(([a, ones, drop]) => [a, a.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d))] as const),
  );
  const filled = (shape: readonly number[], seed: number) =>
    t(
      shape,
      Array.from({ length: shape.reduce((p, d) => p * d, 1) }, (_, i) => Math.sin(seed + i * 1.7) * 10),
    );

  it("broadcasting add commutes", () => {
    fc.assert(
      fc.property(pair, fc.integer(), ([sa, sb], seed) => {
        const ts = { a: filled(sa, seed), b: filled(sb, seed + 1) };
        const ab = run1("aten.add.Tensor", { self: T("a"), other: T("b") }, ts);
        const ba = run1("aten.add.Tensor", { self: T("b"), other: T("a") }, ts);
        expect(ab.shape).toEqual(ba.shape);
        expect(values(ab)).toEqual(values(ba));
      }),
    );
  });

  it("x - y + y == x and x * y / y ≈ x under broadcasting", () => {
    fc.assert(
      fc.property(pair, fc.integer(), ([sa, sb], seed) => {
        const ts: Record<string, ReturnType<typeof t>> = { a: filled(sa, seed), b: filled(sb, seed + 1) };
        ts.d = run1("aten.sub.Tensor", { self: T("a"), other: T("b") }, ts);
        const back = run1("aten.add.Tensor", { self: T("d"), other: T("b") }, ts);
        const a = values(ts.a);
        const n = a.length;
        values(back).forEach((v, i) => {
          expect(v).toBeCloseTo(a[i % n], 4);
        });
      }),
    );
  });
});

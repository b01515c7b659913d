import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { B, F, I, Is, iota, NONE, run, run1, S, T, t, values } from "./helpers.js";

describe("pooling by hand", () => {
  const img = { x: iota([1, 1, 4, 4]) }; // rows 0-3, 4-7, 8-11, 12-15

  it("max-pools 2x2 windows and reports flat plane indices", () => {
    const [v, i] = run("aten.max_pool2d_with_indices.default", { self: T("x"), kernel_size: Is(2, 2) }, img);
    expect(values(v)).toEqual([5, 7, 13, 15]);
    expect(values(i)).toEqual([5, 7, 13, 15]);
  });

  it("lets a ceil-mode window hang over the edge but not start in the padding", () => {
    const x = { x: iota([1, 1, 5, 5]) };
    const out = run1(
      "aten.max_pool2d.default",
      { self: T("x"), kernel_size: Is(2, 2), ceil_mode: B(true) },
      x,
    );
    expect(out.shape).toEqual([1, 1, 3, 3]);
    expect(values(out)).toEqual([6, 8, 9, 16, 18, 19, 21, 23, 24]);
    // 2x2 stride 2 pad 1 on 5x5: ceil((5+2-2)/2)+1 = 4 windows, but the 4th would start in the right padding
    expect(
      run1(
        "aten.max_pool2d.default",
        { self: T("x"), kernel_size: I(2), stride: I(2), padding: I(1), ceil_mode: B(true) },
        x,
      ).shape,
    ).toEqual([1, 1, 3, 3]);
  });

  it("averages with and without the padding in the count, or by an override", () => {
    const x = { x: t([1, 1, 2, 2], [1, 2, 3, 4]) };
    const args = { self: T("x"), kernel_size: Is(2, 2), stride: Is(1, 1), padding: Is(1, 1) };
    const incl = run1("aten.avg_pool2d.default", args, x);
    expect(incl.shape).toEqual([1, 1, 3, 3]);
    expect(values(incl)).toEqual([0.25, 0.75, 0.5, 1, 2.5, 1.5, 0.75, 1.75, 1]);
    const excl = run1("aten.avg_pool2d.default", { ...args, count_include_pad: B(false) }, x);
    expect(values(excl)).toEqual([1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
    const over = run1("aten.avg_pool2d.default", { ...args, divisor_override: I(1) }, x);
    expect(values(over)).toEqual([1, 3, 2, 4, 10, 6, 3, 7, 4]);
  });

  it("adaptive-averages over overlapping windows", () => {
    // rows split as [0,2) and [1,3) for 3 → 2
    const out = run1(
      "aten.adaptive_avg_pool2d.default",
      { self: T("x"), output_size: Is(2, 1) },
      { x: t([1, 3, 1], [0, 3, 6]) },
    );
    expect(values(out)).toEqual([1.5, 4.5]);
    expect(
      values(run1("aten._adaptive_avg_pool2d.default", { self: T("x"), output_size: Is(1, 1) }, img)),
    ).toEqual([7.5]);
  });
});

describe("scaled_dot_product_attention", () => {
  const sdpa = "aten.scaled_dot_product_attention.default";

  it("returns the value when there is one key", () => {
    const out = run1(
      sdpa,
      { query: T("q"), key: T("k"), value: T("v") },
      { q: t([1, 2, 2], [1, 2, 3, 4]), k: t([1, 1, 2], [5, 6]), v: t([1, 1, 3], [7, 8, 9]) },
    );
    expect(out.shape).toEqual([1, 2, 3]);
    expect(values(out)).toEqual([7, 8, 9, 7, 8, 9]);
  });

  it("weights values by softmax(q·k·scale), with causal and boolean masks", () => {
    const ts = {
      q: t([2, 1], [1, 1]),
      k: t([2, 1], [0, Math.log(3)]),
      v: t([2, 1], [10, 20]),
      m: t([2, 2], [1, 0, 1, 1], "bool"),
    };
    // weights 1:3 → 17.5 for both rows
    values(run1(sdpa, { query: T("q"), key: T("k"), value: T("v"), scale: F(1) }, ts)).forEach((v) => {
      expect(v).toBeCloseTo(17.5, 5);
    });
    const causal = values(
      run1(sdpa, { query: T("q"), key: T("k"), value: T("v"), is_causal: B(true), scale: F(1) }, ts),
    );
    expect(causal[0]).toBeCloseTo(10, 5);
    expect(causal[1]).toBeCloseTo(17.5, 5);
    const masked = values(
      run1(sdpa, { query: T("q"), key: T("k"), value: T("v"), attn_mask: T("m"), scale: F(1) }, ts),
    );
    expect(masked).toEqual(causal);
    // the default scale is 1/sqrt(E) = 1 here
    values(run1(sdpa, { query: T("q"), key: T("k"), value: T("v") }, ts)).forEach((v) => {
      expect(v).toBeCloseTo(17.5, 5);
    });
  });

  it("gives zeros for a row with every key masked out", () => {
    const ts = {
      q: t([1, 1], [1]),
      k: t([2, 1], [1, 2]),
      v: t([2, 1], [10, 20]),
      m: t([1, 2], [0, 0], "bool"),
    };
    expect(values(run1(sdpa, { query: T("q"), key: T("k"), value: T("v"), attn_mask: T("m") }, ts))).toEqual([
      0,
    ]);
  });

  it("shares key/value heads under grouped-query attention", () => {
    const ts = { q: t([4, 1, 1], [1, 1, 1, 1]), k: t([2, 1, 1], [1, 1]), v: t([2, 1, 1], [5, 6]) };
    expect(
      values(run1(sdpa, { query: T("q"), key: T("k"), value: T("v"), enable_gqa: B(true) }, ts)),
    ).toEqual([5, 5, 6, 6]);
  });

  it("equals softmax(q kᵀ · scale + mask) v built from other ops", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer(),
        (h, l, s, e, seed) => {
          const f = (shape: number[], k: number) =>
            t(
              shape,
              Array.from({ length: shape.reduce((p, d) => p * d, 1) }, (_, i) => Math.sin(seed + k * 7 + i)),
            );
          const ts: Record<string, ReturnType<typeof t>> = {
            q: f([h, l, e], 1),
            k: f([h, s, e], 2),
            v: f([h, s, e], 3),
            m: f([l, s], 4),
          };
          const out = run1(
            sdpa,
            { query: T("q"), key: T("k"), value: T("v"), attn_mask: T("m"), scale: F(0.7) },
            ts,
          );
          ts.kt = run1("aten.transpose.int", { self: T("k"), dim0: I(-2), dim1: I(-1) }, ts);
          ts.qk = run1("aten.matmul.default", { self: T("q"), other: T("kt") }, ts);
          ts.sc = run1("aten.mul.Scalar", { self: T("qk"), other: F(0.7) }, ts);
          ts.sm = run1("aten.add.Tensor", { self: T("sc"), other: T("m") }, ts);
          ts.p = run1("aten._softmax.default", { self: T("sm"), dim: I(-1), half_to_float: B(false) }, ts);
          const want = values(run1("aten.bmm.default", { self: T("p"), mat2: T("v") }, ts));
          values(out).forEach((v, i) => {
            expect(v).toBeCloseTo(want[i], 5);
          });
          const [o2, lse] = run(
            "aten._scaled_dot_product_flash_attention_for_cpu.default",
            { query: T("q"), key: T("k"), value: T("v"), attn_mask: T("m"), scale: F(0.7) },
            ts,
          );
          expect(values(o2)).toEqual(values(out));
          expect(lse.shape).toEqual([h, l]);
        },
      ),
    );
  });

  it("refuses training-mode dropout", () => {
    const ts = { q: t([1, 1], [1]) };
    expect(() => run1(sdpa, { query: T("q"), key: T("q"), value: T("q"), dropout_p: F(0.1) }, ts)).toThrow(
      /dropout_p/,
    );
  });
});

describe("indexing", () => {
  it("embeds, index_selects and gathers", () => {
    const w = t([3, 2], [0, 1, 10, 11, 20, 21]);
    const e = run1(
      "aten.embedding.default",
      { weight: T("w"), indices: T("i") },
      { w, i: t([2, 2], [2, 0, 1, 2], "int64") },
    );
    expect(e.shape).toEqual([2, 2, 2]);
    expect(values(e)).toEqual([20, 21, 0, 1, 10, 11, 20, 21]);
    expect(
      values(
        run1(
          "aten.index_select.default",
          { self: T("w"), dim: I(1), index: T("i") },
          { w, i: t([1], [1], "int64") },
        ),
      ),
    ).toEqual([1, 11, 21]);
    expect(
      values(
        run1(
          "aten.gather.default",
          { self: T("w"), dim: I(1), index: T("i") },
          { w, i: t([3, 1], [1, 0, 1], "int64") },
        ),
      ),
    ).toEqual([1, 10, 21]);
    expect(() =>
      run1("aten.embedding.default", { weight: T("w"), indices: T("i") }, { w, i: t([1], [3], "int64") }),
    ).toThrow(/out of bounds/);
  });

  it("advanced-indexes with tensors and None, moving separated index dims to the front", () => {
    const x = { x: iota([2, 3, 4]), i: t([2], [0, 2], "int64"), j: t([2], [1, 3], "int64") };
    const mid = run1(
      "aten.index.Tensor",
      { self: T("x"), indices: { kind: "tensors", names: [null, "i"] } },
      x,
    );
    expect(mid.shape).toEqual([2, 2, 4]);
    expect(values(mid).slice(0, 8)).toEqual([0, 1, 2, 3, 8, 9, 10, 11]);
    const apart = run1(
      "aten.index.Tensor",
      { self: T("x"), indices: { kind: "tensors", names: ["i", null, "j"] } },
      { ...x, i: t([2], [0, 1], "int64") },
    );
    expect(apart.shape).toEqual([2, 3]);
    // x[0, :, 1] and x[1, :, 3]
    expect(values(apart)).toEqual([1, 5, 9, 15, 19, 23]);
  });
});

describe("creation", () => {
  it("makes ranges and fills with PyTorch's default dtypes", () => {
    const r = run1("aten.arange.start_step", { start: I(0), end: I(5), step: I(2) }, {});
    expect(r.dtype).toBe("int64");
    expect(values(r)).toEqual([0, 2, 4]);
    expect(run1("aten.arange.default", { end: F(3) }, {}).dtype).toBe("float32");
    expect(values(run1("aten.arange.start_step", { start: F(1), end: F(0), step: F(-0.25) }, {}))).toEqual([
      1, 0.75, 0.5, 0.25,
    ]);
    expect(run1("aten.full.default", { size: Is(2), fill_value: B(true) }, {}).dtype).toBe("bool");
    expect(run1("aten.full.default", { size: Is(2), fill_value: I(3) }, {}).dtype).toBe("int64");
    expect(run1("aten.scalar_tensor.default", { s: I(3) }, {})).toMatchObject({
      dtype: "float32",
      shape: [],
    });
    expect(run1("aten.zeros_like.default", { self: T("x") }, { x: iota([2], "int32") }).dtype).toBe("int32");
    expect(
      values(run1("aten.new_ones.default", { self: T("x"), size: Is(2), dtype: NONE }, { x: iota([5]) })),
    ).toEqual([1, 1]);
  });
});

describe("dropout and casts", () => {
  it("is the identity in eval mode and refuses random training dropout", () => {
    const x = { x: iota([3]) };
    expect(values(run1("aten.dropout.default", { input: T("x"), p: F(0.5), train: B(false) }, x))).toEqual([
      0, 1, 2,
    ]);
    expect(() => run1("aten.dropout.default", { input: T("x"), p: F(0.5), train: B(true) }, x)).toThrow(
      /eval mode/,
    );
    const [o, mask] = run("aten.native_dropout.default", { input: T("x"), p: F(0.5), train: B(false) }, x);
    expect(values(o)).toEqual([0, 1, 2]);
    expect(mask.dtype).toBe("bool");
  });

  it("casts, truncating toward zero into ints", () => {
    const out = run1(
      "aten._to_copy.default",
      { self: T("x"), dtype: { kind: "dtype", value: "int32" } },
      { x: t([3], [1.7, -1.7, 0]) },
    );
    expect(out.dtype).toBe("int32");
    expect(values(out)).toEqual([1, -1, 0]);
    expect(run1("aten.to.dtype", { self: T("x"), dtype: I(5) }, { x: iota([1]) }).dtype).toBe("float16");
    expect(
      values(run1("aten.gelu.default", { self: T("x"), approximate: S("tanh") }, { x: t([1], [0]) })),
    ).toEqual([0]);
  });
});

// References of the composite ops (src/ops/composite.ts) against values derived by hand from PyTorch's
// definitions, or against independent naive loops written here. No expected number is taken from the code
// under test.
import { describe, expect, it } from "vitest";
import { toFloat64Array } from "../../src/ir/tensor.js";
import { B, F, I, Is, iota, NONE, run, S, T, t } from "./helpers.js";

const vals = (x: Parameters<typeof toFloat64Array>[0]) => Array.from(toFloat64Array(x));
const close = (got: number[], want: number[], tol = 1e-6) => {
  expect(got.length).toBe(want.length);
  for (const [i, g] of got.entries())
    expect(Math.abs(g - want[i])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want[i])));
};

describe("addcmul / addcdiv", () => {
  it("self + value·t1·t2 and self + value·t1/t2, broadcast", () => {
    const tensors = { s: t([2], [1, 2]), a: t([2, 1], [3, 4]), b: t([2], [5, 6]) };
    const args = { self: T("s"), tensor1: T("a"), tensor2: T("b"), value: F(0.5) };
    // rows: a=3 → 1+0.5·3·5, 2+0.5·3·6; a=4 → 1+0.5·4·5, 2+0.5·4·6
    close(vals(run("aten.addcmul.default", args, tensors)[0]), [8.5, 11, 11, 14]);
    close(vals(run("aten.addcdiv.default", args, tensors)[0]), [1.3, 2 + 0.25, 1.4, 2 + 1 / 3]);
    const [d] = run("aten.addcmul.default", { self: T("s"), tensor1: T("a"), tensor2: T("b") }, tensors);
    close(vals(d), [16, 20, 21, 26]); // value defaults to 1
  });
  it("rejects integer addcdiv, as PyTorch", () => {
    const x = t([2], [1, 2], "int64");
    expect(() =>
      run("aten.addcdiv.default", { self: T("x"), tensor1: T("x"), tensor2: T("x") }, { x }),
    ).toThrow(/integer division/);
  });
});

describe("linalg_vector_norm", () => {
  const x = t([2, 2], [3, -4, 0, 1]);
  const norm = (ord: number, dim: number[] | null, keepdim = false) =>
    run(
      "aten.linalg_vector_norm.default",
      { self: T("x"), ord: F(ord), dim: dim === null ? NONE : Is(...dim), keepdim: B(keepdim) },
      { x },
    )[0];
  it("ord 2, 1, ±inf, 0 and p=3 over all dims and over one", () => {
    close(vals(norm(2, null)), [Math.sqrt(26)]);
    expect(norm(2, null).shape).toEqual([]);
    close(vals(norm(2, [1])), [5, 1]);
    close(vals(norm(1, [0])), [3, 5]);
    close(vals(norm(Number.POSITIVE_INFINITY, null)), [4]);
    close(vals(norm(Number.NEGATIVE_INFINITY, [1])), [3, 0]);
    close(vals(norm(0, null)), [3]);
    close(vals(norm(3, null)), [(27 + 64 + 0 + 1) ** (1 / 3)]);
    expect(norm(2, [-1], true).shape).toEqual([2, 1]);
    expect(norm(2, [], false).shape).toEqual([]); // [] means every dim
  });
  it("casts to dtype first, and rejects integer input", () => {
    const [y] = run(
      "aten.linalg_vector_norm.default",
      { self: T("x"), dtype: { kind: "dtype", value: "float64" } },
      { x },
    );
    expect(y.dtype).toBe("float64");
    expect(() =>
      run("aten.linalg_vector_norm.default", { self: T("i") }, { i: t([2], [1, 2], "int64") }),
    ).toThrow(/floating point/);
  });
});

/** A naive einsum for two operands without ellipsis: every label loop written out from the definition. */
function naive(eq: string, a: number[], aShape: number[], b: number[], bShape: number[]) {
  const [lhs, out] = eq.split("->");
  const [la, lb] = lhs.split(",");
  const size = new Map<string, number>();
  for (const [i, l] of [...la].entries()) size.set(l, aShape[i]);
  for (const [i, l] of [...lb].entries()) size.set(l, bShape[i]);
  const labels = [...size.keys()];
  const outShape = [...out].map((l) => size.get(l)!);
  const res = new Array(outShape.reduce((p, d) => p * d, 1)).fill(0);
  const at = (ls: string, shape: number[], c: Map<string, number>) =>
    [...ls].reduce((o, l, i) => o * shape[i] + c.get(l)!, 0);
  const rec = (k: number, c: Map<string, number>) => {
    if (k === labels.length) {
      res[at(out, outShape, c)] += a[at(la, aShape, c)] * b[at(lb, bShape, c)];
      return;
    }
    for (let i = 0; i < size.get(labels[k])!; i++) rec(k + 1, new Map(c).set(labels[k], i));
  };
  rec(0, new Map());
  return { res, outShape };
}

describe("einsum", () => {
  const A = iota([2, 3, 4]);
  const Bt = t(
    [2, 4, 5],
    Array.from({ length: 40 }, (_, i) => Math.sin(i)),
  );
  const es = (eq: string, ...names: string[]) =>
    run(
      "aten.einsum.default",
      { equation: S(eq), tensors: { kind: "tensors", names } },
      { A, B: Bt, M: iota([3, 3]), v: iota([3]), w: iota([4]) },
    )[0];
  for (const eq of ["bij,bjk->bik", "bij,bjk->bki", "bij,bjk->b", "bij,bjk->ijk", "bij,bjk->bj"]) {
    it(`${eq} matches the naive loops`, () => {
      const want = naive(eq, vals(A), [2, 3, 4], vals(Bt), [2, 4, 5]);
      const got = es(eq, "A", "B");
      expect(got.shape).toEqual(want.outShape);
      close(vals(got), want.res, 1e-5);
    });
  }
  it("diagonal, trace, outer product, transpose with ellipsis, implicit output", () => {
    close(vals(es("ii->i", "M")), [0, 4, 8]);
    close(vals(es("ii", "M")), [12]);
    close(vals(es("i,j->ij", "v", "w")), [0, 0, 0, 0, 0, 1, 2, 3, 0, 2, 4, 6]);
    const tr = es("...ij->...ji", "A");
    expect(tr.shape).toEqual([2, 4, 3]);
    expect(vals(tr).slice(0, 3)).toEqual([0, 4, 8]);
    // implicit: labels seen once, sorted: "bij,bjk" → "ik" (b and j are summed)
    const want = naive("bij,bjk->ik", vals(A), [2, 3, 4], vals(Bt), [2, 4, 5]);
    close(vals(es("bij,bjk", "A", "B")), want.res, 1e-5);
  });
  it("rejects equations that do not fit the operands", () => {
    expect(() => es("ij,jk->ik", "A", "B")).toThrow(/rank 3/);
    expect(() => es("bij,bjk->bz", "A", "B")).toThrow(/'z'/);
  });
});

describe("as_strided", () => {
  it("reads the input as contiguous storage", () => {
    const x = iota([3, 4]);
    const [y] = run(
      "aten.as_strided.default",
      { self: T("x"), size: Is(2, 2), stride: Is(1, 4), storage_offset: I(1) },
      { x },
    );
    expect(vals(y)).toEqual([1, 5, 2, 6]);
    const [z] = run("aten.as_strided.default", { self: T("x"), size: Is(3, 2), stride: Is(0, 1) }, { x });
    expect(vals(z)).toEqual([0, 1, 0, 1, 0, 1]);
    expect(() =>
      run("aten.as_strided.default", { self: T("x"), size: Is(4, 4), stride: Is(4, 1) }, { x }),
    ).toThrow(/storage of 12/);
  });
});

describe("slice_scatter / select_scatter", () => {
  it("replace a strided slice or a plane of self with src", () => {
    const x = iota([3, 5]);
    const src = t([3, 2], [-1, -2, -3, -4, -5, -6]);
    // columns 1 and 3 (start -4 → 1, step 2, end None)
    const [y] = run(
      "aten.slice_scatter.default",
      { self: T("x"), src: T("src"), dim: I(1), start: I(-4), end: NONE, step: I(2) },
      { x, src },
    );
    expect(vals(y)).toEqual([0, -1, 2, -2, 4, 5, -3, 7, -4, 9, 10, -5, 12, -6, 14]);
    const row = t([5], [9, 8, 7, 6, 5]);
    const [z] = run(
      "aten.select_scatter.default",
      { self: T("x"), src: T("r"), dim: I(0), index: I(-1) },
      { x, r: row },
    );
    expect(vals(z)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 8, 7, 6, 5]);
  });
});

describe("antialiased resize", () => {
  it("bilinear 4 → 2: PIL's triangle of support 2, normalized", () => {
    // scale 2, support 2·1 = 2. Output 0: centre 1, taps 0..2 with triangle((j − 0.5)/2) = 0.75, 0.75, 0.25
    // → /1.75 = 3/7, 3/7, 1/7. Output 1: centre 3, taps 1..3 → 1/7, 3/7, 3/7.
    const x = t([1, 1, 1, 4], [0, 1, 2, 3]);
    const [y] = run(
      "aten._upsample_bilinear2d_aa.default",
      { self: T("x"), output_size: Is(1, 2), align_corners: B(false) },
      { x },
    );
    close(vals(y), [(0 * 3 + 1 * 3 + 2 * 1) / 7, (1 * 1 + 2 * 3 + 3 * 3) / 7]);
  });
  it("bicubic 4 → 2 uses Keys' a = −0.5 over a support of 4", () => {
    // centre 1, support 4, taps 0..3 (x=(j−0.5)/2: −0.25, 0.25, 0.75, 1.25):
    const k = (s: number) => {
      const a = -0.5;
      const u = Math.abs(s);
      return u < 1
        ? ((a + 2) * u - (a + 3)) * u * u + 1
        : u < 2
          ? ((a * u - 5 * a) * u + 8 * a) * u - 4 * a
          : 0;
    };
    const w = [-0.25, 0.25, 0.75, 1.25].map(k);
    const sum = w.reduce((p, q) => p + q, 0);
    const x = t([1, 1, 1, 4], [1, -2, 5, 3]);
    const [y] = run(
      "aten._upsample_bicubic2d_aa.vec",
      { input: T("x"), output_size: Is(1, 2), align_corners: B(false), scale_factors: NONE },
      { x },
    );
    close([vals(y)[0]], [(w[0] * 1 + w[1] * -2 + w[2] * 5 + w[3] * 3) / sum]);
  });
  it("upsampling with antialias is plain bilinear (align_corners=False)", () => {
    const x = t(
      [1, 2, 3, 4],
      Array.from({ length: 24 }, (_, i) => Math.cos(i)),
    );
    const args = { output_size: Is(5, 7), align_corners: B(false) };
    const [aa] = run("aten._upsample_bilinear2d_aa.default", { self: T("x"), ...args }, { x });
    const [plain] = run("aten.upsample_bilinear2d.default", { self: T("x"), ...args }, { x });
    close(vals(aa), vals(plain), 1e-6);
  });
});

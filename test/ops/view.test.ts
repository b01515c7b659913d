import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { B, I, Is, iota, NONE, run, run1, S, T, t, values } from "./helpers.js";

const x = { x: iota([2, 3, 4]) };

describe("shape ops by hand", () => {
  it("views with an inferred dim and rejects impossible sizes", () => {
    expect(run1("aten.view.default", { self: T("x"), size: Is(4, -1) }, x).shape).toEqual([4, 6]);
    expect(() => run1("aten.view.default", { self: T("x"), size: Is(5, -1) }, x)).toThrow(
      /invalid for input of size 24/,
    );
  });

  it("flattens, squeezes and unsqueezes", () => {
    expect(run1("aten.flatten.using_ints", { self: T("x"), start_dim: I(1) }, x).shape).toEqual([2, 12]);
    expect(run1("aten.unsqueeze.default", { self: T("x"), dim: I(-1) }, x).shape).toEqual([2, 3, 4, 1]);
    const y = { y: iota([1, 3, 1]) };
    expect(run1("aten.squeeze.dim", { self: T("y"), dim: I(1) }, y).shape).toEqual([1, 3, 1]);
    expect(run1("aten.squeeze.dims", { self: T("y"), dim: Is(0, 2) }, y).shape).toEqual([3]);
    expect(run1("aten.squeeze.default", { self: T("y") }, y).shape).toEqual([3]);
  });

  it("permutes and transposes element by element", () => {
    const p = run1("aten.permute.default", { self: T("m"), dims: Is(1, 0) }, { m: iota([2, 3]) });
    expect(p.shape).toEqual([3, 2]);
    expect(values(p)).toEqual([0, 3, 1, 4, 2, 5]);
    expect(
      values(run1("aten.transpose.int", { self: T("m"), dim0: I(0), dim1: I(-1) }, { m: iota([2, 3]) })),
    ).toEqual([0, 3, 1, 4, 2, 5]);
    expect(values(run1("aten.t.default", { self: T("m") }, { m: iota([2, 3]) }))).toEqual([0, 3, 1, 4, 2, 5]);
  });

  it("swaps axes under transpose's numpy names (swapaxes, swapdims)", () => {
    const m = { m: iota([2, 3, 4]) };
    // out[i][j][k] = m[k][j][i], and m[k][j][i] = 12k + 4j + i (iota)
    const want: number[] = [];
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 3; j++) for (let k = 0; k < 2; k++) want.push(12 * k + 4 * j + i);
    const s = run1("aten.swapaxes.default", { self: T("m"), axis0: I(0), axis1: I(-1) }, m);
    expect(s.shape).toEqual([4, 3, 2]);
    expect(values(s)).toEqual(want);
    expect(values(run1("aten.swapdims.default", { self: T("m"), dim0: I(2), dim1: I(0) }, m))).toEqual(want);
    // the same axis twice is the identity
    expect(values(run1("aten.swapaxes.default", { self: T("m"), axis0: I(1), axis1: I(-2) }, m))).toEqual(
      values(m.m),
    );
    expect(() => run1("aten.swapaxes.default", { self: T("m"), axis0: I(3), axis1: I(0) }, m)).toThrow(
      /axis0/,
    );
    expect(() => run1("aten.swapdims.default", { self: T("m"), dim0: I(0), dim1: I(-4) }, m)).toThrow(/dim1/);
  });

  it("slices with negative bounds and steps, and selects", () => {
    const r = { r: iota([10]) };
    expect(
      values(run1("aten.slice.Tensor", { self: T("r"), dim: I(0), start: I(-4), end: NONE, step: I(2) }, r)),
    ).toEqual([6, 8]);
    expect(values(run1("aten.slice.Tensor", { self: T("r"), start: I(2), end: I(100) }, r))).toEqual([
      2, 3, 4, 5, 6, 7, 8, 9,
    ]);
    expect(values(run1("aten.slice.Tensor", { self: T("r"), start: I(5), end: I(2) }, r))).toEqual([]);
    const s = run1("aten.select.int", { self: T("x"), dim: I(1), index: I(-1) }, x);
    expect(s.shape).toEqual([2, 4]);
    expect(values(s)).toEqual([8, 9, 10, 11, 20, 21, 22, 23]);
  });

  it("expands size-1 and new leading dims", () => {
    const e = run1("aten.expand.default", { self: T("c"), size: Is(2, -1, 3) }, { c: t([2, 1], [1, 2]) });
    expect(e.shape).toEqual([2, 2, 3]);
    expect(values(e)).toEqual([1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2]);
    expect(() =>
      run1("aten.expand.default", { self: T("c"), size: Is(3, 3) }, { c: t([2, 1], [1, 2]) }),
    ).toThrow(/cannot expand/);
  });

  it("keeps int64 values exact through data movement", () => {
    const big = t([2], [2 ** 53 + 2, -(2 ** 53) - 2], "int64");
    (big.data as BigInt64Array)[0] = 2n ** 60n + 1n;
    const out = run1("aten.permute.default", { self: T("b"), dims: Is(0) }, { b: big });
    expect((out.data as BigInt64Array)[0]).toBe(2n ** 60n + 1n);
    const c = run1("aten.cat.default", { tensors: { kind: "tensors", names: ["b", "b"] } }, { b: big });
    expect((c.data as BigInt64Array)[2]).toBe(2n ** 60n + 1n);
  });
});

describe("joining and splitting by hand", () => {
  it("cats along a dim and skips legacy empty tensors", () => {
    const out = run1(
      "aten.cat.default",
      { tensors: { kind: "tensors", names: ["a", "e", "b"] }, dim: I(1) },
      { a: iota([2, 1]), b: t([2, 2], [7, 8, 9, 10]), e: t([0], []) },
    );
    expect(out.shape).toEqual([2, 3]);
    expect(values(out)).toEqual([0, 7, 8, 1, 9, 10]);
  });

  it("stacks on a new dim", () => {
    const out = run1(
      "aten.stack.default",
      { tensors: { kind: "tensors", names: ["a", "b"] }, dim: I(1) },
      { a: t([2], [1, 2]), b: t([2], [3, 4]) },
    );
    expect(out.shape).toEqual([2, 2]);
    expect(values(out)).toEqual([1, 3, 2, 4]);
  });

  it("splits and chunks into the sizes PyTorch gives", () => {
    const r = { r: iota([5]) };
    expect(run("aten.split.Tensor", { self: T("r"), split_size: I(2) }, r).map(values)).toEqual([
      [0, 1],
      [2, 3],
      [4],
    ]);
    expect(
      run("aten.split_with_sizes.default", { self: T("r"), split_sizes: Is(1, 4) }, r).map((p) => p.shape),
    ).toEqual([[1], [4]]);
    // chunk(5, 3): pieces of ceil(5/3) = 2
    expect(run("aten.chunk.default", { self: T("r"), chunks: I(3) }, r).map((p) => p.shape)).toEqual([
      [2],
      [2],
      [1],
    ]);
    // chunk(6, 4): pieces of 2, so only 3 chunks
    expect(run("aten.chunk.default", { self: T("r"), chunks: I(4) }, { r: iota([6]) }).length).toBe(3);
    expect(() => run("aten.split_with_sizes.default", { self: T("r"), split_sizes: Is(1, 3) }, r)).toThrow(
      /do not add up to 5/,
    );
  });

  it("unbinds", () => {
    expect(run("aten.unbind.int", { self: T("m"), dim: I(1) }, { m: iota([2, 2]) }).map(values)).toEqual([
      [0, 2],
      [1, 3],
    ]);
  });
});

describe("properties", () => {
  const shape = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 });

  it("reshape round-trips", () => {
    fc.assert(
      fc.property(shape, (s) => {
        const a = iota(s);
        const n = s.reduce((p, d) => p * d, 1);
        const flat = run1("aten.reshape.default", { self: T("a"), shape: Is(-1) }, { a });
        expect(flat.shape).toEqual([n]);
        const back = run1("aten.reshape.default", { self: T("f"), shape: Is(...s) }, { f: flat });
        expect(back.shape).toEqual(s);
        expect(values(back)).toEqual(values(a));
      }),
    );
  });

  it("a permutation followed by its inverse is the identity", () => {
    fc.assert(
      fc.property(
        shape.chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.shuffledSubarray([...s.keys()], { minLength: s.length, maxLength: s.length }),
          ),
        ),
        ([s, perm]) => {
          const inv = perm.map((_, i) => perm.indexOf(i));
          const a = iota(s);
          const p = run1("aten.permute.default", { self: T("a"), dims: Is(...perm) }, { a });
          expect(p.shape).toEqual(perm.map((d) => s[d]));
          const back = run1("aten.permute.default", { self: T("p"), dims: Is(...inv) }, { p });
          expect(values(back)).toEqual(values(a));
        },
      ),
    );
  });

  it("cat of a split gives the input back", () => {
    fc.assert(
      fc.property(shape, fc.nat(), fc.integer({ min: 1, max: 4 }), (s, d, size) => {
        const dim = d % s.length;
        const a = iota(s);
        const parts = run("aten.split.Tensor", { self: T("a"), split_size: I(size), dim: I(dim) }, { a });
        const names = parts.map((_, i) => `p${i}`);
        const back = run1(
          "aten.cat.default",
          { tensors: { kind: "tensors", names }, dim: I(dim) },
          Object.fromEntries(parts.map((p, i) => [names[i], p])),
        );
        expect(values(back)).toEqual(values(a));
      }),
    );
  });
});

describe("padding and resizing", () => {
  it("pads with a constant, reflects and replicates", () => {
    const r = { r: t([1, 3], [1, 2, 3]) };
    expect(
      values(run1("aten.constant_pad_nd.default", { self: T("r"), pad: Is(1, 2), value: I(9) }, r)),
    ).toEqual([9, 1, 2, 3, 9, 9]);
    expect(values(run1("aten.constant_pad_nd.default", { self: T("r"), pad: Is(-1, 0) }, r))).toEqual([2, 3]);
    expect(values(run1("aten.pad.default", { self: T("r"), pad: Is(2, 2), mode: S("reflect") }, r))).toEqual([
      3, 2, 1, 2, 3, 2, 1,
    ]);
    expect(
      values(run1("aten.pad.default", { self: T("r"), pad: Is(1, 1), mode: S("replicate") }, r)),
    ).toEqual([1, 1, 2, 3, 3]);
    expect(values(run1("aten.pad.default", { self: T("r"), pad: Is(1, 1), mode: S("circular") }, r))).toEqual(
      [3, 1, 2, 3, 1],
    );
  });

  it("upsamples by nearest neighbour and bilinearly", () => {
    const img = { i: t([1, 1, 2, 2], [1, 2, 3, 4]) };
    const near = run1(
      "aten.upsample_nearest2d.vec",
      { input: T("i"), output_size: NONE, scale_factors: { kind: "floats", value: [2, 2] } },
      img,
    );
    expect(values(near)).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    const corners = run1(
      "aten.upsample_bilinear2d.default",
      { self: T("i"), output_size: Is(3, 3), align_corners: B(true) },
      img,
    );
    expect(values(corners)).toEqual([1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
    const half = run1(
      "aten.upsample_bilinear2d.default",
      { self: T("i"), output_size: Is(1, 4), align_corners: B(false) },
      { i: t([1, 1, 1, 2], [0, 4]) },
    );
    // source x = (i + 0.5)/2 − 0.5, clamped at 0: 0, 0.25, 0.75, 1.25→edge
    expect(values(half)).toEqual([0, 1, 3, 4]);
  });
});

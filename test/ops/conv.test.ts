import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Tensor } from "../../src/ir/tensor.js";
import { B, I, Is, iota, NONE, run1, S, T, t, values } from "./helpers.js";

/** out[n,o,y,x] = b[o] + Σ w[o,c,ky,kx]·in[n, g·Cg+c, y·s−p+ky·d, x·s−p+kx·d], written as plainly as possible. */
function naiveConv(
  x: Tensor,
  w: Tensor,
  b: Tensor | null,
  s: number[],
  p: number[],
  d: number[],
  groups: number,
): number[] {
  const [N, C, H, W] = x.shape;
  const [O, Cg, KH, KW] = w.shape;
  const OH = Math.floor((H + 2 * p[0] - d[0] * (KH - 1) - 1) / s[0]) + 1;
  const OW = Math.floor((W + 2 * p[1] - d[1] * (KW - 1) - 1) / s[1]) + 1;
  const xv = values(x);
  const wv = values(w);
  const bv = b ? values(b) : null;
  const out: number[] = [];
  const og = O / groups;
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++)
      for (let y = 0; y < OH; y++)
        for (let xx = 0; xx < OW; xx++) {
          let acc = bv ? bv[o] : 0;
          const g = Math.floor(o / og);
          for (let c = 0; c < Cg; c++)
            for (let ky = 0; ky < KH; ky++)
              for (let kx = 0; kx < KW; kx++) {
                const iy = y * s[0] - p[0] + ky * d[0];
                const ix = xx * s[1] - p[1] + kx * d[1];
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += wv[((o * Cg + c) * KH + ky) * KW + kx] * xv[((n * C + g * Cg + c) * H + iy) * W + ix];
              }
          out.push(acc);
        }
  return out;
}

const rand = (shape: number[], seed: number) =>
  t(
    shape,
    Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(seed * 13.1 + i * 0.77)),
  );

describe("conv2d by hand", () => {
  it("sums 2x2 windows of a 3x3 ramp", () => {
    const out = run1(
      "aten.conv2d.default",
      { input: T("x"), weight: T("w") },
      { x: iota([1, 1, 3, 3]), w: t([1, 1, 2, 2], [1, 1, 1, 1]) },
    );
    expect(out.shape).toEqual([1, 1, 2, 2]);
    // windows {0,1,3,4}, {1,2,4,5}, {3,4,6,7}, {4,5,7,8}
    expect(values(out)).toEqual([8, 12, 20, 24]);
  });

  it("pads with zeros, strides and adds the bias", () => {
    const out = run1(
      "aten.conv2d.default",
      { input: T("x"), weight: T("w"), bias: T("b"), stride: Is(2, 2), padding: Is(1, 1) },
      { x: iota([1, 1, 3, 3]), w: t([1, 1, 3, 3], [0, 0, 0, 0, 1, 0, 0, 0, 0]), b: t([1], [100]) },
    );
    // a centred identity kernel samples the input at (0,0), (0,2), (2,0), (2,2)
    expect(values(out)).toEqual([100, 102, 106, 108]);
  });

  it("convolves each channel alone when depthwise", () => {
    const x = t([1, 2, 1, 2], [1, 2, 3, 4]);
    const out = run1(
      "aten.conv2d.default",
      { input: T("x"), weight: T("w"), groups: I(2) },
      { x, w: t([2, 1, 1, 1], [10, -1]) },
    );
    expect(values(out)).toEqual([10, 20, -3, -4]);
  });

  it('keeps the size with padding="same", padding the odd extra at the end', () => {
    const out = run1(
      "aten.conv2d.padding",
      { input: T("x"), weight: T("w"), padding: S("same") },
      { x: iota([1, 1, 1, 3]), w: t([1, 1, 1, 2], [1, 1]) },
    );
    expect(out.shape).toEqual([1, 1, 1, 3]);
    expect(values(out)).toEqual([1, 3, 2]);
    const valid = run1(
      "aten.conv2d.padding",
      { input: T("x"), weight: T("w") },
      { x: iota([1, 1, 1, 3]), w: t([1, 1, 1, 2], [1, 1]) },
    );
    expect(values(valid)).toEqual([1, 3]);
  });

  it("accepts unbatched input", () => {
    const out = run1(
      "aten.conv2d.default",
      { input: T("x"), weight: T("w") },
      { x: iota([1, 3, 3]), w: t([1, 1, 2, 2], [1, 1, 1, 1]) },
    );
    expect(out.shape).toEqual([1, 2, 2]);
  });

  it("runs conv1d", () => {
    const out = run1(
      "aten.conv1d.default",
      { input: T("x"), weight: T("w"), dilation: Is(2) },
      { x: iota([1, 1, 5]), w: t([1, 1, 2], [1, -1]) },
    );
    expect(values(out)).toEqual([-2, -2, -2]);
  });
});

describe("transposed convolution by hand", () => {
  it("spreads each input pixel over a stride-2 block", () => {
    const out = run1(
      "aten.conv_transpose2d.input",
      { input: T("x"), weight: T("w"), stride: Is(2, 2) },
      { x: t([1, 1, 2, 2], [1, 2, 3, 4]), w: t([1, 1, 2, 2], [1, 1, 1, 1]) },
    );
    expect(out.shape).toEqual([1, 1, 4, 4]);
    expect(values(out)).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
  });

  it("adds output_padding to the size and overlaps kernels", () => {
    const out = run1(
      "aten.convolution.default",
      {
        input: T("x"),
        weight: T("w"),
        bias: NONE,
        stride: Is(2),
        padding: Is(0),
        dilation: Is(1),
        transposed: B(true),
        output_padding: Is(1),
        groups: I(1),
      },
      { x: t([1, 1, 2], [1, 2]), w: t([1, 1, 3], [1, 10, 100]) },
    );
    // x0 lands at 0..2, x1 at 2..4, plus one output_padding column
    expect(values(out)).toEqual([1, 10, 102, 20, 200, 0]);
  });
});

describe("properties", () => {
  const params = fc.record({
    n: fc.integer({ min: 1, max: 2 }),
    groups: fc.integer({ min: 1, max: 3 }),
    cg: fc.integer({ min: 1, max: 3 }),
    og: fc.integer({ min: 1, max: 2 }),
    h: fc.integer({ min: 1, max: 7 }),
    w: fc.integer({ min: 1, max: 7 }),
    kh: fc.integer({ min: 1, max: 3 }),
    kw: fc.integer({ min: 1, max: 3 }),
    s: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
    p: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
    d: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 })),
    bias: fc.boolean(),
    seed: fc.integer({ min: 0, max: 1000 }),
  });

  it("conv2d agrees with the textbook definition", () => {
    fc.assert(
      fc.property(params, (q) => {
        const oh = Math.floor((q.h + 2 * q.p[0] - q.d[0] * (q.kh - 1) - 1) / q.s[0]) + 1;
        const ow = Math.floor((q.w + 2 * q.p[1] - q.d[1] * (q.kw - 1) - 1) / q.s[1]) + 1;
        fc.pre(oh > 0 && ow > 0);
        const x = rand([q.n, q.groups * q.cg, q.h, q.w], q.seed);
        const w = rand([q.groups * q.og, q.cg, q.kh, q.kw], q.seed + 1);
        const b = q.bias ? rand([q.groups * q.og], q.seed + 2) : null;
        const out = run1(
          "aten.conv2d.default",
          {
            input: T("x"),
            weight: T("w"),
            bias: b ? T("b") : NONE,
            stride: Is(...q.s),
            padding: Is(...q.p),
            dilation: Is(...q.d),
            groups: I(q.groups),
          },
          { x, w, ...(b ? { b } : {}) },
        );
        expect(out.shape).toEqual([q.n, q.groups * q.og, oh, ow]);
        const want = naiveConv(x, w, b, q.s, q.p, q.d, q.groups);
        values(out).forEach((v, i) => {
          expect(v).toBeCloseTo(want[i], 4);
        });
      }),
      { numRuns: 60 },
    );
  });

  it("transposed convolution is the adjoint of convolution: <conv(x), y> = <x, convT(y)>", () => {
    fc.assert(
      fc.property(params, (q) => {
        const oh = Math.floor((q.h + 2 * q.p[0] - q.d[0] * (q.kh - 1) - 1) / q.s[0]) + 1;
        const ow = Math.floor((q.w + 2 * q.p[1] - q.d[1] * (q.kw - 1) - 1) / q.s[1]) + 1;
        fc.pre(oh > 0 && ow > 0 && q.p[0] <= q.d[0] * (q.kh - 1) && q.p[1] <= q.d[1] * (q.kw - 1));
        const x = rand([q.n, q.groups * q.cg, q.h, q.w], q.seed);
        const w = rand([q.groups * q.og, q.cg, q.kh, q.kw], q.seed + 1);
        const y = rand([q.n, q.groups * q.og, oh, ow], q.seed + 2);
        const common = {
          weight: T("w"),
          bias: NONE,
          stride: Is(...q.s),
          padding: Is(...q.p),
          dilation: Is(...q.d),
          groups: I(q.groups),
        };
        const cx = run1(
          "aten.convolution.default",
          { input: T("x"), ...common, transposed: B(false), output_padding: Is(0, 0) },
          { x, w },
        );
        // the transposed conv must give back the input's size: output_padding makes up what the stride dropped
        const op0 = q.h - ((oh - 1) * q.s[0] - 2 * q.p[0] + q.d[0] * (q.kh - 1) + 1);
        const op1 = q.w - ((ow - 1) * q.s[1] - 2 * q.p[1] + q.d[1] * (q.kw - 1) + 1);
        const ty = run1(
          "aten.convolution.default",
          { input: T("y"), ...common, transposed: B(true), output_padding: Is(op0, op1) },
          { y, w },
        );
        expect(ty.shape).toEqual(x.shape);
        const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0);
        expect(dot(values(cx), values(y))).toBeCloseTo(dot(values(x), values(ty)), 3);
      }),
      { numRuns: 60 },
    );
  });
});

describe("speed", () => {
  it("runs a 32-channel 3x3 conv on 64x64 quickly", () => {
    const x = rand([1, 32, 64, 64], 1);
    const w = rand([32, 32, 3, 3], 2);
    const t0 = performance.now();
    run1("aten.conv2d.default", { input: T("x"), weight: T("w"), padding: Is(1, 1) }, { x, w });
    // 37.7M multiply-adds
    expect(performance.now() - t0).toBeLessThan(2000);
  });
});

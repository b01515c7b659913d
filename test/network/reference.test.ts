import { describe, expect, it } from "vitest";
import { iota, nums, runLayer, t } from "./helpers.js";

const close = (a: number[], b: number[], tol = 1e-6) => {
  expect(a.length).toBe(b.length);
  for (const [i, v] of a.entries())
    expect(Math.abs(v - b[i])).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(b[i])));
};

describe("layer reference", () => {
  it("convolution: 2x2 kernel, padding 1, bias", () => {
    const r = runLayer(
      ([x, w, b]) => ({
        type: "convolution",
        inputs: [x, w, b],
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        groups: 1,
      }),
      t([1, 1, 2, 2], [1, 2, 3, 4]),
      t([1, 1, 2, 2], [1, 0, 0, 1]),
      t([1], [10]),
    );
    expect(r.shape).toEqual([1, 1, 3, 3]);
    expect(r.values).toEqual([11, 12, 10, 13, 15, 12, 10, 13, 14]);
  });

  it("deconvolution is the adjoint of convolution", () => {
    const x = iota([1, 2, 3, 3], "float32", 0.1);
    const y = iota([1, 3, 2, 2], "float32", 0.2);
    const attrs = { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 1 };
    // conv_transpose with conv's own weight [Cout, Cin, k, k] is its adjoint.
    const wc = iota([3, 2, 2, 2], "float32", 0.01);
    const cx = runLayer(([a, b]) => ({ type: "convolution", inputs: [a, b], ...attrs }), x, wc);
    expect(cx.shape).toEqual([1, 3, 2, 2]);
    const dy = runLayer(
      ([a, b]) => ({ type: "deconvolution", inputs: [a, b], ...attrs, outputPadding: [1, 1] }),
      y,
      wc,
    );
    expect(dy.shape).toEqual([1, 2, 3, 3]);
    const lhs = cx.values.reduce((s, v, i) => s + v * nums(y)[i], 0);
    const rhs = dy.values.reduce((s, v, i) => s + v * nums(x)[i], 0);
    expect(lhs).toBeCloseTo(rhs, 4);
  });

  it("matmul with transposed B and broadcast batch", () => {
    const r = runLayer(
      ([a, b]) => ({ type: "matmul", inputs: [a, b], transposeA: false, transposeB: true }),
      t([2, 1, 2], [1, 2, 3, 4]),
      t([1, 3, 2], [1, 0, 0, 1, 1, 1]),
    );
    expect(r.shape).toEqual([2, 1, 3]);
    expect(r.values).toEqual([1, 2, 3, 3, 4, 7]);
  });

  it("elementwise broadcasting, floor division and remainder with Python signs", () => {
    const r = runLayer(
      ([a, b]) => ({ type: "elementwise", op: "remainder", inputs: [a, b] }),
      t([2, 1], [-7, 7]),
      t([2], [3, -3]),
    );
    expect(r.values).toEqual([2, -1, 1, -2]);
    const f = runLayer(
      ([a, b]) => ({ type: "elementwise", op: "floor_div", inputs: [a, b] }),
      t([2], [-7, 7]),
      t([2], [2, 2]),
    );
    expect(f.values).toEqual([-4, 3]);
    const c = runLayer(
      ([a, b]) => ({ type: "elementwise", op: "lt", inputs: [a, b] }),
      t([3], [1, 2, 3]),
      t([], [2]),
    );
    expect(c.values).toEqual([1, 0, 0]);
  });

  it("unary round is half to even; erf is accurate", () => {
    expect(
      runLayer(([x]) => ({ type: "unary", op: "round", inputs: [x] }), t([4], [0.5, 1.5, 2.5, -2.5])).values,
    ).toEqual([0, 2, 2, -2]);
    close(
      runLayer(([x]) => ({ type: "unary", op: "erf", inputs: [x] }), t([3], [0.001, 0.5, 2])).values,
      [0.0011283787909692363, 0.5204998778130465, 0.9953222650189527],
    );
  });

  it("activations", () => {
    const x = t([5], [-3, -1, 0, 1, 3]);
    const act = (fn: object) =>
      runLayer(([i]) => ({ type: "activation", inputs: [i], fn }) as never, x).values;
    expect(act({ kind: "relu" })).toEqual([0, 0, 0, 1, 3]);
    expect(act({ kind: "clip", min: -1, max: 2 })).toEqual([-1, -1, 0, 1, 2]);
    expect(act({ kind: "hardswish" })).toEqual([-0, -1 / 3, 0, 2 / 3, 3].map(Math.fround));
    close(act({ kind: "gelu_erf" }), [-0.0040496, -0.1586553, 0, 0.8413447, 2.9959502], 1e-6);
    close(act({ kind: "silu" }), [-0.1422776, -0.2689414, 0, 0.7310586, 2.8577223], 1e-6);
  });

  it("reduce over several axes, with and without keepDims; argmax takes the first maximum", () => {
    const x = iota([2, 3, 2]);
    expect(
      runLayer(([i]) => ({ type: "reduce", op: "sum", axes: [0, 2], keepDims: false, inputs: [i] }), x)
        .values,
    ).toEqual([14, 22, 30]);
    const m = runLayer(([i]) => ({ type: "reduce", op: "max", axes: [1], keepDims: true, inputs: [i] }), x);
    expect(m.shape).toEqual([2, 1, 2]);
    expect(m.values).toEqual([4, 5, 10, 11]);
    expect(
      runLayer(
        ([i]) => ({ type: "reduce", op: "argmax", axes: [0], keepDims: false, inputs: [i] }),
        t([3], [1, 5, 5]),
      ).values,
    ).toEqual([1]);
  });

  it("pooling: ceil mode, padding, count_include_pad", () => {
    const x = iota([1, 1, 3, 3]);
    const base = {
      kernel: [2, 2],
      stride: [2, 2],
      padding: [0, 0],
      dilation: [1, 1],
      countIncludePad: true,
      divisorOverride: null,
    };
    const mx = runLayer(([i]) => ({ type: "pooling", mode: "max", ceilMode: true, ...base, inputs: [i] }), x);
    expect(mx.shape).toEqual([1, 1, 2, 2]);
    expect(mx.values).toEqual([4, 5, 7, 8]);
    const avg = runLayer(
      ([i]) => ({ type: "pooling", mode: "avg", ceilMode: false, ...base, padding: [1, 1], inputs: [i] }),
      x,
    );
    expect(avg.values).toEqual([0 / 4, (1 + 2) / 4, (3 + 6) / 4, (4 + 5 + 7 + 8) / 4]);
    const ex = runLayer(
      ([i]) => ({
        type: "pooling",
        mode: "avg",
        ceilMode: false,
        ...base,
        padding: [1, 1],
        countIncludePad: false,
        inputs: [i],
      }),
      x,
    );
    expect(ex.values).toEqual([0, 1.5, 4.5, 6]);
  });

  it("adaptive pooling uses overlapping windows", () => {
    const r = runLayer(
      ([i]) => ({ type: "adaptive_pooling", mode: "avg", outputSize: [2], inputs: [i] }),
      t([1, 3], [1, 2, 3]),
    );
    expect(r.values).toEqual([1.5, 2.5]);
  });

  it("softmax and log-softmax", () => {
    const s = runLayer(
      ([i]) => ({ type: "softmax", axis: 1, log: false, inputs: [i] }),
      t([2, 2], [0, 0, 1000, 1000]),
    );
    expect(s.values).toEqual([0.5, 0.5, 0.5, 0.5]);
    const l = runLayer(([i]) => ({ type: "softmax", axis: 0, log: true, inputs: [i] }), t([2], [0, 0]));
    close(l.values, [-Math.LN2, -Math.LN2]);
  });

  it("shuffle: transpose, reshape, transpose", () => {
    const r = runLayer(
      ([i]) => ({
        type: "shuffle",
        firstTranspose: [1, 0],
        reshape: [2, 3],
        secondTranspose: [1, 0],
        inputs: [i],
      }),
      iota([2, 3]),
    );
    expect(r.shape).toEqual([3, 2]);
    expect(r.values).toEqual([0, 4, 3, 2, 1, 5]);
  });

  it("concatenation, slice with negative step, gather with negative index", () => {
    expect(
      runLayer(
        ([a, b]) => ({ type: "concatenation", axis: 1, inputs: [a, b] }),
        iota([2, 1]),
        iota([2, 2], "float32", 10),
      ).values,
    ).toEqual([0, 0, 10, 1, 20, 30]);
    expect(
      runLayer(([i]) => ({ type: "slice", starts: [3], ends: [-1], steps: [-2], inputs: [i] }), iota([4]))
        .values,
    ).toEqual([3, 1]);
    const g = runLayer(
      ([d, i]) => ({ type: "gather", axis: 0, mode: "default", inputs: [d, i] }),
      iota([3, 2]),
      t([2], [-1, 0], "int64"),
    );
    expect(g.shape).toEqual([2, 2]);
    expect(g.values).toEqual([4, 5, 0, 1]);
  });

  it("layer and group normalization", () => {
    const ln = runLayer(
      ([x, s, b]) => ({ type: "normalization", kind: "layer", beginAxis: 1, epsilon: 0, inputs: [x, s, b] }),
      t([1, 2], [1, 3]),
      t([2], [1, 2]),
      t([2], [0, 1]),
    );
    close(ln.values, [-1, 3]);
    const gn = runLayer(
      ([x, s, b]) => ({ type: "normalization", kind: "group", numGroups: 2, epsilon: 0, inputs: [x, s, b] }),
      t([1, 2, 2], [1, 3, 5, 9]),
      t([2], [1, 1]),
      t([2], [0, 0]),
    );
    close(gn.values, [-1, 1, -1, 1]);
  });

  it("padding modes", () => {
    const x = t([3], [1, 2, 3]);
    const pad = (mode: string) =>
      runLayer(([i]) => ({ type: "padding", pre: [2], post: [1], mode, value: 9, inputs: [i] }) as never, x)
        .values;
    expect(pad("constant")).toEqual([9, 9, 1, 2, 3, 9]);
    expect(pad("reflect")).toEqual([3, 2, 1, 2, 3, 2]);
    expect(pad("replicate")).toEqual([1, 1, 1, 2, 3, 3]);
    expect(pad("circular")).toEqual([2, 3, 1, 2, 3, 1]);
  });

  it("resize nearest and linear", () => {
    const x = t([1, 1, 2], [1, 3]);
    expect(
      runLayer(
        ([i]) => ({
          type: "resize",
          mode: "nearest",
          outputSize: [4],
          scales: [null],
          alignCorners: false,
          inputs: [i],
        }),
        x,
      ).values,
    ).toEqual([1, 1, 3, 3]);
    expect(
      runLayer(
        ([i]) => ({
          type: "resize",
          mode: "linear",
          outputSize: [3],
          scales: [null],
          alignCorners: true,
          inputs: [i],
        }),
        x,
      ).values,
    ).toEqual([1, 2, 3]);
    expect(
      runLayer(
        ([i]) => ({
          type: "resize",
          mode: "linear",
          outputSize: [4],
          scales: [null],
          alignCorners: false,
          inputs: [i],
        }),
        x,
      ).values,
    ).toEqual([1, 1.5, 2.5, 3]);
  });

  it("select, cast, quantize/dequantize", () => {
    expect(
      runLayer(
        ([c, a, b]) => ({ type: "select", inputs: [c, a, b] }),
        t([2], [1, 0], "bool"),
        t([2], [1, 2]),
        t([], [7]),
      ).values,
    ).toEqual([1, 7]);
    expect(
      runLayer(([x]) => ({ type: "cast", to: "int32", inputs: [x] }), t([3], [-1.7, 0.5, 2.9])).values,
    ).toEqual([-1, 0, 2]);
    const q = runLayer(
      ([x]) => ({
        type: "quantize",
        dtype: "int8",
        scale: [0.5],
        zeroPoint: [1],
        axis: null,
        qmin: -128,
        qmax: 127,
        inputs: [x],
      }),
      t([4], [0.25, 0.75, 100, -100]),
    );
    expect(q.values).toEqual([1, 3, 127, -128]);
    const d = runLayer(
      ([x]) => ({
        type: "dequantize",
        dtype: "float32",
        scale: [0.5, 2],
        zeroPoint: [0, 1],
        axis: 0,
        qmin: -128,
        qmax: 127,
        inputs: [x],
      }),
      t([2, 1], [4, 4], "int8"),
    );
    expect(d.values).toEqual([2, 6]);
  });

  it("attention: causal masking and a boolean mask", () => {
    const q = t([2, 1], [1, 1]);
    const k = t([2, 1], [0, 0]);
    const v = t([2, 1], [2, 4]);
    expect(
      runLayer(([a, b, c]) => ({ type: "attention", scale: 1, causal: true, inputs: [a, b, c] }), q, k, v)
        .values,
    ).toEqual([2, 3]);
    const m = t([2, 2], [0, 1, 1, 1], "bool");
    expect(
      runLayer(
        ([a, b, c, d]) => ({ type: "attention", scale: 1, causal: false, inputs: [a, b, c, d] }),
        q,
        k,
        v,
        m,
      ).values,
    ).toEqual([4, 3]);
  });

  it("broadcast expands size-1 axes", () => {
    const r = runLayer(([x]) => ({ type: "broadcast", shape: [2, 3], inputs: [x] }), t([2, 1], [1, 2]));
    expect(r.values).toEqual([1, 1, 1, 2, 2, 2]);
  });
});

// The quantization ops against values worked out by hand from PyTorch's definitions
// (torch/ao/quantization/fx/_decomposed.py, aten's fake_quantize kernels): round half to even, clamp, zero
// points, per-channel axes, the cachemask, and float8 E4M3 rounding.
import { describe, expect, it } from "vitest";
import type { Arg } from "../../src/ir/graph.js";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { getOp } from "../../src/ops/index.js";
import { roundToE4M3 } from "../../src/ops/quantize-math.js";

const T = (name: string): Arg => ({ kind: "tensor", name });
const I = (value: number): Arg => ({ kind: "int", value });
const F = (value: number): Arg => ({ kind: "float", value });
const D = (value: "int8" | "uint8"): Arg => ({ kind: "dtype", value });

function run(op: string, args: Record<string, Arg>, tensors: Record<string, Tensor>): Tensor[] {
  const def = getOp(op);
  if (!def) throw new Error(`${op} missing`);
  const a = def.parse(args);
  const types = def.infer(a, (v) => tensors[v]);
  const outs = def.evaluate(a, (v) => tensors[v]);
  outs.forEach((o, i) => {
    expect(o.dtype).toBe(types[i].dtype);
    expect(o.shape).toEqual(types[i].shape);
  });
  return outs;
}

const f32 = (shape: number[], v: number[]) => tensorFromNumbers("float32", shape, v);
const vals = (t: Tensor) => Array.from(toFloat64Array(t));

describe("quantized_decomposed per tensor", () => {
  const x = f32([5], [-1, 0.25, 0.75, 1.25, 100]);
  const qargs = { scale: F(0.5), zero_point: I(1), quant_min: I(-128), quant_max: I(127), dtype: D("int8") };

  it("quantize: x/0.5 = -2, .5, 1.5, 2.5, 200 → half-to-even -2, 0, 2, 2, 200 → +1, clamped at 127", () => {
    const [q] = run("quantized_decomposed.quantize_per_tensor.default", { input: T("x"), ...qargs }, { x });
    expect(q.dtype).toBe("int8");
    expect(vals(q)).toEqual([-1, 1, 3, 3, 127]);
  });

  it("the .tensor overload reads one-element scale and zero-point tensors", () => {
    const [q] = run(
      "quantized_decomposed.quantize_per_tensor.tensor",
      {
        input: T("x"),
        scale: T("s"),
        zero_point: T("z"),
        quant_min: I(0),
        quant_max: I(255),
        dtype: D("uint8"),
      },
      { x, s: f32([1], [0.25]), z: tensorFromNumbers("int64", [1], [128]) },
    );
    // x/0.25 = -4, 1, 3, 5, 400 → +128 → 124, 129, 131, 133, 528 → clamp 255
    expect(vals(q)).toEqual([124, 129, 131, 133, 255]);
  });

  it("dequantize: (q − 1)·0.5, float32 by default or out_dtype", () => {
    const q = tensorFromNumbers("int8", [4], [-1, 1, 3, 127]);
    const [y] = run("quantized_decomposed.dequantize_per_tensor.default", { input: T("q"), ...qargs }, { q });
    expect(y.dtype).toBe("float32");
    expect(vals(y)).toEqual([-1, 0, 1, 63]);
    const [h] = run(
      "quantized_decomposed.dequantize_per_tensor.default",
      { input: T("q"), ...qargs, out_dtype: { kind: "dtype", value: "float16" } },
      { q },
    );
    expect(h.dtype).toBe("float16");
  });

  it("refuses an input whose dtype is not the declared one, and a range outside the dtype", () => {
    const q = tensorFromNumbers("uint8", [1], [3]);
    expect(() =>
      run("quantized_decomposed.dequantize_per_tensor.default", { input: T("q"), ...qargs }, { q }),
    ).toThrow(/expected int8/);
    expect(() =>
      run(
        "quantized_decomposed.quantize_per_tensor.default",
        { input: T("x"), ...qargs, quant_max: I(300) },
        { x },
      ),
    ).toThrow(/does not fit int8/);
  });
});

describe("quantized_decomposed per channel", () => {
  const x = f32([2, 3], [1, -1.25, 0.3, 1, -1.25, 0.3]);
  const s = f32([2], [0.5, 0.25]);
  const z = tensorFromNumbers("int64", [2], [0, 2]);
  const args = {
    input: T("x"),
    scales: T("s"),
    zero_points: T("z"),
    axis: I(0),
    quant_min: I(-127),
    quant_max: I(127),
    dtype: D("int8"),
  };

  it("quantizes row 0 at 0.5 (2, −2.5→−2, 0.6→1) and row 1 at 0.25 + 2 (4+2, −5+2, 1.2→1 +2)", () => {
    const [q] = run("quantized_decomposed.quantize_per_channel.default", args, { x, s, z });
    expect(vals(q)).toEqual([2, -2, 1, 6, -3, 3]);
  });

  it("dequantizes along axis 1 too, and without zero points", () => {
    const q = tensorFromNumbers("int8", [2, 2], [2, 4, -2, 8]);
    const [y] = run(
      "quantized_decomposed.dequantize_per_channel.default",
      { ...args, input: T("q"), zero_points: { kind: "none" }, axis: I(1) },
      { q, s },
    );
    expect(vals(y)).toEqual([1, 1, -1, 2]);
  });

  it("refuses scales that do not match the channel count", () => {
    expect(() =>
      run("quantized_decomposed.quantize_per_channel.default", { ...args, axis: I(1) }, { x, s, z }),
    ).toThrow(/2 values for 3 channels/);
  });
});

describe("aten fake quantize", () => {
  it("per tensor: round, clamp and back to float, with the cachemask marking clamped elements", () => {
    const x = f32([4], [0.26, -0.74, 10, 20]);
    const [y, mask] = run(
      "aten.fake_quantize_per_tensor_affine_cachemask.default",
      { self: T("x"), scale: F(0.1), zero_point: I(0), quant_min: I(-128), quant_max: I(127) },
      { x },
    );
    const f = Math.fround(0.1);
    // 2.6 → 3, −7.4 → −7, 100, 200 → 127
    expect(vals(y)).toEqual([3, -7, 100, 127].map((q) => Math.fround(q * f)));
    expect(mask.dtype).toBe("bool");
    expect(vals(mask)).toEqual([1, 1, 1, 0]);
  });

  it("per channel with zero points", () => {
    const x = f32([2, 2], [0.5, 0.6, 0.5, 0.6]);
    const [y] = run(
      "aten.fake_quantize_per_channel_affine.default",
      {
        self: T("x"),
        scale: T("s"),
        zero_point: T("z"),
        axis: I(0),
        quant_min: I(0),
        quant_max: I(255),
      },
      { x, s: f32([2], [0.25, 1]), z: tensorFromNumbers("int32", [2], [10, 3]) },
    );
    // row 0: 2 → 2, 2.4 → 2 (×0.25 = 0.5, 0.5); row 1: 0.5 → 0 (half to even), 0.6 → 1
    expect(vals(y)).toEqual([0.5, 0.5, 0, 1]);
  });

  it("the tensor-qparams cachemask variant passes x through when fake_quant_enabled is 0", () => {
    const x = f32([2], [0.26, 7]);
    const tensors = { x, s: f32([1], [0.5]), z: tensorFromNumbers("int32", [1], [0]) };
    const args = {
      self: T("x"),
      scale: T("s"),
      zero_point: T("z"),
      fake_quant_enabled: T("e"),
      quant_min: I(-4),
      quant_max: I(4),
    };
    const op = "aten._fake_quantize_per_tensor_affine_cachemask_tensor_qparams.default";
    const [off] = run(op, args, { ...tensors, e: tensorFromNumbers("int64", [1], [0]) });
    expect(vals(off)).toEqual([Math.fround(0.26), 7]);
    const [on, mask] = run(op, args, { ...tensors, e: tensorFromNumbers("int64", [1], [1]) });
    expect(vals(on)).toEqual([0.5, 2]);
    expect(vals(mask)).toEqual([1, 0]);
  });
});

describe("float8 E4M3 rounding", () => {
  it.each([
    [1, 1],
    [1.0625, 1], // halfway between 1 and 1.125: even mantissa
    [1.1875, 1.25], // halfway between 1.125 and 1.25: even mantissa
    [448, 448],
    [500, 448], // saturates (fn has no infinity)
    [-3.3, -3.25],
    [2 ** -9, 2 ** -9], // smallest subnormal
    [2 ** -10, 0], // half of it ties to zero
    [0.001, 2 ** -9],
    [0.0155, 0.015625], // 2^-6 = smallest normal
  ])("%f → %f", (x, want) => {
    expect(roundToE4M3(x)).toBe(want);
  });
});

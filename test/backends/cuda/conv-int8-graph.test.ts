// The int8 form of the one cuDNN conv graph (conv-graph.ts with `quant`, device/conv-int8.ts), pure parts: tensor
// types, virtual flags, variant-pack order and stage order (cudnn-frontend's run_conv_scale_bias_relu_int8:
// int8 x/w, int32 conv output, MUL by a float scale, ADD a float bias, then the epilogue), the plan's refusals
// and operand sizes. The float graphs are covered by test/backends/device-layer.test.ts (unchanged).
import { describe, expect, it } from "vitest";
import { convGraphLayout } from "../../../src/backends/cuda/device/conv-graph.js";
import {
  type Int8ConvSpec,
  int8ConvGeometry,
  int8ConvGraphSpec,
  int8ConvRefusal,
} from "../../../src/backends/cuda/device/conv-int8.js";
import { CUDNN_DATA, POINTWISE } from "../../../src/ffi/cudnn.js";

const { FLOAT, HALF, INT8, INT32 } = CUDNN_DATA;

const spec: Int8ConvSpec = {
  n: 2,
  c: 16,
  h: 9,
  w: 9,
  k: 32,
  r: 3,
  s: 3,
  padding: 1,
  output: "float16",
  bias: true,
  epilogue: [{ kind: "act", fn: "relu" }],
};

const layoutOf = (s: Int8ConvSpec) => convGraphLayout(int8ConvGraphSpec(int8ConvGeometry(s)));
const rows = (s: Int8ConvSpec) =>
  layoutOf(s).tensors.map((t) => [t.label, Number(t.uid), t.dataType, t.isVirtual]);

describe("the int8 conv graph layout", () => {
  it("int8 x and w, the scale right after w, a float bias, y in the output type; int32 conv output", () => {
    expect(rows(spec)).toEqual([
      ["x", 1, INT8, false],
      ["w", 2, INT8, false],
      ["scale", 3, FLOAT, false],
      ["bias", 4, FLOAT, false],
      ["y", 5, HALF, false],
      ["conv out", 6, INT32, true],
      ["scale out", 7, FLOAT, true],
      ["bias out", 8, FLOAT, true],
    ]);
    const g = layoutOf(spec);
    expect(g.uids).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect(g.convOut).toBe(5);
    // NHWC x, KRSC w, [1, K, 1, 1] scale
    expect(g.tensors[0].strides).toEqual([9 * 9 * 16, 1, 9 * 16, 16]);
    expect(g.tensors[1].dims).toEqual([32, 16, 3, 3]);
    expect(g.tensors[1].strides).toEqual([144, 1, 48, 16]);
    expect(g.tensors[2].dims).toEqual([1, 32, 1, 1]);
    expect(g.tensors[2].strides).toEqual([32, 1, 32, 32]);
    expect(g.tensors[4].dims).toEqual([2, 32, 9, 9]);
    // conv → MUL scale → ADD bias → RELU → y
    expect(g.pointwise.map((p) => [p.label, p.mode, p.input, p.operand, p.output])).toEqual([
      ["scale", POINTWISE.MUL, 5, 2, 6],
      ["bias", POINTWISE.ADD, 6, 3, 7],
      ["relu", POINTWISE.RELU_FWD, 7, undefined, 4],
    ]);
  });

  it("the scale alone still makes the conv output virtual int32 (the scale writes y)", () => {
    const g = layoutOf({ ...spec, output: "float32", bias: false, epilogue: [] });
    expect(g.tensors.map((t) => [t.label, t.dataType, t.isVirtual])).toEqual([
      ["x", INT8, false],
      ["w", INT8, false],
      ["scale", FLOAT, false],
      ["y", FLOAT, false],
      ["conv out", INT32, true],
    ]);
    expect(g.pointwise.map((p) => [p.mode, p.input, p.operand, p.output])).toEqual([
      [POINTWISE.MUL, 4, 2, 3],
    ]);
  });

  it("an int8 output keeps its operands float32; a float output has them in its own type", () => {
    const epilogue = [
      { kind: "channel", op: "mul" },
      { kind: "tensor", op: "add" },
      { kind: "act", fn: "relu" },
    ] as const;
    expect(rows({ ...spec, output: "int8", epilogue })).toEqual([
      ["x", 1, INT8, false],
      ["w", 2, INT8, false],
      ["scale", 3, FLOAT, false],
      ["bias", 4, FLOAT, false],
      ["y", 5, INT8, false],
      ["channel 0", 6, FLOAT, false],
      ["operand 1", 7, FLOAT, false],
      ["conv out", 8, INT32, true],
      ["scale out", 9, FLOAT, true],
      ["bias out", 10, FLOAT, true],
      ["channel mul out", 11, FLOAT, true],
      ["tensor add out", 12, FLOAT, true],
    ]);
    const half = rows({ ...spec, output: "float16", epilogue });
    expect(half.filter((r) => String(r[0]).match(/channel 0|operand 1/)).map((r) => r[2])).toEqual([
      HALF,
      HALF,
    ]);
    const g = layoutOf({ ...spec, output: "int8", epilogue });
    expect(g.pointwise.map((p) => p.label)).toEqual(["scale", "bias", "channel mul", "tensor add", "relu"]);
    expect(g.pointwise.at(-1)?.output).toBe(4);
  });

  it("sizes each operand in bytes: int8 x and w, float32 scale, y and operands by type", () => {
    const epilogue = [{ kind: "tensor", op: "add" } as const, { kind: "channel", op: "mul" } as const];
    const g = int8ConvGeometry({ ...spec, stride: 2, epilogue });
    expect([g.outH, g.outW]).toEqual([5, 5]);
    expect(g.x.bytes).toBe(2 * 9 * 9 * 16);
    expect(g.w.bytes).toBe(32 * 3 * 3 * 16);
    expect(g.channel.bytes).toBe(32 * 4);
    expect(g.y.bytes).toBe(2 * 5 * 5 * 32 * 2);
    expect(g.extraBytes).toEqual([2 * 5 * 5 * 32 * 2, 32 * 2]);
    const i8 = int8ConvGeometry({ ...spec, stride: 2, output: "int8", epilogue });
    expect(i8.y.bytes).toBe(2 * 5 * 5 * 32);
    expect(i8.extraBytes).toEqual([2 * 5 * 5 * 32 * 4, 32 * 4]);
  });
});

describe("int8 conv refusals (before cuDNN is asked)", () => {
  it("names the rule", () => {
    expect(int8ConvRefusal(spec)).toBeNull();
    expect(int8ConvRefusal({ ...spec, layout: "NCHW" })).toBe(
      "NCHW layout (cuDNN's int8 convolutions are NHWC: channels last)",
    );
    expect(int8ConvRefusal({ ...spec, groups: 2 })).toBe("2 groups (int8 convolutions here have one group)");
    expect(int8ConvRefusal({ ...spec, c: 18 })).toMatch(/^input channels 18 are not a multiple of 4/);
    expect(int8ConvRefusal({ ...spec, k: 30 })).toMatch(/^output channels 30 are not a multiple of 4/);
    expect(int8ConvRefusal({ ...spec, h: 0 })).toBe("h must be in [1, 2147483647], got 0");
    expect(int8ConvRefusal({ ...spec, r: 13 })).toMatch(/does not fit the padded input/);
    expect(int8ConvRefusal({ ...spec, output: "bfloat16" as never })).toBe(
      "output type bfloat16 (int8, float16 or float32)",
    );
  });

  it("checks the scale's host values when given", () => {
    const scales = new Float32Array(32).fill(0.01);
    expect(int8ConvRefusal({ ...spec, scales })).toBeNull();
    expect(int8ConvRefusal({ ...spec, scales: scales.subarray(1) })).toBe("31 scales for 32 output channels");
    const bad = scales.slice();
    bad[7] = Number.POSITIVE_INFINITY;
    expect(int8ConvRefusal({ ...spec, scales: bad })).toBe(
      "scale[7] = Infinity is not a positive finite number",
    );
    bad[7] = -1;
    expect(int8ConvRefusal({ ...spec, scales: bad })).toBe("scale[7] = -1 is not a positive finite number");
  });

  it("int8ConvGeometry throws the same reason", () => {
    expect(() => int8ConvGeometry({ ...spec, c: 6 })).toThrow(/int8 convolution: input channels 6/);
  });
});

describe("the FP8 form of the quantized conv graph (bench conv-precision-sweep)", () => {
  it("FP8 E4M3 x and w, fp32 conv output and compute; the same scale, bias, epilogue and variant pack", () => {
    const int8 = int8ConvGraphSpec(int8ConvGeometry(spec));
    const fp8 = convGraphLayout({ ...int8, quant: { ...int8.quant, input: "fp8e4m3" } });
    expect(CUDNN_DATA.FP8_E4M3).toBe(12);
    expect(fp8.tensors.map((t) => [t.label, t.dataType, t.isVirtual])).toEqual([
      ["x", CUDNN_DATA.FP8_E4M3, false],
      ["w", CUDNN_DATA.FP8_E4M3, false],
      ["scale", FLOAT, false],
      ["bias", FLOAT, false],
      ["y", HALF, false],
      ["conv out", FLOAT, true],
      ["scale out", FLOAT, true],
      ["bias out", FLOAT, true],
    ]);
    const same = layoutOf(spec);
    expect(fp8.uids).toEqual(same.uids);
    expect(fp8.pointwise).toEqual(same.pointwise);
  });
});

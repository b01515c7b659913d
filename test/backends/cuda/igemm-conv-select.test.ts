// Which int8 conv steps the generated implicit GEMM may take (src/backends/cuda/igemm-conv-select.ts), without a
// GPU: the setting, the problem read from a step's cuDNN spec (and why a step stays on cuDNN), and the kernel's
// pointers from the operands the builder gives cuDNN's plan.
import { describe, expect, it } from "vitest";
import {
  generateIgemmConvKernel,
  quantizeInverse,
} from "../../../src/backends/cuda/codegen/conv-int8-igemm.js";
import {
  copyMismatch,
  type IgemmConvKernel,
  igemmArgs,
  igemmConvSite,
  igemmPointers,
  igemmProblemKey,
  igemmSetting,
} from "../../../src/backends/cuda/igemm-conv-select.js";
import type { CudnnConvSpec } from "../../../src/backends/cuda/kernels/conv-cudnn.js";

const SPEC: CudnnConvSpec = {
  layout: "NHWC",
  dtype: "float16",
  int8: true,
  x: [8, 64, 28, 28],
  w: [128, 64, 3, 3],
  y: [8, 128, 14, 14],
  stride: [2, 2],
  padding: [1, 1],
  dilation: [1, 1],
  bias: true,
  epilogue: [
    { kind: "tensor", op: "add", tensor: "skip" },
    { kind: "act", fn: "relu" },
    { kind: "channel", op: "mul", values: new Float64Array(128).fill(0.5) },
  ],
  allowTf32: false,
};

describe("TORCHC_INT8_IGEMM", () => {
  it("is off unless set; 1 or timed times it against cuDNN, force takes it untimed", () => {
    expect(igemmSetting({})).toBe("off");
    expect(igemmSetting({ TORCHC_INT8_IGEMM: "0" })).toBe("off");
    expect(igemmSetting({ TORCHC_INT8_IGEMM: "1" })).toBe("timed");
    expect(igemmSetting({ TORCHC_INT8_IGEMM: "timed" })).toBe("timed");
    expect(igemmSetting({ TORCHC_INT8_IGEMM: "force" })).toBe("force");
  });
});

describe("an int8 conv step's problem for the generated kernel", () => {
  it("reads the geometry, output type and epilogue from the cuDNN spec", () => {
    const p = igemmConvSite(SPEC);
    if (typeof p === "string") throw new Error(p);
    expect([p.n, p.c, p.h, p.w, p.k, p.r, p.s]).toEqual([8, 64, 28, 28, 128, 3, 3]);
    expect(p.output).toBe("float16");
    expect(p.epilogue).toEqual([
      { kind: "tensor", op: "add" },
      { kind: "act", fn: "relu" },
      { kind: "channel", op: "mul" },
    ]);
    expect([p.tensorType, p.channelType]).toEqual(["float16", "float16"]);
  });

  it("takes an int8 output's channel operands as float32, as the builder uploads them", () => {
    const p = igemmConvSite({ ...SPEC, int8Output: true, epilogue: [{ kind: "act", fn: "relu" }] });
    if (typeof p === "string") throw new Error(p);
    expect(p.output).toBe("int8");
    expect(p.channelType).toBe("float32");
  });

  it("says why a step stays on cuDNN", () => {
    const { int8: _int8, ...float } = SPEC;
    expect(igemmConvSite(float)).toMatch(/not an int8/);
    expect(igemmConvSite({ ...SPEC, fp8: true })).toMatch(/not an int8/);
    expect(igemmConvSite({ ...SPEC, layout: "NCHW" })).toMatch(/NCHW/);
    expect(igemmConvSite({ ...SPEC, w: [128, 32, 3, 3] })).toMatch(/2 groups/);
    expect(igemmConvSite({ ...SPEC, x: [8, 24, 28, 28], w: [128, 24, 3, 3] })).toMatch(/multiple of 16/);
    expect(igemmConvSite({ ...SPEC, y: [8, 128, 28, 28] })).toMatch(/not the 14×14 map/);
    // an int8 output takes no tensor operand (the step's quantize would have to divide it)
    expect(igemmConvSite({ ...SPEC, int8Output: true })).toMatch(/int8 output/);
  });

  it("keys equal problems together and tells different outputs apart", () => {
    const a = igemmConvSite(SPEC);
    const b = igemmConvSite({ ...SPEC });
    const c = igemmConvSite({ ...SPEC, dtype: "float32" });
    if (typeof a === "string" || typeof b === "string" || typeof c === "string") throw new Error("refused");
    expect(igemmProblemKey(a)).toBe(igemmProblemKey(b));
    expect(igemmProblemKey(a)).not.toBe(igemmProblemKey(c));
  });
});

describe("the generated kernel's pointers", () => {
  const p = igemmConvSite(SPEC);
  if (typeof p === "string") throw new Error(p);
  const generated = generateIgemmConvKernel("k", p, {
    bm: 128,
    bn: 128,
    bk: 64,
    warpsM: 2,
    warpsN: 4,
    stages: 4,
  });
  const ops = {
    x: 0x1000n,
    w: 0x2000n,
    scale: 0x3000n,
    bias: 0x4000n,
    y: 0x5000n,
    extra: [0x6000n, 0x7000n],
  };

  it("are cuDNN's operands in the kernel's parameter order, one per memory op of the epilogue", () => {
    expect(generated.params.map((q) => q.tensor)).toEqual(["x", "w", "scale", "bias", "y", "e0", "e2"]);
    expect(igemmPointers({ generated, problem: p }, ops)).toEqual([
      0x1000n,
      0x2000n,
      0x3000n,
      0x4000n,
      0x5000n,
      0x6000n,
      0x7000n,
    ]);
  });

  it("refuses a missing, misaligned or surplus operand before anything is launched", () => {
    expect(() => igemmPointers({ generated, problem: p }, { ...ops, bias: undefined })).toThrow(
      /'bias' is missing/,
    );
    expect(() => igemmPointers({ generated, problem: p }, { ...ops, y: 0x5008n })).toThrow(/'y'.*16-byte/);
    expect(() => igemmPointers({ generated, problem: p }, { ...ops, extra: [0x6000n] })).toThrow(
      /1 epilogue operands for 2/,
    );
    expect(() =>
      igemmPointers({ generated, problem: p }, { ...ops, extra: [...ops.extra, 0x8000n] }),
    ).toThrow(/3 epilogue operands for 2/);
  });
});

describe("the build's check of an int8 copy", () => {
  it("accepts quantize(y) value for value (half to even, saturated) and counts any other value", () => {
    // scale 0.5: y · 2, so 0.25 → 0.5 → 0 and 0.75 → 1.5 → 2 (half to even); ±100 saturate
    const y = [0.25, 0.75, -0.25, 100, -100, 3];
    const q = Int8Array.from([0, 2, 0, 127, -128, 6]);
    expect(copyMismatch(y, q, 0.5)).toBeUndefined();
    q[1] = 1;
    expect(copyMismatch(y, q, 0.5)).toMatch(/1 of 6 values/);
    // NaN quantizes to -128, as the element kernel's fmaxf/fminf clamp makes it
    expect(copyMismatch([Number.NaN], Int8Array.from([-128]), 0.5)).toBeUndefined();
    expect(copyMismatch([Number.NaN], Int8Array.from([0]), 0.5)).toMatch(/1 of 1/);
  });
});

describe("the copy's arguments", () => {
  it("take qinv = 1.0f / scale in float32, and refuse a copy the kernel was not made for", () => {
    expect(quantizeInverse(0.5)).toBe(2);
    expect(quantizeInverse(0.37)).toBe(Math.fround(1 / Math.fround(0.37)));
    expect(quantizeInverse(1e-45)).toBeUndefined(); // its inverse is no finite float32
    expect(quantizeInverse(0)).toBeUndefined();
    const p = igemmConvSite({ ...SPEC, epilogue: [] });
    if (typeof p === "string") throw new Error(p);
    const config = { bm: 64, bn: 64, bk: 64, warpsM: 2, warpsN: 2, stages: 2 };
    const plain = { generated: generateIgemmConvKernel("k", p, config), problem: p } as IgemmConvKernel;
    const ops = { x: 0x1000n, w: 0x2000n, scale: 0x3000n, bias: 0x4000n, y: 0x5000n, extra: [] };
    expect(() => igemmArgs(plain, ops, { q: 0x6000n, inv: 2 })).toThrow(/not made for/);
    const withCopy = { ...p, quantizedCopy: true };
    const copying = {
      generated: generateIgemmConvKernel("k", withCopy, config),
      problem: withCopy,
    } as IgemmConvKernel;
    expect(copying.generated.params.map((q) => q.tensor)).toEqual(["x", "w", "scale", "bias", "y", "q"]);
    expect(copying.generated.source).toContain("const float qinv)");
    expect(() => igemmArgs(copying, ops)).toThrow(/not made for/);
    igemmArgs(copying, ops, { q: 0x6000n, inv: 2 }).free();
  });
});

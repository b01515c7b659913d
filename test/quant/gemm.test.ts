// Quantized GEMM plans (issue 14): which cuBLASLt variant a problem gets and why others are refused, the
// scale and zero-point arithmetic against the torchc.quantized_linear reference (the int8 oracle), and the
// int8 / fp8 plans run through the fake cuBLASLt (test/ffi/fakes/fake_cublaslt.c computes what cuBLASLt's
// documented int8 and fp8 matmuls compute, on host memory).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type QuantLtProblem,
  quantLtRefusal,
  quantLtVariants,
} from "../../src/backends/cuda/device/blaslt-quant.js";
import { QUANT_KERNEL_NAMES, quantKernelSource } from "../../src/backends/cuda/kernels/matmul-int8.js";
import {
  fp8PerTensor,
  type Int8LinearSpec,
  int8Alpha,
  int8Bias,
  quantizedLinearRefusal,
} from "../../src/backends/cuda/kernels/quantized-linear.js";
import {
  type PointwiseGeometry,
  pointwiseLinearSpec,
  pointwiseRefusal,
} from "../../src/backends/cuda/kernels/quantized-pointwise.js";
import { rng } from "../../src/backends/cuda/testing/nets.js";
import { tensorFromNumbers } from "../../src/ir/tensor.js";
import { e4m3Bits, e4m3Value, quantizeValue, roundToE4M3 } from "../../src/ops/quantize-math.js";
import { cCompiler } from "../ffi/fakes/build.js";
import { fakeLibrarySuite } from "../ffi/fakes/suite.js";
import { quantizedLinearReference, quantizedReference } from "./reference.js";

const f = Math.fround;

interface Problem {
  m: number;
  k: number;
  n: number;
  x: Float32Array;
  w: Int8Array;
  sw: Float32Array;
  bias: Float32Array;
  sx: number;
}

function problem(m: number, k: number, n: number, seed: number): Problem {
  const r = rng(seed);
  const x = Float32Array.from({ length: m * k }, () => (r() - 0.5) * 4);
  const w = Int8Array.from({ length: n * k }, () => Math.round((r() - 0.5) * 254));
  const sw = Float32Array.from({ length: n }, () => f(0.001 + r() * 0.01));
  const bias = Float32Array.from({ length: n }, () => f(r() - 0.5));
  return { m, k, n, x, w, sw, bias, sx: 2 / 127 };
}

/** torchc.quantized_linear's reference output for `p` (activation zero point `zp`, range [qmin, qmax]). */
function reference(p: Problem, zp = 0, qmin = -128, qmax = 127): Float64Array {
  return quantizedLinearReference({ ...p, scales: p.sw }, { scale: p.sx, zeroPoint: zp, qmin, qmax });
}

/** What the activation-quantize kernel stores: clamp(rint(x · f32(1/s)) + zp) − offset (128 for uint8 ranges). */
function quantizeInput(p: Problem, zp = 0, qmin = -128, qmax = 127): Int8Array {
  const offset = qmax > 127 ? 128 : 0;
  const inv = f(1 / p.sx);
  return Int8Array.from(p.x, (v) => quantizeValue(v, inv, zp, qmin, qmax) - offset);
}

function spec(p: Problem, extra: Partial<Int8LinearSpec> = {}): Int8LinearSpec {
  return {
    kind: "int8",
    m: p.m,
    inFeatures: p.k,
    outFeatures: p.n,
    dtype: "float32",
    inputScale: p.sx,
    weight: p.w,
    weightScales: p.sw,
    bias: p.bias,
    ...extra,
  };
}

/** The int32 epilogue kernel's arithmetic: f32(f32(acc) · alpha[n]) then + bias[n], rounded per step. */
function epilogue(acc: ArrayLike<number>, n: number, alpha: Float32Array, bias: Float32Array | null) {
  return Float64Array.from({ length: acc.length }, (_, i) => {
    const y = f(f(acc[i]) * alpha[i % n]);
    return bias ? f(y + bias[i % n]) : y;
  });
}

function int32Product(xq: Int8Array, w: Int8Array, m: number, k: number, n: number): Int32Array {
  const acc = new Int32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += xq[i * k + p] * w[j * k + p];
      acc[i * n + j] = s;
    }
  return acc;
}

const base: QuantLtProblem = { kind: "int8", m: 8, n: 16, k: 32, out: "float16", bias: true };

describe("quantized GEMM eligibility", () => {
  it("accepts int8 and fp8 problems whose sizes fit the kernels' alignment", () => {
    expect(quantLtRefusal(base)).toBeNull();
    expect(quantLtRefusal({ ...base, kind: "fp8", n: 3072, k: 768 })).toBeNull();
  });

  it("refuses with the rule that failed", () => {
    expect(quantLtRefusal({ ...base, k: 6 })).toBe("int8 GEMM: in_features 6 is not a multiple of 4");
    expect(quantLtRefusal({ ...base, n: 10 })).toBe("int8 GEMM: out_features 10 is not a multiple of 4");
    expect(quantLtRefusal({ ...base, kind: "fp8", k: 24 })).toBe(
      "fp8 GEMM: in_features 24 is not a multiple of 16",
    );
    expect(quantLtRefusal({ ...base, kind: "fp8", n: 40 })).toBe(
      "fp8 GEMM: out_features 40 is not a multiple of 16",
    );
    expect(quantLtRefusal({ ...base, m: 0 })).toBe("m = 0 is not a positive 32-bit size");
  });

  it("tries the fused variants first and the int32 result last", () => {
    expect(quantLtVariants(base)).toEqual(["int8-vector-bias", "int8-vector", "int8-int32"]);
    expect(quantLtVariants({ ...base, bias: false })).toEqual(["int8-vector", "int8-int32"]);
    expect(quantLtVariants({ ...base, relu: true })).toEqual(["int8-int32"]);
    expect(quantLtVariants({ ...base, kind: "fp8" })).toEqual(["fp8-bias", "fp8"]);
    expect(quantLtVariants({ ...base, kind: "fp8", fp8Scales: "channel" })).toEqual([
      "fp8-channel-bias",
      "fp8-channel",
    ]);
    // cuBLASLt's fp8 bias for an fp32 output is bf16: torchc adds the fp32 bias itself instead
    expect(quantLtVariants({ ...base, kind: "fp8", out: "float32" })).toEqual(["fp8"]);
    expect(quantLtVariants({ ...base, kind: "fp8", out: "float32", fp8Scales: "channel" })).toEqual([
      "fp8-channel",
    ]);
  });

  it("checks a layer's weights, scales and ranges before anything reaches the device", () => {
    const p = problem(2, 8, 4, 1);
    expect(quantizedLinearRefusal(spec(p))).toBeNull();
    expect(quantizedLinearRefusal(spec(p, { weightScales: new Float32Array(3) }))).toBe(
      "3 weight scales for 4 output channels",
    );
    expect(quantizedLinearRefusal(spec(p, { qmin: -200 }))).toBe(
      "activation range [-200, 127] does not fit int8 or uint8",
    );
    expect(quantizedLinearRefusal(spec(p, { inputScale: 0 }))).toBe(
      "input scale 0 is not a positive finite number",
    );
    expect(quantizedLinearRefusal(spec(p, { weight: new Int8Array(5) }))).toBe(
      "weight holds 5 values, [4, 8] needs 32",
    );
  });
});

describe("int8 scale math against the torchc.quantized_linear reference", () => {
  it("alpha[c] = f32(sx · sw[c]): int32 product + epilogue equals the reference bit for bit", () => {
    const p = problem(5, 12, 8, 7);
    const alpha = int8Alpha(p.sx, p.sw, p.n);
    expect(Array.from(alpha)).toEqual(Array.from(p.sw, (s) => f(f(p.sx) * s)));
    const acc = int32Product(quantizeInput(p), p.w, p.m, p.k, p.n);
    expect(Array.from(epilogue(acc, p.n, alpha, int8Bias(spec(p), alpha)))).toEqual(Array.from(reference(p)));
  });

  it("a per-tensor weight scale broadcasts to every channel", () => {
    const alpha = int8Alpha(0.5, Float32Array.of(0.25), 3);
    expect(Array.from(alpha)).toEqual([0.125, 0.125, 0.125]);
  });

  it("folds a nonzero activation zero point (int8, and uint8 stored minus 128) into the bias", () => {
    for (const [zp, qmin, qmax] of [
      [5, -128, 127],
      [128, 0, 255],
      [100, 0, 255],
    ] as const) {
      const p = problem(4, 16, 8, 11 + zp);
      const s = spec(p, { inputZeroPoint: zp, qmin, qmax });
      const alpha = int8Alpha(p.sx, p.sw, p.n);
      const bias = int8Bias(s, alpha);
      if (qmax > 127 && zp === 128) expect(bias).toBe(p.bias); // the offset equals the zero point: nothing to fold
      const got = epilogue(
        int32Product(quantizeInput(p, zp, qmin, qmax), p.w, p.m, p.k, p.n),
        p.n,
        alpha,
        bias,
      );
      const want = reference(p, zp, qmin, qmax);
      const scale = Math.max(...want.map(Math.abs));
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-5 * scale);
    }
  });
});

describe("1×1 convolutions as int8 GEMMs over channels", () => {
  const g: PointwiseGeometry = {
    layout: "NHWC",
    n: 2,
    c: 8,
    h: 3,
    w: 5,
    k: 4,
    kernel: [1, 1],
    stride: [1, 1],
    padding: [0, 0],
    groups: 1,
  };

  it("refuses what is not one GEMM, naming why", () => {
    expect(pointwiseRefusal(g)).toBeNull();
    expect(pointwiseRefusal({ ...g, kernel: [3, 3] })).toBe(
      "a 3×3 kernel (only 1×1 convolutions run as int8 GEMMs)",
    );
    expect(pointwiseRefusal({ ...g, stride: [2, 2] })).toBe("stride 2×2 (a 1×1 GEMM needs stride 1)");
    expect(pointwiseRefusal({ ...g, padding: [1, 1] })).toBe("padding 1×1 (a 1×1 GEMM needs none)");
    expect(pointwiseRefusal({ ...g, groups: 2 })).toBe("2 groups (a grouped convolution is not one GEMM)");
    expect(pointwiseRefusal({ ...g, layout: "NCHW" })).toBe("NCHW layout (the GEMM reads channels last)");
  });

  it("the GEMM of the NHWC input equals torchc.quantized_convolution's reference, bit for bit", () => {
    const M = g.n * g.h * g.w;
    const p = problem(M, g.c, g.k, 99); // x as [N·H·W, C] (NHWC), w as [K, C]
    const s = pointwiseLinearSpec(g, {
      dtype: "float32",
      inputScale: p.sx,
      weight: p.w,
      weightScales: p.sw,
      bias: p.bias,
    });
    expect([s.m, s.inFeatures, s.outFeatures]).toEqual([30, 8, 4]);
    const alpha = int8Alpha(p.sx, p.sw, p.n);
    const nhwc = epilogue(int32Product(quantizeInput(p), p.w, M, g.c, g.k), g.k, alpha, p.bias);
    // the reference reads NCHW: x[n, c, h, w] = nhwcX[(n·H + h)·W + w, c]
    const hw = g.h * g.w;
    const nchw = new Array<number>(M * g.c);
    for (let b = 0; b < g.n; b++)
      for (let c = 0; c < g.c; c++)
        for (let i = 0; i < hw; i++) nchw[(b * g.c + c) * hw + i] = p.x[(b * hw + i) * g.c + c];
    const tensors = {
      x: tensorFromNumbers("float32", [g.n, g.c, g.h, g.w], nchw),
      w: tensorFromNumbers("int8", [g.k, g.c, 1, 1], p.w),
      s: tensorFromNumbers("float32", [g.k], p.sw),
      b: tensorFromNumbers("float32", [g.k], p.bias),
    };
    // the reference's output is [N, K, H, W]
    const ref = quantizedReference(
      "torchc.quantized_convolution.default",
      tensors,
      { scale: p.sx },
      {
        stride: { kind: "ints", value: [1, 1] },
        padding: { kind: "ints", value: [0, 0] },
        dilation: { kind: "ints", value: [1, 1] },
        groups: { kind: "int", value: 1 },
      },
    );
    for (let b = 0; b < g.n; b++)
      for (let k = 0; k < g.k; k++)
        for (let i = 0; i < hw; i++) expect(nhwc[(b * hw + i) * g.k + k]).toBe(ref[(b * g.k + k) * hw + i]);
    expect(() => pointwiseLinearSpec({ ...g, stride: [2, 2] }, s)).toThrow(
      "1×1 convolution as int8 GEMM: stride 2×2",
    );
  });
});

describe("per-channel fp8 weights requantized per tensor (the fallback where cuBLASLt refuses outer-vector scales)", () => {
  it("keeps every weight within one E4M3 step of its per-channel value, on one scale max|w| / 448", () => {
    const ws = Float32Array.of(0.001, 0.01);
    const values = [0.3, -2.5, 448, -7, 100, 0.05, -448, 1]; // in units of each channel's scale
    const spec = {
      kind: "fp8" as const,
      m: 1,
      inFeatures: 4,
      outFeatures: 2,
      dtype: "float32" as const,
      inputScale: 1,
      weight: Uint8Array.from(values, (v) => e4m3Bits(v)),
      weightScale: ws,
    };
    expect(quantizedLinearRefusal(spec)).toBeNull();
    expect(quantizedLinearRefusal({ ...spec, weightScale: Float32Array.of(1, 2, 3) })).toBe(
      "3 fp8 weight scales for 2 output channels",
    );
    const t = fp8PerTensor(spec);
    const scale = t.weightScale as number;
    expect(scale).toBe(f((448 * 0.01) / 448));
    for (let i = 0; i < values.length; i++) {
      const before = e4m3Value(spec.weight[i]) * ws[Math.floor(i / 4)];
      const after = e4m3Value(t.weight[i]) * scale;
      // one E4M3 rounding of `before` at the new scale: relative 2⁻⁴, or the subnormal step 2⁻⁹ · scale
      expect(Math.abs(after - before)).toBeLessThanOrEqual(Math.max(Math.abs(before) / 16, 2 ** -10 * scale));
    }
  });
});

describe("fp8 E4M3 bytes", () => {
  it("every finite byte decodes and re-encodes to itself, and values round as roundToE4M3", () => {
    for (let b = 0; b < 256; b++) {
      const v = e4m3Value(b);
      if (Number.isNaN(v)) {
        expect(b & 0x7f).toBe(0x7f);
        continue;
      }
      expect(e4m3Bits(v)).toBe(b);
    }
    for (const x of [0.3, -1000, 1e-5, 3.1, -0.0013, 447, 2 ** -7 + 2 ** -12])
      expect(e4m3Value(e4m3Bits(x))).toBe(roundToE4M3(x));
    expect(e4m3Bits(448)).toBe(0x7e);
    expect(e4m3Bits(2 ** -9)).toBe(0x01);
  });
});

describe("the quantize kernel's E4M3 encoder, compiled for the host", () => {
  const compiler = cCompiler(); // without one, the kernel's E4M3 encoder is not checked on the host
  it.skipIf(!compiler)("rounds like roundToE4M3 and encodes like e4m3Bits, NaN and −0 included", () => {
    const src = quantKernelSource();
    const fn = src.slice(
      src.indexOf("__device__ __forceinline__ unsigned char tc_e4m3"),
      src.indexOf('extern "C"'),
    );
    const dir = mkdtempSync(join(tmpdir(), "torchc-e4m3-"));
    try {
      writeFileSync(
        join(dir, "e4m3.c"),
        [
          "#include <math.h>",
          "#include <stdio.h>",
          "#include <string.h>",
          "static inline unsigned __float_as_uint(float f) { unsigned u; memcpy(&u, &f, 4); return u; }",
          fn.replace("__device__ __forceinline__", "static inline"),
          "int main(void) { float x; while (fread(&x, 4, 1, stdin) == 1) putchar(tc_e4m3(x)); return 0; }",
        ].join("\n"),
      );
      execFileSync(compiler!, ["-O1", "-o", join(dir, "e4m3"), join(dir, "e4m3.c"), "-lm"]);
      const r = rng(17);
      const xs = Float32Array.from({ length: 50_000 }, () => (r() - 0.5) * 2 ** Math.floor(r() * 30 - 15));
      xs.set([Number.NaN, -0, 0, 448, 449, -1e9, 2 ** -10, 2 ** -9 * 1.5, 2 ** -9 * 2.5, 0.0625 * 1.0625], 0);
      const out = execFileSync(join(dir, "e4m3"), { input: Buffer.from(xs.buffer) });
      expect(out.length).toBe(xs.length);
      let mismatches = 0;
      for (let i = 0; i < xs.length; i++) if (out[i] !== e4m3Bits(xs[i])) mismatches++;
      expect(mismatches).toBe(0);
      expect([out[0], out[1], out[3], out[4]]).toEqual([0x7f, 0x80, 0x7e, 0x7e]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("quantize kernels' source", () => {
  it("defines each named kernel once, for fp32 and fp16 inputs", () => {
    const src = quantKernelSource();
    expect(QUANT_KERNEL_NAMES).toHaveLength(8);
    for (const name of QUANT_KERNEL_NAMES) expect(src.split(`void ${name}(`)).toHaveLength(2);
    expect(src).toContain("#include <cuda_fp16.h>");
  });
});

// ------------------------------------------------------------------------- through the fake cuBLASLt

const native = fakeLibrarySuite();

native("quantized plans through the fake cuBLASLt", () => {
  async function setup() {
    const ffi = await import("../../src/ffi/index.js");
    const device = await import("../../src/backends/cuda/device/index.js");
    const plans = await import("../../src/backends/cuda/device/blaslt-quant.js");
    const { createLtHandle } = await import("../../src/backends/cuda/device/blaslt-plan.js");
    const lib = ffi.koffi().load(ffi.CUBLASLT.load().path);
    const floatOut = lib.func("void fake_cublaslt_int8_float_out(int on)") as (on: number) => void;
    device.CudaContext.current();
    /** buildQuantLtPlan's plan, or its reason thrown. */
    const build = (...args: Parameters<typeof plans.buildQuantLtPlan>) => {
      const built = plans.buildQuantLtPlan(...args);
      if (!built.ok) throw new Error(built.reason);
      return built.plan;
    };
    return { device, plans, build, handle: createLtHandle(), floatOut };
  }

  it("int8: picks the int32 variant where int8 → fp32 is refused, and names the refusals", async () => {
    const { device, plans, build, handle } = await setup();
    const p = problem(3, 8, 4, 21);
    const plan = build(handle, { kind: "int8", m: p.m, n: p.n, k: p.k, out: "float32", bias: true }, 1024);
    expect(plan.variant).toBe("int8-int32");
    expect(plan.dType).toBe("int32");
    expect(plan.post).toEqual({ scale: true, bias: true });
    expect(plan.refused).toHaveLength(2);
    expect(plan.refused[0]).toMatch(/^int8-vector-bias: .*CUBLAS_STATUS_NOT_SUPPORTED/);
    expect(plan.refused[1]).toMatch(/^int8-vector: .*CUBLAS_STATUS_NOT_SUPPORTED/);
    const xq = device.DeviceBuffer.from(quantizeInput(p));
    const wq = device.DeviceBuffer.from(p.w);
    const d = device.DeviceBuffer.alloc(p.m * p.n * 4);
    plans.bindQuantLtPlan(plan, {});
    plans.runQuantLtPlan(handle, plan, { xq: xq.ptr, wq: wq.ptr, d: d.ptr, workspace: null }, null);
    const acc = d.download(new Int32Array(p.m * p.n));
    expect(Array.from(acc)).toEqual(Array.from(int32Product(quantizeInput(p), p.w, p.m, p.k, p.n)));
    const alpha = int8Alpha(p.sx, p.sw, p.n);
    expect(Array.from(epilogue(acc, p.n, alpha, p.bias))).toEqual(Array.from(reference(p)));
    plans.destroyQuantLtPlan(plan);
    for (const b of [xq, wq, d]) b.free();
  });

  it("int8: with int8 → fp32 allowed, the alpha vector (device memory) scales each output channel", async () => {
    const { device, plans, build, handle, floatOut } = await setup();
    floatOut(1);
    try {
      const p = problem(4, 12, 8, 33);
      const plan = build(handle, { kind: "int8", m: p.m, n: p.n, k: p.k, out: "float32", bias: false }, 1024);
      expect(plan.variant).toBe("int8-vector");
      expect(plan.post).toEqual({ scale: false, bias: false });
      const alpha = int8Alpha(p.sx, p.sw, p.n);
      const bufs = {
        xq: device.DeviceBuffer.from(quantizeInput(p)),
        wq: device.DeviceBuffer.from(p.w),
        alpha: device.DeviceBuffer.from(alpha),
        d: device.DeviceBuffer.alloc(p.m * p.n * 4),
      };
      plans.runQuantLtPlan(
        handle,
        plan,
        { xq: bufs.xq.ptr, wq: bufs.wq.ptr, d: bufs.d.ptr, alpha: bufs.alpha.ptr, workspace: null },
        null,
      );
      const got = bufs.d.download(new Float32Array(p.m * p.n));
      const noBias = { ...p, bias: new Float32Array(p.n) };
      expect(Array.from(got)).toEqual(Array.from(reference(noBias)));
      expect(() =>
        plans.runQuantLtPlan(handle, plan, { xq: 1n, wq: 1n, d: 1n, workspace: null }, null),
      ).toThrow("int8-vector: no alpha vector");
      plans.destroyQuantLtPlan(plan);
      for (const b of Object.values(bufs)) b.free();
    } finally {
      floatOut(0);
    }
  });

  it("fp8: E4M3 operands with device scales for the weight and the input", async () => {
    const { device, plans, build, handle } = await setup();
    const r = rng(5);
    const m = 3;
    const k = 16;
    const n = 16;
    const x = Float32Array.from({ length: m * k }, () => (r() - 0.5) * 6);
    const w = Float32Array.from({ length: n * k }, () => (r() - 0.5) * 0.2);
    const sx = f(3 / 448);
    const sw = f(0.1 / 448);
    const xq = Uint8Array.from(x, (v) => e4m3Bits(f(v * f(1 / sx))));
    const wq = Uint8Array.from(w, (v) => e4m3Bits(v / sw));
    const bufs = {
      xq: device.DeviceBuffer.from(xq),
      wq: device.DeviceBuffer.from(wq),
      sw: device.DeviceBuffer.from(Float32Array.of(sw)),
      sx: device.DeviceBuffer.from(Float32Array.of(sx)),
      d: device.DeviceBuffer.alloc(m * n * 4),
      workspace: device.DeviceBuffer.alloc(1 << 20),
    };
    const pointers = () => ({ weightScale: bufs.sw.ptr, inputScale: bufs.sx.ptr });
    const plan = build(handle, { kind: "fp8", m, n, k, out: "float32", bias: false }, bufs.workspace.bytes, {
      pointers,
    });
    expect(plan.variant).toBe("fp8");
    // the fake's fp8 algorithms take 4 KiB of workspace where allowed; less is INVALID_VALUE, as documented
    expect(plan.workspaceBytes).toBe(4096);
    expect(() => plans.bindQuantLtPlan(plan, {})).toThrow("fp8 plan: weight and input scales are required");
    const operands = { xq: bufs.xq.ptr, wq: bufs.wq.ptr, d: bufs.d.ptr };
    expect(() => plans.runQuantLtPlan(handle, plan, { ...operands, workspace: null }, null)).toThrow(
      /CUBLAS_STATUS_FAKE|INVALID_VALUE|status 7/,
    );
    plans.runQuantLtPlan(handle, plan, { ...operands, workspace: bufs.workspace.ptr }, null);
    const got = bufs.d.download(new Float32Array(m * n));
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += e4m3Value(xq[i * k + p]) * sx * e4m3Value(wq[j * k + p]) * sw;
        expect(got[i * n + j]).toBeCloseTo(s, 5);
      }
    plans.destroyQuantLtPlan(plan);
    for (const b of Object.values(bufs)) b.free();
  });

  it("fp8: scale pointers set after the heuristic, one 4 bytes into a buffer, are refused by cublasLtMatmul (as on the H100)", async () => {
    const { device, plans, build, handle } = await setup();
    const scales = device.DeviceBuffer.from(Float32Array.of(0.01, 0.02));
    const bufs = {
      xq: device.DeviceBuffer.alloc(2 * 16),
      wq: device.DeviceBuffer.alloc(16 * 16),
      d: device.DeviceBuffer.alloc(2 * 16 * 4),
    };
    const p = { kind: "fp8", m: 2, n: 16, k: 16, out: "float32", bias: false } as const;
    const late = build(handle, p, 0);
    plans.bindQuantLtPlan(late, { weightScale: scales.ptr, inputScale: scales.ptr + 4n });
    const operands = { xq: bufs.xq.ptr, wq: bufs.wq.ptr, d: bufs.d.ptr, workspace: null };
    expect(() => plans.runQuantLtPlan(handle, late, operands, null)).toThrow(
      /cublasLtMatmul\(fp8 2x16x16\) failed: CUBLAS_STATUS_NOT_SUPPORTED/,
    );
    // the same pointers given to the heuristic: it picks an algorithm that takes them
    const early = build(handle, p, 0, {
      pointers: () => ({ weightScale: scales.ptr, inputScale: scales.ptr + 4n }),
    });
    plans.runQuantLtPlan(handle, early, operands, null);
    // and C = D (what the H100 run passed; PyTorch's scaled_gemm: C must be neither D nor NULL) is refused
    const { CUBLASLT } = await import("../../src/ffi/cublaslt.js");
    const [la, lb, ld] = early.layouts;
    const one = Float32Array.of(1);
    const zero = Float32Array.of(0);
    const call = (c: bigint | null) =>
      CUBLASLT.fn.cublasLtMatmul(
        handle,
        early.desc,
        one,
        bufs.wq.ptr,
        la,
        bufs.xq.ptr,
        lb,
        zero,
        c,
        ld,
        bufs.d.ptr,
        ld,
        early.algo,
        null,
        0,
        null,
      );
    expect([call(bufs.d.ptr), call(null), call(bufs.wq.ptr)]).toEqual([15, 15, 0]);
    for (const plan of [late, early]) plans.destroyQuantLtPlan(plan);
    for (const b of [...Object.values(bufs), scales]) b.free();
  });

  it("fp8: a heuristic algorithm cublasLtMatmul refuses is skipped by the trial run, the reason kept", async () => {
    const { device, plans, build, handle } = await setup();
    const ffi = await import("../../src/ffi/index.js");
    const lib = ffi.koffi().load(ffi.CUBLASLT.load().path);
    const refuseFirst = lib.func("void fake_cublaslt_refuse_first_algo(int on)") as (on: number) => void;
    const scales = [
      device.DeviceBuffer.from(Float32Array.of(1)),
      device.DeviceBuffer.from(Float32Array.of(1)),
    ];
    const bufs = {
      xq: device.DeviceBuffer.alloc(32),
      wq: device.DeviceBuffer.alloc(256),
      d: device.DeviceBuffer.alloc(128),
    };
    const p = { kind: "fp8", m: 2, n: 16, k: 16, out: "float32", bias: false } as const;
    const tried: number[] = [];
    const probe = (plan: import("../../src/backends/cuda/device/blaslt-quant.js").QuantLtPlan) => {
      tried.push(plan.algo[1]);
      return plans.launchQuantLtPlan(
        handle,
        plan,
        { xq: bufs.xq.ptr, wq: bufs.wq.ptr, d: bufs.d.ptr, workspace: null },
        null,
      );
    };
    const pointers = () => ({ weightScale: scales[0].ptr, inputScale: scales[1].ptr });
    refuseFirst(1);
    try {
      const plan = build(handle, p, 0, { pointers, probe });
      expect(tried).toEqual([0, 1]);
      expect(plan.algo[1]).toBe(1);
      plans.destroyQuantLtPlan(plan);
      // no algorithm runs: the variant is refused with each algorithm's status
      const none = plans.buildQuantLtPlan(handle, p, 0, { pointers, probe: () => 15 });
      expect(none.ok).toBe(false);
      if (!none.ok)
        expect(none.reason).toMatch(
          /fp8: cublasLtMatmul\(fp8 2x16x16, trial run\) failed: .*algorithm 1 of 2: CUBLAS_STATUS_NOT_SUPPORTED, algorithm 2 of 2/,
        );
    } finally {
      refuseFirst(0);
      for (const b of [...Object.values(bufs), ...scales]) b.free();
    }
  });

  it("fp8: documented type rules: C of D's type, bias of D's type (bf16 for an fp32 D)", async () => {
    const { plans, build, handle } = await setup();
    const scales = { weightScale: 256n, inputScale: 512n };
    const fp16 = build(handle, { kind: "fp8", m: 2, n: 16, k: 16, out: "float16", bias: true }, 0, {
      pointers: () => ({ ...scales, bias: 768n }),
    });
    expect(fp16.variant).toBe("fp8-bias");
    expect(fp16.post).toEqual({ scale: false, bias: false });
    plans.destroyQuantLtPlan(fp16);
    const fp32 = build(handle, { kind: "fp8", m: 2, n: 16, k: 16, out: "float32", bias: true }, 0, {
      pointers: () => scales,
    });
    expect(fp32.variant).toBe("fp8");
    expect(fp32.post).toEqual({ scale: false, bias: true });
    plans.destroyQuantLtPlan(fp32);
  });

  it("fp8 with outer-vector scales: one weight scale per output channel, one input scale per row", async () => {
    const { device, plans, build, handle } = await setup();
    const r = rng(8);
    const m = 2;
    const k = 16;
    const n = 16;
    const xq = Uint8Array.from({ length: m * k }, () => e4m3Bits((r() - 0.5) * 100));
    const wq = Uint8Array.from({ length: n * k }, () => e4m3Bits((r() - 0.5) * 100));
    const sw = Float32Array.from({ length: n }, () => f(0.001 + r() * 0.01));
    const sx = Float32Array.from({ length: m }, () => f(0.01 + r() * 0.01));
    const bufs = {
      xq: device.DeviceBuffer.from(xq),
      wq: device.DeviceBuffer.from(wq),
      sw: device.DeviceBuffer.from(sw),
      sx: device.DeviceBuffer.from(sx),
      d: device.DeviceBuffer.alloc(m * n * 4),
    };
    const plan = build(
      handle,
      { kind: "fp8", m, n, k, out: "float32", bias: false, fp8Scales: "channel" },
      1024,
      { pointers: () => ({ weightScale: bufs.sw.ptr, inputScale: bufs.sx.ptr }) },
    );
    expect(plan.variant).toBe("fp8-channel");
    plans.runQuantLtPlan(
      handle,
      plan,
      { xq: bufs.xq.ptr, wq: bufs.wq.ptr, d: bufs.d.ptr, workspace: null },
      null,
    );
    const got = bufs.d.download(new Float32Array(m * n));
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += e4m3Value(xq[i * k + p]) * e4m3Value(wq[j * k + p]);
        expect(got[i * n + j]).toBeCloseTo(s * sw[j] * sx[i], 4);
      }
    plans.destroyQuantLtPlan(plan);
    for (const b of Object.values(bufs)) b.free();
  });

  it("QuantizedLinear: plans, uploads, checks its operands before launching, and frees everything", async () => {
    const { device, handle } = await setup();
    const ffi = await import("../../src/ffi/index.js");
    const { QuantizedLinear } = await import("../../src/backends/cuda/kernels/quantized-linear.js");
    const cuda = ffi.koffi().load(ffi.CUDA.load().path);
    const live = cuda.func("int fake_live_allocations(void)") as () => number;
    const before = live();
    const p = problem(4, 8, 4, 3);
    const workspace = device.DeviceBuffer.alloc(1024);
    const built = QuantizedLinear.create(handle, spec(p), workspace);
    if (!built.ok) throw new Error(built.reason);
    const layer = built.layer;
    expect(layer.variant).toBe("int8-int32");
    expect(layer.refused.map((r) => r.split(":")[0])).toEqual(["int8-vector-bias", "int8-vector"]);
    // weight, quantized input, alpha, bias, int32 accumulator
    expect(live() - before).toBe(1 + 5);
    const small = device.DeviceBuffer.alloc(8);
    expect(() => layer.run(small, small, null)).toThrow(/x holds 8 bytes; 128 bytes at offset 0 are needed/);
    layer.destroy();
    layer.destroy();
    expect(() => layer.run(small, small, null)).toThrow("the quantized linear layer has been destroyed");
    small.free();
    workspace.free();
    expect(live()).toBe(before);
  });

  it("QuantizedLinear: per-channel fp8 weights fall back to one scale where outer-vector scales are refused", async () => {
    const { device, handle } = await setup();
    const ffi = await import("../../src/ffi/index.js");
    const { QuantizedLinear } = await import("../../src/backends/cuda/kernels/quantized-linear.js");
    const lib = ffi.koffi().load(ffi.CUBLASLT.load().path);
    const refuseOuter = lib.func("void fake_cublaslt_refuse_outer_vec(int on)") as (on: number) => void;
    const r = rng(4);
    const fp8 = {
      kind: "fp8" as const,
      m: 2,
      inFeatures: 16,
      outFeatures: 16,
      dtype: "float32" as const,
      inputScale: 0.01,
      weight: Uint8Array.from({ length: 256 }, () => e4m3Bits((r() - 0.5) * 400)),
      weightScale: Float32Array.from({ length: 16 }, (_, c) => 0.001 * (c + 1)),
    };
    const workspace = device.DeviceBuffer.alloc(1024);
    const channel = QuantizedLinear.create(handle, fp8, workspace);
    if (!channel.ok) throw new Error(channel.reason);
    expect(channel.layer.variant).toBe("fp8-channel");
    expect(channel.layer.spec).toBe(fp8);
    channel.layer.destroy();
    refuseOuter(1);
    try {
      const tensor = QuantizedLinear.create(handle, fp8, workspace);
      if (!tensor.ok) throw new Error(tensor.reason);
      expect(tensor.layer.variant).toBe("fp8");
      expect(tensor.layer.refused[0]).toMatch(/^per-channel fp8 scales: cuBLASLt refused every fp8 variant/);
      expect(typeof (tensor.layer.spec as typeof fp8 & { weightScale: unknown }).weightScale).toBe("number");
      tensor.layer.destroy();
    } finally {
      refuseOuter(0);
      workspace.free();
    }
  });

  it("QuantizedLinear fp8: scales in their own buffers, set before the heuristic; a refused algorithm is skipped at creation", async () => {
    const { device, handle } = await setup();
    const ffi = await import("../../src/ffi/index.js");
    const { QuantizedLinear } = await import("../../src/backends/cuda/kernels/quantized-linear.js");
    const lib = ffi.koffi().load(ffi.CUBLASLT.load().path);
    const refuseFirst = lib.func("void fake_cublaslt_refuse_first_algo(int on)") as (on: number) => void;
    const cuda = ffi.koffi().load(ffi.CUDA.load().path);
    const live = cuda.func("int fake_live_allocations(void)") as () => number;
    const before = live();
    const r = rng(6);
    const layer = (dtype: "float16" | "float32") => ({
      kind: "fp8" as const,
      m: 2,
      inFeatures: 16,
      outFeatures: 16,
      dtype,
      inputScale: 0.01,
      bias: Float32Array.from({ length: 16 }, () => r() - 0.5),
      weight: Uint8Array.from({ length: 256 }, () => e4m3Bits((r() - 0.5) * 400)),
      weightScale: 0.002,
    });
    const workspace = device.DeviceBuffer.alloc(1 << 20);
    refuseFirst(1);
    try {
      const half = QuantizedLinear.create(handle, layer("float16"), workspace);
      if (!half.ok) throw new Error(half.reason);
      expect([half.layer.variant, half.layer.plan.algo[1], half.layer.plan.workspaceBytes]).toEqual([
        "fp8-bias",
        1,
        4096,
      ]);
      // weight, quantized input, weight scale, input scale, fp32 bias, fp16 bias (the trial output is freed)
      expect(live() - before).toBe(1 + 6);
      half.layer.destroy();
      const single = QuantizedLinear.create(handle, layer("float32"), workspace);
      if (!single.ok) throw new Error(single.reason);
      expect([single.layer.variant, single.layer.plan.post]).toEqual(["fp8", { scale: false, bias: true }]);
      single.layer.destroy();
    } finally {
      refuseFirst(0);
      workspace.free();
    }
    expect(live()).toBe(before);
  });

  it("a problem no variant can run is refused with every variant's reason", async () => {
    const { plans, handle } = await setup();
    const ffi = await import("../../src/ffi/index.js");
    const lib = ffi.koffi().load(ffi.CUBLASLT.load().path);
    const refuseOuter = lib.func("void fake_cublaslt_refuse_outer_vec(int on)") as (on: number) => void;
    refuseOuter(1);
    let built: ReturnType<typeof plans.buildQuantLtPlan>;
    try {
      built = plans.buildQuantLtPlan(
        handle,
        { kind: "fp8", m: 2, n: 16, k: 16, out: "float16", bias: true, fp8Scales: "channel" },
        1024,
      );
    } finally {
      refuseOuter(0);
    }
    expect(built.ok).toBe(false);
    if (!built.ok) {
      expect(built.reason).toMatch(
        /^cuBLASLt refused every fp8 variant \(fp8-channel-bias: .*NOT_SUPPORTED.*; fp8-channel: .*NOT_SUPPORTED/,
      );
    }
    const misaligned = plans.buildQuantLtPlan(
      handle,
      { kind: "int8", m: 2, n: 6, k: 16, out: "float32", bias: false },
      1024,
    );
    expect(misaligned).toEqual({ ok: false, reason: "int8 GEMM: out_features 6 is not a multiple of 4" });
  });
});

// The int8 implicit-GEMM convolution (src/backends/cuda/codegen/conv-int8-igemm.ts) without a GPU: what it
// supports and why not, its configurations against sm_90's limits, and its numerics with the generated source run
// on the CPU behind the flash kernel's host shim (flash-host.ts) plus host versions of the int8 mma and rounding
// below, against a direct convolution in exact integers followed by the fp32 epilogue step by step.
import { describe, expect, it } from "vitest";
import {
  describeIgemmConfig,
  generateIgemmConvKernel,
  type IgemmConvConfig,
  type IgemmConvProblem,
  igemmCandidates,
  igemmConfigProblem,
  igemmConvSupports,
  igemmGeometry,
  igemmSharedBytes,
} from "../../../src/backends/cuda/codegen/conv-int8-igemm.js";
import { float16BitsToNumber, numberToFloat16Bits } from "../../../src/ir/half.js";
import { hasGxx } from "./emulate.js";
import { compileFlashOnHost, type HostCType } from "./flash-host.js";

/**
 * Host versions of the helpers the shim lacks. tc_mma_s8 computes what the PTX ISA gives each lane of
 * mma.m16n8k32.row.col.s32.s8.s8.s32: A (row, k) is byte k % 4 of register (row ≥ 8) + 2 (k ≥ 16) of lane
 * 4 (row % 8) + (k % 16) / 4; B (k, col) is byte k % 4 of b0 (k < 16) or b1 of lane 4 col + (k % 16) / 4.
 */
const HOST_HELPERS = `#define TC_SMALL_GEMM_SYNC
template <int N> static inline void tc_cp_wait_pending() {}
#define TC_IGEMM_HELPERS
static inline void tc_mma_s8(int (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  tc_mma_lane_calls.fetch_add(1);
  const int t = threadIdx.x, w = t & ~31, lane = t & 31;
  for (int i = 0; i < 4; ++i) tc_regs[t][i] = a[i];
  tc_regs[t][4] = b0; tc_regs[t][5] = b1;
  tc_warp_sync();
  const int g = lane >> 2, tg = lane & 3;
  int acc[4];
  for (int c = 0; c < 4; ++c) {
    const int row = g + (c >> 1) * 8, col = tg * 2 + (c & 1);
    int s = 0;
    for (int k = 0; k < 32; ++k) {
      const int av = (signed char)(tc_regs[w + (row % 8) * 4 + (k % 16) / 4][(row >= 8) + 2 * (k >= 16)] >> (8 * (k % 4)));
      const int bv = (signed char)(tc_regs[w + col * 4 + (k % 16) / 4][4 + (k >= 16)] >> (8 * (k % 4)));
      s += av * bv;
    }
    acc[c] = s;
  }
  tc_warp_sync();
  for (int c = 0; c < 4; ++c) d[c] += acc[c];
}
static inline unsigned tc_s8_bits(float v) {
  if (v != v) return 0u;
  const float r = fminf(fmaxf(nearbyintf(v), -128.0f), 127.0f);
  return (unsigned)(int)r & 0xffu;
}
static inline float tc_fmul(float a, float b) { volatile float r = a * b; return r; }
static inline float tc_fadd(float a, float b) { volatile float r = a + b; return r; }
static inline float tc_h2f_bits(unsigned b) { return tc_h2f((unsigned short)b); }
static inline int __float_as_int(float f) { int i; memcpy(&i, &f, 4); return i; }
#define TC_DYNAMIC_SMEM(name) alignas(16) static unsigned short name[116224]
`;

const BASE: Omit<IgemmConvProblem, "output" | "epilogue"> = {
  n: 2,
  h: 5,
  w: 5,
  c: 32,
  k: 48,
  r: 3,
  s: 3,
  stride: [1, 1],
  padding: [1, 1],
  dilation: [1, 1],
  bias: true,
};

const SMALL: IgemmConvConfig = { bm: 64, bn: 64, bk: 64, warpsM: 2, warpsN: 2, stages: 3 };

describe("int8 implicit-GEMM convolution: what it takes", () => {
  it("accepts ResNet-50's layers and says why it refuses others", () => {
    const p: IgemmConvProblem = { ...BASE, n: 128, h: 56, w: 56, c: 64, k: 256, output: "int8", epilogue: [] };
    expect(igemmConvSupports(p)).toBeUndefined();
    expect(igemmConvSupports({ ...p, c: 24 })).toMatch(/24 input channels.*multiple of 16/);
    expect(igemmConvSupports({ ...p, k: 12 })).toMatch(/12 output channels/);
    expect(igemmConvSupports({ ...p, r: 9, padding: [0, 0], h: 4 })).toMatch(/does not fit/);
    expect(igemmConvSupports({ ...p, stride: [0, 1] })).toMatch(/stride 0×1/);
    expect(igemmConvSupports({ ...p, epilogue: [{ kind: "tensor", op: "add" }] })).toMatch(/int8 output/);
    expect(
      igemmConvSupports({ ...p, output: "float16", epilogue: [{ kind: "tensor", op: "add" }] }),
    ).toMatch(/element type/);
    expect(igemmConvSupports({ ...p, n: 4096, h: 512, w: 512 })).toMatch(/2³¹/);
  });

  it("checks configurations against the tile rules and sm_90's shared memory", () => {
    for (const c of igemmCandidates({ ...BASE, output: "int8", epilogue: [] }))
      expect(igemmConfigProblem(c)).toBeUndefined();
    expect(igemmConfigProblem({ ...SMALL, bm: 96 })).toMatch(/bm 96/);
    expect(igemmConfigProblem({ ...SMALL, bk: 48 })).toMatch(/bk 48/);
    expect(igemmConfigProblem({ ...SMALL, warpsM: 8 })).toMatch(/does not split into 8 warps/);
    expect(igemmConfigProblem({ ...SMALL, stages: 6 })).toMatch(/stages 6/);
    expect(igemmConfigProblem({ bm: 256, bn: 256, bk: 128, warpsM: 4, warpsN: 4, stages: 5 })).toMatch(
      /bytes of shared memory/,
    );
    // the staged int32 tile can be the larger part
    const c: IgemmConvConfig = { bm: 256, bn: 256, bk: 32, warpsM: 4, warpsN: 4, stages: 2 };
    expect(igemmSharedBytes(c)).toBe(256 * (256 + 8) * 4);
  });

  it("offers no tile far wider than the layer's output channels", () => {
    const narrow = igemmCandidates({ ...BASE, k: 64, output: "int8", epilogue: [] });
    expect(narrow.length).toBeGreaterThan(0);
    expect(narrow.every((c) => c.bn <= 64)).toBe(true);
    const wide = igemmCandidates({ ...BASE, k: 512, output: "int8", epilogue: [] });
    expect(wide.some((c) => c.bn === 128)).toBe(true);
  });

  it("sizes the grid from the output map", () => {
    const p: IgemmConvProblem = {
      ...BASE,
      n: 128,
      h: 56,
      w: 56,
      c: 128,
      k: 128,
      stride: [2, 2],
      output: "int8",
      epilogue: [],
    };
    const g = igemmGeometry(p, { ...SMALL, bm: 128, bn: 64 });
    expect([g.P, g.Q, g.M, g.Kg]).toEqual([28, 28, 128 * 28 * 28, 9 * 128]);
    expect(g.ctas).toBe(Math.ceil(g.M / 128) * 2);
  });
});

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const f = Math.fround;

/** Round half to even, then saturate to int8 (cvt.rni.sat.s8.f32). */
function toInt8(v: number): number {
  const fl = Math.floor(v);
  const diff = v - fl;
  const r = diff > 0.5 ? fl + 1 : diff < 0.5 ? fl : fl % 2 === 0 ? fl : fl + 1;
  return Math.min(127, Math.max(-128, r));
}

const ACT = {
  relu: (v: number) => Math.max(v, 0),
  silu: (v: number) => v / (1 + Math.exp(-v)),
  sigmoid: (v: number) => 1 / (1 + Math.exp(-v)),
  tanh: Math.tanh,
  gelu_erf: (v: number) => v, // not used here
  gelu_tanh: (v: number) => 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v ** 3))),
};

interface Case {
  readonly name: string;
  readonly p: IgemmConvProblem;
  readonly c: IgemmConvConfig;
}

/** Runs `p` under `c` on the host; returns the kernel's outputs and the reference's, as numbers. */
function runCase({ p, c }: Case, seed: number) {
  const r = rng(seed);
  const g = igemmGeometry(p, c);
  const x = Int8Array.from({ length: p.n * p.h * p.w * p.c }, () => Math.floor(r() * 256) - 128);
  const w = Int8Array.from({ length: p.k * p.r * p.s * p.c }, () => Math.floor(r() * 256) - 128);
  // scales that put |acc · scale| around 100: the int8 outputs both round and saturate
  const typical = 64 * 64 * Math.sqrt(g.Kg) * 0.6;
  const scale = Float32Array.from({ length: p.k }, () => (0.5 + r()) * (100 / typical));
  const bias = Float32Array.from({ length: p.k }, () => (r() - 0.5) * 20);
  const fp16 = (n: number, amp: number) => Uint16Array.from({ length: n }, () => numberToFloat16Bits((r() - 0.5) * amp));
  const extra = p.epilogue.map((o) => {
    if (o.kind === "act") return undefined;
    const n = o.kind === "tensor" ? g.M * p.k : p.k;
    const t = o.kind === "tensor" ? p.tensorType! : p.channelType!;
    return t === "float16" ? fp16(n, 8) : Float32Array.from({ length: n }, () => (r() - 0.5) * 8);
  });
  const read = (a: Uint16Array | Float32Array, i: number) =>
    a instanceof Uint16Array ? float16BitsToNumber(a[i]) : a[i];
  const y =
    p.output === "int8"
      ? new Int8Array(g.M * p.k).fill(85)
      : p.output === "float16"
        ? new Uint16Array(g.M * p.k).fill(0x7fff)
        : new Float32Array(g.M * p.k).fill(Number.NaN);
  const k = generateIgemmConvKernel(`igemm_${seed}`, p, c);
  const fl = (t: "float16" | "float32"): HostCType => (t === "float16" ? "__half" : "float");
  const byName: Record<string, [ArrayBufferView, HostCType]> = {
    x: [x, "signed char"],
    w: [w, "signed char"],
    scale: [scale, "float"],
    bias: [bias, "float"],
    y: [y, p.output === "int8" ? "signed char" : fl(p.output)],
  };
  p.epilogue.forEach((o, i) => {
    if (o.kind !== "act") byName[`e${i}`] = [extra[i]!, fl(o.kind === "tensor" ? p.tensorType! : p.channelType!)];
  });
  const run = compileFlashOnHost(
    { ...k, source: HOST_HELPERS + k.source },
    k.params.map((q) => byName[q.tensor][1]),
  );
  run(k.params.map((q) => byName[q.tensor][0]));
  const got = (i: number) =>
    y instanceof Uint16Array ? float16BitsToNumber(y[i]) : (y as Int8Array | Float32Array)[i];
  const want = new Float64Array(g.M * p.k);
  for (let m = 0; m < g.M; m++) {
    const n = Math.floor(m / (g.P * g.Q));
    const op = Math.floor((m % (g.P * g.Q)) / g.Q);
    const oq = m % g.Q;
    for (let o = 0; o < p.k; o++) {
      let acc = 0;
      for (let i = 0; i < p.r; i++)
        for (let j = 0; j < p.s; j++) {
          const hh = op * p.stride[0] - p.padding[0] + i * p.dilation[0];
          const ww = oq * p.stride[1] - p.padding[1] + j * p.dilation[1];
          if (hh < 0 || hh >= p.h || ww < 0 || ww >= p.w) continue;
          for (let ch = 0; ch < p.c; ch++)
            acc += x[((n * p.h + hh) * p.w + ww) * p.c + ch] * w[((o * p.r + i) * p.s + j) * p.c + ch];
        }
      let v = f(f(acc) * scale[o]);
      if (p.bias) v = f(v + bias[o]);
      p.epilogue.forEach((e, ei) => {
        if (e.kind === "act") v = f(ACT[e.fn](v));
        else {
          const t = read(extra[ei]!, e.kind === "tensor" ? m * p.k + o : o);
          v = f(e.op === "add" ? v + t : v * t);
        }
      });
      want[m * p.k + o] =
        p.output === "int8" ? toInt8(v) : p.output === "float16" ? float16BitsToNumber(numberToFloat16Bits(v)) : v;
    }
  }
  return { got: Array.from({ length: g.M * p.k }, (_, i) => got(i)), want, mma: run.mmaWarpCalls() };
}

const CASES: readonly Case[] = [
  {
    name: "3×3 pad 1, int8 out + ReLU; ragged pixel, channel and window tiles",
    p: { ...BASE, output: "int8", epilogue: [{ kind: "act", fn: "relu" }] },
    c: SMALL,
  },
  {
    name: "1×1 stride 2 (a downsample), fp16 out, residual add then ReLU",
    p: {
      ...BASE,
      h: 7,
      w: 6,
      c: 64,
      k: 64,
      r: 1,
      s: 1,
      stride: [2, 2],
      padding: [0, 0],
      output: "float16",
      tensorType: "float16",
      epilogue: [
        { kind: "tensor", op: "add" },
        { kind: "act", fn: "relu" },
      ],
    },
    c: { bm: 128, bn: 64, bk: 64, warpsM: 4, warpsN: 2, stages: 2 },
  },
  {
    name: "3×3 dilation 2×1 stride 2×1, no bias, fp32 out, channel mul + add (fp32) then SiLU",
    p: {
      ...BASE,
      h: 9,
      w: 8,
      c: 16,
      k: 32,
      stride: [2, 1],
      padding: [2, 1],
      dilation: [2, 1],
      bias: false,
      output: "float32",
      channelType: "float32",
      epilogue: [
        { kind: "channel", op: "mul" },
        { kind: "channel", op: "add" },
        { kind: "act", fn: "silu" },
      ],
    },
    c: { bm: 64, bn: 32, bk: 128, warpsM: 2, warpsN: 2, stages: 4 },
  },
  {
    name: "1×3 window, asymmetric padding pair, int8 out without epilogue, 8 warps",
    p: { ...BASE, h: 4, w: 9, c: 48, k: 40, r: 1, s: 3, padding: [0, 1], output: "int8", epilogue: [] },
    c: { bm: 128, bn: 64, bk: 64, warpsM: 2, warpsN: 4, stages: 3 },
  },
  {
    name: "fp16 channel operands (an fp16 step's folded scale), fp16 out",
    p: {
      ...BASE,
      c: 32,
      k: 32,
      output: "float16",
      channelType: "float16",
      epilogue: [
        { kind: "channel", op: "mul" },
        { kind: "act", fn: "relu" },
      ],
    },
    c: { bm: 64, bn: 32, bk: 32, warpsM: 2, warpsN: 1, stages: 2 },
  },
];

describe.skipIf(!hasGxx())("int8 implicit-GEMM convolution numerics on the host (warp primitives emulated)", () => {
  for (const [i, t] of CASES.entries())
    it(`${t.name} (${describeIgemmConfig(t.c)})`, { timeout: 120_000 }, () => {
      const { got, want, mma } = runCase(t, 11 + i);
      const g = igemmGeometry(t.p, t.c);
      // every tile ran its window through the tensor cores: tiles × warps × m16 × n8 blocks × 32-byte steps
      const perWarp = (t.c.bm / t.c.warpsM / 16) * (t.c.bn / t.c.warpsN / 8) * g.chunks * (t.c.bk / 32);
      expect(mma).toBe(g.ctas * t.c.warpsM * t.c.warpsN * perWarp);
      let worst = 0;
      let mismatches = 0;
      let saturated = 0;
      for (let j = 0; j < want.length; j++) {
        if (t.p.output === "float32") worst = Math.max(worst, Math.abs(got[j] - want[j]) / Math.max(1, Math.abs(want[j])));
        else if (got[j] !== want[j]) mismatches++;
        if (t.p.output === "int8" && (want[j] === 127 || want[j] === -128)) saturated++;
      }
      expect(mismatches).toBe(0);
      if (t.p.output === "float32") expect(worst).toBeLessThan(1e-6);
      // the data reaches the int8 range's ends (saturation is exercised, not just rounding)
      if (t.p.output === "int8") expect(saturated).toBeGreaterThan(0);
      expect(new Set(want).size).toBeGreaterThan(20);
    });
});

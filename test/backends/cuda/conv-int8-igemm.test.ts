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
import { hasGxx } from "./emulate.js";
import { compileFlashOnHost, type HostCType } from "./flash-host.js";
import {
  BASE,
  IGEMM_CASES,
  type IgemmCase,
  igemmCaseData,
  igemmMismatch,
  outputValues,
  SMALL,
} from "./igemm-reference.js";

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

describe("int8 implicit-GEMM convolution: what it takes", () => {
  it("accepts ResNet-50's layers and says why it refuses others", () => {
    const p: IgemmConvProblem = {
      ...BASE,
      n: 128,
      h: 56,
      w: 56,
      c: 64,
      k: 256,
      output: "int8",
      epilogue: [],
    };
    expect(igemmConvSupports(p)).toBeUndefined();
    expect(igemmConvSupports({ ...p, c: 24 })).toMatch(/24 input channels.*multiple of 16/);
    expect(igemmConvSupports({ ...p, k: 12 })).toMatch(/12 output channels/);
    expect(igemmConvSupports({ ...p, r: 9, padding: [0, 0], h: 4 })).toMatch(/does not fit/);
    expect(igemmConvSupports({ ...p, stride: [0, 1] })).toMatch(/stride 0×1/);
    expect(igemmConvSupports({ ...p, epilogue: [{ kind: "tensor", op: "add" }] })).toMatch(/int8 output/);
    expect(igemmConvSupports({ ...p, output: "float16", epilogue: [{ kind: "tensor", op: "add" }] })).toMatch(
      /element type/,
    );
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

/** Runs a case's kernel on the host; its outputs, the reference's, and the warp-level mma calls made. */
function runOnHost(t: IgemmCase, seed: number) {
  const { p, c } = t;
  const data = igemmCaseData(t, seed);
  const k = generateIgemmConvKernel(`igemm_${seed}`, p, c);
  const fl = (v: ArrayBufferView): HostCType =>
    v instanceof Int8Array ? "signed char" : v instanceof Uint16Array ? "__half" : "float";
  const buffers: Record<string, ArrayBufferView> = {
    ...data.operands,
    y: data.y,
    ...(data.q ? { q: data.q } : {}),
  };
  // the copy's qinv is a float scalar after the tensors
  const scalar = data.qinv === undefined ? [] : [Float32Array.of(data.qinv)];
  const run = compileFlashOnHost({ ...k, source: HOST_HELPERS + k.source }, [
    ...k.params.map((q) => fl(buffers[q.tensor])),
    ...scalar.map((): HostCType => "float value"),
  ]);
  run([...k.params.map((q) => buffers[q.tensor]), ...scalar]);
  return {
    got: outputValues(data.y),
    want: data.want,
    mma: run.mmaWarpCalls(),
    q: data.q,
    qWant: data.qWant,
  };
}

describe.skipIf(!hasGxx())(
  "int8 implicit-GEMM convolution numerics on the host (warp primitives emulated)",
  () => {
    for (const [i, t] of IGEMM_CASES.entries())
      it(`${t.name} (${describeIgemmConfig(t.c)})`, { timeout: 120_000 }, () => {
        const { got, want, mma, q, qWant } = runOnHost(t, 11 + i);
        const g = igemmGeometry(t.p, t.c);
        // every tile ran its window through the tensor cores: tiles × warps × m16 × n8 blocks × 32-byte steps
        const perWarp = (t.c.bm / t.c.warpsM / 16) * (t.c.bn / t.c.warpsN / 8) * g.chunks * (t.c.bk / 32);
        expect(mma).toBe(g.ctas * t.c.warpsM * t.c.warpsN * perWarp);
        expect(igemmMismatch(t.p, got, want)).toBeUndefined();
        if (t.p.quantizedCopy) {
          // the int8 copy equals quantizing the stored output, value for value, and reaches both ends of the range
          expect(igemmMismatch({ ...t.p, output: "int8" }, Array.from(q!), qWant!)).toBeUndefined();
          expect(qWant!.some((v) => v === 127)).toBe(true);
        }
        // the data reaches the int8 range's ends (saturation is exercised, not just rounding)
        if (t.p.output === "int8") expect(want.some((v) => v === 127 || v === -128)).toBe(true);
        expect(new Set(want).size).toBeGreaterThan(20);
      });
  },
);

describe("int8 implicit-GEMM convolution: ring depth", () => {
  it("holds no more chunks than the window has (a 64-channel 1×1 layer is one chunk of 64 bytes)", () => {
    const oneChunk = igemmCandidates({
      ...BASE,
      c: 64,
      r: 1,
      s: 1,
      padding: [0, 0],
      k: 256,
      output: "int8",
      epilogue: [],
    });
    expect(oneChunk.every((c) => c.stages === 2)).toBe(true);
    const deep = igemmCandidates({ ...BASE, c: 256, k: 256, output: "int8", epilogue: [] });
    expect(Math.max(...deep.map((c) => c.stages))).toBe(4);
  });
});

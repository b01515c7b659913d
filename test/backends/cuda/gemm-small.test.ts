// The small-M tensor-core GEMM (src/backends/cuda/codegen/gemm-small.ts) without a GPU: what it supports and
// why not, its configurations against sm_90's limits, the chooser, and its numerics with the generated source
// run on the CPU behind the flash kernel's host shim of the warp-level primitives (flash-host.ts), against a
// float64 reference of the same fp16/bf16-rounded operands.
import { describe, expect, it } from "vitest";
import {
  chooseSmallGemmConfig,
  describeSmallGemmConfig,
  estimateSmallGemmMicros,
  generateSmallGemmKernel,
  type SmallGemmConfig,
  type SmallGemmDType,
  type SmallGemmProblem,
  smallGemmCandidates,
  smallGemmConfigProblem,
  smallGemmFitProblem,
  smallGemmGeometry,
  smallGemmSharedBytes,
  smallGemmSupports,
  smallGemmWorkspaceBytes,
} from "../../../src/backends/cuda/codegen/gemm-small.js";
import {
  bfloat16BitsToNumber,
  float16BitsToNumber,
  numberToBfloat16Bits,
  numberToFloat16Bits,
} from "../../../src/ir/half.js";
import { hasGxx } from "./emulate.js";
import { compileFlashOnHost, type HostCType } from "./flash-host.js";

/** Host versions of the split-K helpers: the shim runs a grid's blocks one after another. */
const HOST_SYNC = `#define TC_SMALL_GEMM_SYNC
template <int N> static inline void tc_cp_wait_pending() {}
static inline void tc_fence() {}
static inline unsigned tc_atomic_inc(unsigned* p) { return (*p)++; }
static inline float tc_ldcg(const float* p) { return *p; }
`;

const BASE: SmallGemmConfig = {
  dtype: "float16",
  bm: 32,
  bn: 64,
  bk: 32,
  warpsM: 2,
  warpsN: 2,
  stages: 3,
  splitK: 1,
};

/** xorshift32 on [-1, 1). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 31 - 1;
  };
}

const encode = (d: SmallGemmDType) => (d === "float16" ? numberToFloat16Bits : numberToBfloat16Bits);
const decode = (d: SmallGemmDType) => (d === "float16" ? float16BitsToNumber : bfloat16BitsToNumber);

function randomBits(n: number, d: SmallGemmDType, r: () => number, scale: number): Uint16Array {
  const enc = encode(d);
  return Uint16Array.from({ length: n }, () => enc(r() * scale));
}

const gelu = {
  none: (v: number) => v,
  gelu_tanh: (v: number) => 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v ** 3))),
  gelu_erf: (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2)),
  silu: (v: number) => v / (1 + Math.exp(-v)),
  relu: (v: number) => Math.max(v, 0),
};

/** Abramowitz–Stegun 7.1.26 is too coarse here: erf by its Taylor series (|x| small) or continued fraction. */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  let sum = 0;
  let term = ax;
  for (let n = 0; n < 200; n++) {
    sum += term / (2 * n + 1);
    term *= (-ax * ax) / (n + 1);
    if (Math.abs(term) < 1e-17) break;
  }
  return (Math.sign(x) * 2 * sum) / Math.sqrt(Math.PI);
}

interface Run {
  readonly maxErr: number;
  readonly maxRef: number;
  readonly untouched: number;
}

/** Runs `p` under `c` on the host and compares Y with float64 (rows of X `xRowStride` apart, padding ignored). */
function runCase(p: SmallGemmProblem, c: SmallGemmConfig, seed = 7): Run {
  const d = c.dtype;
  const r = rng(seed);
  const xs = p.xRowStride ?? p.K;
  const x = randomBits(p.M * xs, d, r, 1);
  const w = randomBits(p.N * p.K, d, r, 1 / Math.sqrt(p.K));
  const bias = randomBits(p.N, d, r, 0.5);
  const res = randomBits(p.M * p.N, d, r, 1);
  const y = new Uint16Array(p.M * p.N).fill(0x7fff); // NaN (fp16 and bf16): an unwritten element shows
  const ws = new Uint8Array(Math.max(4, smallGemmWorkspaceBytes(p, c)));
  const k = generateSmallGemmKernel(`sgemm_${seed}`, p, c);
  const ct: HostCType = d === "float16" ? "__half" : "__nv_bfloat16";
  const byName: Record<string, [ArrayBufferView, HostCType]> = {
    x: [x, ct],
    w: [w, ct],
    bias: [bias, ct],
    residual: [res, ct],
    y: [y, ct],
    workspace: [ws, "float"],
  };
  const run = compileFlashOnHost(
    { ...k, source: HOST_SYNC + k.source },
    k.params.map((q) => byName[q.tensor][1]),
  );
  run(k.params.map((q) => byName[q.tensor][0]));
  const f = decode(d);
  let maxErr = 0;
  let maxRef = 0;
  let untouched = 0;
  for (let i = 0; i < p.M; i++)
    for (let j = 0; j < p.N; j++) {
      let s = 0;
      for (let t = 0; t < p.K; t++) s += f(x[i * xs + t]) * f(w[j * p.K + t]);
      if (p.bias) s += f(bias[j]);
      s = gelu[p.activation](s);
      if (p.residual) s += f(res[i * p.N + j]);
      const got = f(y[i * p.N + j]);
      if (Number.isNaN(got)) untouched++;
      maxErr = Math.max(maxErr, Math.abs(got - s));
      maxRef = Math.max(maxRef, Math.abs(s));
    }
  return { maxErr, maxRef, untouched };
}

function expectClose(p: SmallGemmProblem, c: SmallGemmConfig, tol: number, seed?: number): void {
  const { maxErr, maxRef, untouched } = runCase(p, c, seed);
  expect(untouched).toBe(0);
  expect(maxErr / maxRef).toBeLessThan(tol);
}

const plain = (M: number, N: number, K: number): SmallGemmProblem => ({
  M,
  N,
  K,
  bias: false,
  activation: "none",
  residual: false,
});

describe("small GEMM: what it supports", () => {
  it("says why a problem cannot run", () => {
    expect(smallGemmSupports(plain(197, 576, 192), "float16")).toBeUndefined();
    expect(smallGemmSupports(plain(197, 576, 192), "bfloat16")).toBeUndefined();
    expect(smallGemmSupports(plain(197, 576, 192), "float32")).toMatch(/fp16 and bf16 only/);
    expect(smallGemmSupports(plain(197, 576, 100), "float16")).toMatch(/K = 100 is not a multiple of 8/);
    expect(smallGemmSupports(plain(197, 570, 192), "float16")).toMatch(/N = 570 is not a multiple of 8/);
    expect(smallGemmSupports({ ...plain(197, 64, 192), xRowStride: 100 }, "float16")).toMatch(
      /row stride 100/,
    );
    expect(smallGemmSupports({ ...plain(197, 64, 192), xRowStride: 96 }, "float16")).toMatch(
      /shorter than K/,
    );
  });

  it("says why a configuration cannot be generated", () => {
    expect(smallGemmConfigProblem(BASE)).toBeUndefined();
    expect(smallGemmConfigProblem({ ...BASE, bm: 48 })).toMatch(/bm 48/);
    expect(smallGemmConfigProblem({ ...BASE, bm: 16, warpsM: 2 })).toMatch(/does not split into 2 warps/);
    expect(smallGemmConfigProblem({ ...BASE, bk: 48 })).toMatch(/bk 48/);
    expect(smallGemmConfigProblem({ ...BASE, stages: 5 })).toMatch(/stages 5/);
    expect(smallGemmConfigProblem({ ...BASE, bm: 128, bn: 128, bk: 64, stages: 3 })).toMatch(/shared memory/);
    expect(smallGemmFitProblem(plain(197, 64, 64), { ...BASE, splitK: 3 })).toMatch(/exceeds the 2 K chunks/);
  });

  it("sizes grids, shared memory and workspaces for the DeiT and ViT shapes", () => {
    const fc2 = { ...plain(197, 192, 768), bias: true, residual: true };
    const c = { ...BASE, splitK: 4 };
    expect(smallGemmGeometry(fc2, c)).toEqual({ tilesM: 7, tilesN: 3, tiles: 21, chunks: 24, ctas: 84 });
    expect(smallGemmWorkspaceBytes(fc2, c)).toBe(21 * 4 * 32 * 64 * 4 + 21 * 4);
    expect(smallGemmWorkspaceBytes(fc2, BASE)).toBe(0);
    expect(smallGemmSharedBytes(BASE)).toBe(2 * 3 * 96 * 40);
    const k = generateSmallGemmKernel("g", fc2, c);
    expect(k.grid).toEqual([84, 1, 1]);
    expect(k.block).toEqual([128, 1, 1]);
    expect(k.params.map((q) => q.tensor)).toEqual(["x", "w", "bias", "residual", "y", "workspace"]);
    expect(k.source).toContain("griddepcontrol.wait");
    expect(describeSmallGemmConfig(c)).toBe("32x64 w2x2 k32 s3 split4 fp16");
  });

  it("chooses a configuration for every benchmarked shape, splitting K where tiles are few", () => {
    const shapes: [number, number, number][] = [
      [197, 576, 192],
      [197, 192, 192],
      [197, 768, 192],
      [197, 192, 768],
      [197, 2304, 768],
      [197, 768, 768],
      [197, 3072, 768],
      [197, 768, 3072],
      [128, 2304, 768],
      [128, 768, 3072],
    ];
    for (const [M, N, K] of shapes) {
      const p = plain(M, N, K);
      const c = chooseSmallGemmConfig(p, "float16");
      expect(smallGemmFitProblem(p, c)).toBeUndefined();
      expect(estimateSmallGemmMicros(p, c)).toBeLessThan(20);
      expect(smallGemmCandidates(p, "float16").length).toBeGreaterThan(3);
    }
    // DeiT-tiny fc2 (N = 192, K = 768): 21 tiles of 32×64 for 132 SMs, so the chooser splits K.
    expect(chooseSmallGemmConfig(plain(197, 192, 768), "float16").splitK).toBeGreaterThan(1);
  });
});

describe.skipIf(!hasGxx())("small GEMM numerics on the host (warp primitives emulated)", () => {
  // fp16 results are within about half an fp16 ulp of float64 (2–4e-4 of max |ref| measured), bf16 within
  // about half a bf16 ulp (2–3e-3): the bounds leave a few times that.
  const TOL = 2e-3;
  const BF16_TOL = 1e-2;
  it("DeiT-tiny qkv, fp16, ragged M = 197, bias", () => {
    expectClose({ ...plain(197, 576, 192), bias: true }, BASE, TOL);
  });
  it("DeiT-tiny fc1 with GELU (tanh), 64×64 tiles, 4 stages, a strided X view", () => {
    const p: SmallGemmProblem = {
      ...plain(197, 256, 192),
      xRowStride: 200,
      bias: true,
      activation: "gelu_tanh",
    };
    expectClose(p, { ...BASE, bm: 64, bn: 64, stages: 4 }, TOL);
  });
  it("GELU erf, bf16, 16×64 tiles of one warp row", () => {
    const p: SmallGemmProblem = { ...plain(197, 128, 128), bias: true, activation: "gelu_erf" };
    expectClose(p, { ...BASE, dtype: "bfloat16", bm: 16, warpsM: 1, warpsN: 4 }, BF16_TOL);
  });
  it("1×1 convolutions as GEMMs: K = 24 (one ragged chunk), SiLU; K = 16, ReLU and a residual; 144 columns", () => {
    expectClose({ ...plain(300, 144, 24), bias: true, activation: "silu" }, BASE, TOL);
    expectClose({ ...plain(257, 96, 16), bias: true, activation: "relu", residual: true }, BASE, TOL);
  });
  it("DeiT-tiny fc2: K = 768, split-K 4 with bias and residual (fp16; bf16 split 3 with N shrunk to 64)", () => {
    const p: SmallGemmProblem = { ...plain(197, 192, 768), bias: true, residual: true };
    expectClose(p, { ...BASE, splitK: 4 }, TOL);
    expectClose({ ...p, N: 64 }, { ...BASE, dtype: "bfloat16", splitK: 3 }, BF16_TOL);
  });
  it("ragged N (N = 72 in 64-column tiles), ragged K tail (K = 72 with BK 64), two stages, 32×32", () => {
    expectClose({ ...plain(197, 72, 72), bias: true }, { ...BASE, bk: 64, stages: 2 }, TOL);
    expectClose({ ...plain(45, 48, 200), residual: true }, { ...BASE, bn: 32, splitK: 2 }, TOL);
  });
  it("ViT-B and BERT shapes shrunk in N (M = 197 and 128; K = 768, split 6 and bias)", () => {
    expectClose({ ...plain(197, 64, 768), bias: true }, { ...BASE, splitK: 6 }, TOL);
    expectClose(
      { ...plain(128, 128, 768), bias: true, activation: "gelu_tanh" },
      { ...BASE, bm: 64, bn: 128 },
      TOL,
    );
  });
});

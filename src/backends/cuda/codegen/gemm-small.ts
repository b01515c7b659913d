/**
 * A tensor-core GEMM for small M (batch-1 transformers: M = 128…197 tokens, K and N 192…3072), where cuBLASLt's
 * 4–7 µs per call is launch and latency bound far above the FLOP and byte floors, and cannot ride programmatic
 * dependent launch (PDL) as generated kernels do:
 *
 *   Y[M, N] = act(X[M, K] · Wᵀ + bias) + R,   W stored [N, K] row-major as torch.nn.Linear keeps it,
 *
 * fp16 or bf16 in and out, fp32 accumulation; X row-major with any row stride (a strided view: a multiple of 8
 * elements, 16-byte aligned rows), Y and R contiguous [M, N]; act is none, GELU tanh or GELU erf (applied before
 * the residual, as timm's fc1 → GELU and x + fc2(…) do).
 *
 * Design. One CTA per BM×BN output tile (times splitK), warps tiled warpsM × warpsN over it, each warp owning a
 * (BM/warpsM)×(BN/warpsN) block of m16n8 fp32 accumulators. X and W stream through shared memory BK columns at a
 * time in a `stages`-deep cp.async ring (one barrier per chunk); A fragments come from the X tile by `ldmatrix`,
 * B fragments from the W tile by `ldmatrix` too (W's rows are Bᵀ's columns: [N, K] row-major is exactly the "col"
 * operand of mma.sync.m16n8k16.row.col), so no transposes anywhere. Rows of X past M and rows of W past N are
 * zero-filled by cp.async's src-size 0 and never stored; a ragged K tail likewise.
 *
 * Why these tiles. At M ≈ 197 a 64×64 tile gives 4 row tiles, so DeiT-tiny's N = 192 GEMMs have 12 CTAs for 132
 * SMs; per CTA the X+W bytes, (BM+BN)·K·2, dominate (its mma work is a few hundred ns), so time ≈ a launch
 * latency plus the slowest SM's bytes. Smaller tiles (32×64, 16×64, 32×32) and split-K spread those bytes over
 * more SMs at the price of re-reading X or W more often (L2 hits) and, for split-K, an fp32 partial round trip.
 * chooseSmallGemmConfig weighs that with a crude model; the bench (scripts/gpu/gemm-sweep.bench.ts) measures.
 *
 * Split-K (splitK > 1) is one kernel, no second launch: CTA (tile, s) writes its fp32 partial tile to a
 * workspace in fragment order (coalesced), fences, and bumps the tile's counter; the CTA that arrives last
 * resets the counter to 0, sums the splitK partials in split order (deterministic whichever CTA is last) and runs
 * the epilogue. The workspace (smallGemmWorkspaceBytes) must be zeroed once when allocated (the counters reset
 * themselves) and may not be shared by two GEMMs that can run at the same time.
 *
 * The fragment layouts are those of flash-attention.ts's header; the warp-level primitives are its FLASH_HELPERS
 * (the CPU host shim, test/backends/cuda/flash-host.ts, replaces them). The few helpers added here (cp.async
 * wait with a count, fence, atomic, L2 load) sit behind TC_SMALL_GEMM_SYNC so the shim can replace them too.
 */

import type { GeneratedKernel } from "./element.js";
import { PDL_PROLOGUE } from "./emitter.js";
import { FLASH_HELPERS } from "./flash-attention.js";

export type SmallGemmDType = "float16" | "bfloat16";
export type SmallGemmActivation = "none" | "gelu_tanh" | "gelu_erf" | "silu" | "relu";

/** One GEMM: shapes, X's row stride (elements) and the fused epilogue. */
export interface SmallGemmProblem {
  readonly M: number;
  readonly N: number;
  readonly K: number;
  /** Elements between rows of X (default K). */
  readonly xRowStride?: number;
  readonly bias: boolean;
  readonly activation: SmallGemmActivation;
  /** Y += R[M, N] (contiguous) after the activation. */
  readonly residual: boolean;
}

export interface SmallGemmConfig {
  readonly dtype: SmallGemmDType;
  /** CTA tile: rows of M (16, 32, 64 or 128) and columns of N (16…128, a multiple of 16). */
  readonly bm: number;
  readonly bn: number;
  /** Columns of K per shared-memory chunk: 32 or 64. */
  readonly bk: number;
  /** Warps over the tile's rows and columns; each warp's block is a multiple of 16 both ways. */
  readonly warpsM: number;
  readonly warpsN: number;
  /** cp.async ring depth, 2…4. */
  readonly stages: number;
  /** CTAs sharing one output tile's K range (1: no split). */
  readonly splitK: number;
}

/** Static shared memory a kernel may declare without the dynamic opt-in. */
const STATIC_SHARED_LIMIT = 48 * 1024;
/** SMs of an H100 SXM (the cost model's machine). */
const SMS = 132;

/** Halves per shared-memory row of a chunk: BK plus 8 (16 bytes), so ldmatrix's 8 row reads hit 8 bank quads. */
const ldsOf = (c: SmallGemmConfig) => c.bk + 8;

/** Static shared memory of a configuration: `stages` chunks of the X and W tiles. */
export function smallGemmSharedBytes(c: SmallGemmConfig): number {
  return 2 * c.stages * (c.bm + c.bn) * ldsOf(c);
}

/** Why `p` cannot run on this kernel in `dtype` (undefined when it can), in words. */
export function smallGemmSupports(p: SmallGemmProblem, dtype: string): string | undefined {
  if (dtype !== "float16" && dtype !== "bfloat16") return `${dtype} storage (fp16 and bf16 only)`;
  for (const [what, v] of [
    ["M", p.M],
    ["N", p.N],
    ["K", p.K],
  ] as const)
    if (!Number.isInteger(v) || v < 1) return `${what} = ${v} is not a positive integer`;
  if (p.K % 8 !== 0) return `K = ${p.K} is not a multiple of 8 (16-byte cp.async rows of X and W)`;
  if (p.N % 8 !== 0) return `N = ${p.N} is not a multiple of 8 (W rows zero-filled 16 bytes at a time)`;
  const xs = p.xRowStride ?? p.K;
  if (xs < p.K) return `X row stride ${xs} is shorter than K = ${p.K}`;
  if (xs % 8 !== 0) return `X row stride ${xs} is not a multiple of 8 elements (16-byte aligned rows)`;
  if (p.M * Math.max(xs, p.N) >= 2 ** 31 || p.N * p.K >= 2 ** 31)
    return "more than 2³¹ elements (int indexing)";
  return undefined;
}

/** Why `c` cannot be generated (undefined when it can). */
export function smallGemmConfigProblem(c: SmallGemmConfig): string | undefined {
  if (![16, 32, 64, 128].includes(c.bm)) return `bm ${c.bm} is not 16, 32, 64 or 128`;
  if (c.bn % 16 !== 0 || c.bn < 16 || c.bn > 128) return `bn ${c.bn} is not a multiple of 16 in 16…128`;
  if (c.bk !== 32 && c.bk !== 64) return `bk ${c.bk} is not 32 or 64`;
  if (!Number.isInteger(c.warpsM) || !Number.isInteger(c.warpsN) || c.warpsM < 1 || c.warpsN < 1)
    return `warps ${c.warpsM}×${c.warpsN} are not positive integers`;
  if (c.warpsM * c.warpsN > 8) return `${c.warpsM * c.warpsN} warps (at most 8)`;
  if (c.bm % (16 * c.warpsM) !== 0) return `bm ${c.bm} does not split into ${c.warpsM} warps of 16k rows`;
  if (c.bn % (16 * c.warpsN) !== 0) return `bn ${c.bn} does not split into ${c.warpsN} warps of 16k columns`;
  if (!Number.isInteger(c.stages) || c.stages < 2 || c.stages > 4) return `stages ${c.stages} is not in 2…4`;
  if (!Number.isInteger(c.splitK) || c.splitK < 1 || c.splitK > 16)
    return `splitK ${c.splitK} is not in 1…16`;
  const bytes = smallGemmSharedBytes(c);
  if (bytes > STATIC_SHARED_LIMIT)
    return `${bytes} bytes of shared memory (static limit ${STATIC_SHARED_LIMIT})`;
  return undefined;
}

/** Tiles of the output and K chunks of a problem under a configuration. */
export function smallGemmGeometry(p: SmallGemmProblem, c: SmallGemmConfig) {
  const tilesM = Math.ceil(p.M / c.bm);
  const tilesN = Math.ceil(p.N / c.bn);
  const chunks = Math.ceil(p.K / c.bk);
  return { tilesM, tilesN, tiles: tilesM * tilesN, chunks, ctas: tilesM * tilesN * c.splitK };
}

/** Why `c` cannot run `p` (undefined when it can): the configuration's own problems, or too many splits. */
export function smallGemmFitProblem(p: SmallGemmProblem, c: SmallGemmConfig): string | undefined {
  const own = smallGemmConfigProblem(c);
  if (own) return own;
  const { chunks } = smallGemmGeometry(p, c);
  if (c.splitK > chunks) return `splitK ${c.splitK} exceeds the ${chunks} K chunks of ${c.bk}`;
  return undefined;
}

/** Workspace bytes for split-K (0 without): fp32 partial tiles, then one counter per tile. Zero it once. */
export function smallGemmWorkspaceBytes(p: SmallGemmProblem, c: SmallGemmConfig): number {
  if (c.splitK === 1) return 0;
  const { tiles } = smallGemmGeometry(p, c);
  return tiles * c.splitK * c.bm * c.bn * 4 + tiles * 4;
}

/** A short label: "32x64 w2x2 k32 s3 split4 fp16". */
export function describeSmallGemmConfig(c: SmallGemmConfig): string {
  const split = c.splitK > 1 ? ` split${c.splitK}` : "";
  return `${c.bm}x${c.bn} w${c.warpsM}x${c.warpsN} k${c.bk} s${c.stages}${split} ${c.dtype === "float16" ? "fp16" : "bf16"}`;
}

/**
 * A crude time model (µs on an H100) used to pick a configuration; the bench checks it. A CTA's time is its X and
 * W bytes at ~40 GB/s (an SM's share of L2 bandwidth when all pull) plus its mma work at ~3 TFLOP/s (mma.sync,
 * one SM); CTAs beyond one wave (about 2 per SM for these tiles) queue; split-K adds the fp32 partial round trip
 * and a fixup on the last CTA.
 */
export function estimateSmallGemmMicros(p: SmallGemmProblem, c: SmallGemmConfig): number {
  const { ctas } = smallGemmGeometry(p, c);
  const kPerCta = Math.ceil(Math.ceil(p.K / c.bk) / c.splitK) * c.bk;
  const bytes = (c.bm + c.bn) * kPerCta * 2;
  const flops = 2 * c.bm * c.bn * kPerCta;
  const perCta = bytes / 40e3 + flops / 3e6;
  const perSm = Math.max(1, Math.min(2, Math.floor((STATIC_SHARED_LIMIT * 4) / smallGemmSharedBytes(c))));
  const waves = Math.ceil(ctas / (SMS * perSm));
  const rounds = Math.ceil(Math.min(ctas, SMS * perSm) / SMS);
  const fixup = c.splitK > 1 ? 0.6 + (c.bm * c.bn * 4 * c.splitK) / 40e3 : 0;
  return 1.5 + waves * rounds * perCta + fixup;
}

/** Tiles the chooser considers (each 4 warps, BK 32, 3 stages). */
const CANDIDATE_TILES: readonly (readonly [bm: number, bn: number, wm: number, wn: number])[] = [
  [64, 64, 2, 2],
  [32, 64, 2, 2],
  [16, 64, 1, 4],
  [32, 32, 2, 2],
  [64, 128, 2, 2],
];

/** Every candidate configuration for `p`: the tiles above, split K ways with at least 4 chunks of K per split. */
export function smallGemmCandidates(p: SmallGemmProblem, dtype: SmallGemmDType): SmallGemmConfig[] {
  const out: SmallGemmConfig[] = [];
  for (const [bm, bn, warpsM, warpsN] of CANDIDATE_TILES) {
    for (const splitK of [1, 2, 3, 4, 6, 8]) {
      const c: SmallGemmConfig = { dtype, bm, bn, bk: 32, warpsM, warpsN, stages: 3, splitK };
      if (splitK > 1 && Math.ceil(p.K / 32) < 4 * splitK) continue;
      if (smallGemmFitProblem(p, c) === undefined) out.push(c);
    }
  }
  return out;
}

/** The candidate with the least modeled time (ties: fewer splits, then bigger tiles, by candidate order). */
export function chooseSmallGemmConfig(p: SmallGemmProblem, dtype: SmallGemmDType): SmallGemmConfig {
  let best: SmallGemmConfig | undefined;
  let bestUs = Number.POSITIVE_INFINITY;
  for (const c of smallGemmCandidates(p, dtype)) {
    const us = estimateSmallGemmMicros(p, c);
    if (us < bestUs - 1e-9) {
      best = c;
      bestUs = us;
    }
  }
  if (!best) throw new Error(`small GEMM ${p.M}×${p.N}×${p.K}: no configuration fits`);
  return best;
}

/**
 * The `count` candidates with the least modeled time, best first, at most one per tile shape (a tile's best
 * split): what the engine compiles and times against cuBLASLt (small-gemm-select.ts). The model is crude, so
 * timing, not the model, makes the final choice.
 */
export function smallGemmShortlist(p: SmallGemmProblem, dtype: SmallGemmDType, count = 3): SmallGemmConfig[] {
  const best = new Map<string, { c: SmallGemmConfig; us: number }>();
  for (const c of smallGemmCandidates(p, dtype)) {
    const tile = `${c.bm}x${c.bn}`;
    const us = estimateSmallGemmMicros(p, c);
    const known = best.get(tile);
    if (!known || us < known.us - 1e-9) best.set(tile, { c, us });
  }
  return [...best.values()]
    .sort((a, b) => a.us - b.us)
    .slice(0, count)
    .map((e) => e.c);
}

/**
 * Helpers beyond FLASH_HELPERS: cp.async wait with a count, fence, atomic increment and L2 load (device versions
 * behind TC_SMALL_GEMM_SYNC, which the host shim defines first) and the GELUs (plain C++, host and device).
 */
export const SMALL_GEMM_HELPERS = `#ifndef TC_SMALL_GEMM_SYNC
#define TC_SMALL_GEMM_SYNC
template <int N> __device__ __forceinline__ void tc_cp_wait_pending() { asm volatile("cp.async.wait_group %0;" :: "n"(N) : "memory"); }
__device__ __forceinline__ void tc_fence() { __threadfence(); }
__device__ __forceinline__ unsigned tc_atomic_inc(unsigned* p) { return atomicAdd(p, 1u); }
__device__ __forceinline__ float tc_ldcg(const float* p) { return __ldcg(p); }
#endif
#ifndef TC_SMALL_GEMM_MATH
#define TC_SMALL_GEMM_MATH
__device__ __forceinline__ float tc_sg_gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
__device__ __forceinline__ float tc_sg_gelu_tanh(float x) { return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x))); }
__device__ __forceinline__ float tc_sg_silu(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float tc_sg_relu(float x) { return fmaxf(x, 0.0f); }
#endif
`;

/** What the parts of one kernel's source share. */
interface Gen {
  readonly p: SmallGemmProblem;
  readonly c: SmallGemmConfig;
  readonly lines: string[];
  readonly threads: number;
  readonly lds: number;
  /** Warp block: rows, columns; m16 blocks and n8 blocks per warp. */
  readonly wtm: number;
  readonly wtn: number;
  readonly mi: number;
  readonly ni: number;
  readonly xs: number;
  readonly geo: ReturnType<typeof smallGemmGeometry>;
  readonly ct: string;
  readonly toFloat: string;
}

/** Kernel parameters in order: logical names (x, w, bias, residual, y, workspace) a caller binds to buffers. */
export function smallGemmParams(p: SmallGemmProblem, c: SmallGemmConfig): GeneratedKernel["params"] {
  return [
    { tensor: "x", written: false },
    { tensor: "w", written: false },
    ...(p.bias ? [{ tensor: "bias", written: false }] : []),
    ...(p.residual ? [{ tensor: "residual", written: false }] : []),
    { tensor: "y", written: true },
    ...(c.splitK > 1 ? [{ tensor: "workspace", written: true }] : []),
  ];
}

/**
 * The kernel for `p` under `c`. Parameters (smallGemmParams): x, w, [bias], [residual], y, [workspace: void*,
 * smallGemmWorkspaceBytes, zeroed once]. A 1-D grid of tiles × splitK CTAs, no dynamic shared memory.
 */
export function generateSmallGemmKernel(
  name: string,
  p: SmallGemmProblem,
  c: SmallGemmConfig,
): GeneratedKernel {
  const why = smallGemmSupports(p, c.dtype) ?? smallGemmFitProblem(p, c);
  if (why) throw new Error(`small GEMM ${p.M}×${p.N}×${p.K} (${describeSmallGemmConfig(c)}): ${why}`);
  const wtm = c.bm / c.warpsM;
  const wtn = c.bn / c.warpsN;
  const g: Gen = {
    p,
    c,
    lines: [],
    threads: 32 * c.warpsM * c.warpsN,
    lds: ldsOf(c),
    wtm,
    wtn,
    mi: wtm / 16,
    ni: wtn / 8,
    xs: p.xRowStride ?? p.K,
    geo: smallGemmGeometry(p, c),
    ct: c.dtype === "float16" ? "__half" : "__nv_bfloat16",
    toFloat: c.dtype === "float16" ? "__half2float" : "__bfloat162float",
  };
  emitPrologue(g);
  emitMainLoop(g);
  if (c.splitK > 1) emitSplitFixup(g);
  emitEpilogue(g);
  const sig = signature(g);
  const source = `${FLASH_HELPERS}${SMALL_GEMM_HELPERS}extern "C" __global__ void __launch_bounds__(${g.threads}) ${name}(${sig}) {\n${PDL_PROLOGUE}\n${g.lines.join("\n")}\n}\n`;
  return {
    name,
    source,
    params: smallGemmParams(p, c),
    grid: [g.geo.ctas, 1, 1],
    block: [g.threads, 1, 1],
    sharedBytes: 0,
  };
}

function signature(g: Gen): string {
  return smallGemmParams(g.p, g.c)
    .map(({ tensor, written }) => {
      if (tensor === "workspace") return "void* __restrict__ workspace";
      return written ? `${g.ct}* __restrict__ ${tensor}` : `const ${g.ct}* __restrict__ ${tensor}`;
    })
    .join(", ");
}

/** Shared memory, this CTA's tile and split, its K chunk range, the chunk loader, zeroed accumulators. */
function emitPrologue(g: Gen): void {
  const { c, p, lds, geo } = g;
  const L = (s: string) => g.lines.push(s);
  L(`__shared__ __align__(16) unsigned short sa[${c.stages * c.bm * lds}];`);
  L(`__shared__ __align__(16) unsigned short sb[${c.stages * c.bn * lds}];`);
  L("const int tid = threadIdx.x;");
  L("const int warp = tid >> 5;");
  L("const int lane = tid & 31;");
  L("const int tg = lane & 3;");
  L("const int gq = lane >> 2;");
  L("const int blk = blockIdx.x;");
  L(`const int tile = blk % ${geo.tiles};`);
  L(c.splitK > 1 ? `const int split = blk / ${geo.tiles};` : "const int split = 0;");
  L(`const int m0 = (tile / ${geo.tilesN}) * ${c.bm};`);
  L(`const int n0 = (tile % ${geo.tilesN}) * ${c.bn};`);
  L(`const int wm = (warp / ${c.warpsN}) * ${g.wtm};`);
  L(`const int wn = (warp % ${c.warpsN}) * ${g.wtn};`);
  // Splits of ⌊chunks/S⌋ or ⌈chunks/S⌉ chunks, every split at least one.
  L(`const int kt0 = split * ${geo.chunks} / ${c.splitK};`);
  L(`const int nk = (split + 1) * ${geo.chunks} / ${c.splitK} - kt0;`);
  L("const unsigned short* xg = reinterpret_cast<const unsigned short*>(x);");
  L("const unsigned short* wg = reinterpret_cast<const unsigned short*>(w);");
  const kTail = p.K % c.bk !== 0;
  const loader = (dst: string, src: string, rows: number, r0: string, n: number, stride: number) => {
    L(`  #pragma unroll`);
    L(`  for (int q = tid; q < ${(rows * c.bk) / 8}; q += ${g.threads}) {`);
    L(`    const int r = q / ${c.bk / 8}, col = (q % ${c.bk / 8}) * 8;`);
    L(`    const int gr = ${r0} + r, kc = kt * ${c.bk} + col;`);
    // Rows past n (a ragged last tile) and columns past K (a ragged K tail) are zero-filled.
    const valid = [...(n % rows !== 0 ? [`gr < ${n}`] : []), ...(kTail ? [`kc < ${p.K}`] : [])];
    L(`    const bool ok = ${valid.length ? valid.join(" && ") : "true"};`);
    L(
      `    tc_cp_async16(tc_smem(${dst} + st * ${rows * lds} + r * ${lds} + col), ${src} + min(gr, ${n - 1}) * ${stride} + (ok ? kc : 0), ok);`,
    );
    L("  }");
  };
  L("auto load = [&](int kt, int st) {");
  loader("sa", "xg", c.bm, "m0", p.M, g.xs);
  loader("sb", "wg", c.bn, "n0", p.N, p.K);
  L("};");
  L(`float acc[${g.mi}][${g.ni}][4];`);
  L("#pragma unroll");
  L(`for (int i = 0; i < ${g.mi}; ++i)`);
  L("  #pragma unroll");
  L(`  for (int j = 0; j < ${g.ni}; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;`);
}

/**
 * The cp.async ring: stages-1 chunks in flight before the loop; each iteration waits for chunk i, one barrier
 * (every warp is done with chunk i-1, whose slot chunk i+stages-1 then refills), issues that load, and runs
 * chunk i's mma: per 16 columns of K, the warp's A fragments (ldmatrix.x4 per m16 block) against B fragments
 * (one ldmatrix.x4 per 16 columns of N: two n8 blocks, both k halves).
 */
function emitMainLoop(g: Gen): void {
  const { c } = g;
  const mma = c.dtype === "float16" ? "tc_mma_f16" : "tc_mma_bf16";
  emitMmaRing((s) => g.lines.push(s), {
    ...c,
    lds: g.lds,
    mi: g.mi,
    ni: g.ni,
    count: "nk",
    first: "kt0",
    kSteps: c.bk / 16,
    mma,
  });
}

/** What the ring needs: tile rows, ring depth, shared row length (16-bit words), warp blocks, chunk range, mma. */
export interface MmaRing {
  readonly bm: number;
  readonly bn: number;
  readonly stages: number;
  readonly lds: number;
  /** m16 and n8 blocks per warp (`wm`, `wn` name the warp's first row and column in the kernel). */
  readonly mi: number;
  readonly ni: number;
  /** Expressions: how many chunks, and the first one's index passed to `load(kt, slot)`. */
  readonly count: string;
  readonly first: string;
  /** ldmatrix steps of 16 words (32 bytes) per chunk, and the mma helper (accumulating into `acc[mi][nj]`). */
  readonly kSteps: number;
  readonly mma: string;
}

/**
 * The ring above over `sa`/`sb`, for any element width whose k-step is 16 words (fp16/bf16 m16n8k16, int8
 * m16n8k32: an m8n8.b16 matrix of 16-byte rows is both's fragment). Shared by the int8 implicit GEMM.
 */
export function emitMmaRing(L: (s: string) => void, r: MmaRing): void {
  const S = r.stages;
  L("#pragma unroll");
  L(`for (int s = 0; s < ${S - 1}; ++s) {`);
  L(`  if (s < ${r.count}) load(${r.first} + s, s);`);
  L("  tc_cp_commit();");
  L("}");
  L(`for (int i = 0; i < ${r.count}; ++i) {`);
  L(`  tc_cp_wait_pending<${S - 2}>();`);
  L("  __syncthreads();");
  L(`  if (i + ${S - 1} < ${r.count}) load(${r.first} + i + ${S - 1}, (i + ${S - 1}) % ${S});`);
  L("  tc_cp_commit();");
  L(`  const unsigned short* as = sa + (i % ${S}) * ${r.bm * r.lds};`);
  L(`  const unsigned short* bs = sb + (i % ${S}) * ${r.bn * r.lds};`);
  L("  #pragma unroll");
  L(`  for (int kk = 0; kk < ${r.kSteps}; ++kk) {`);
  L(`    unsigned af[${r.mi}][4];`);
  L("    #pragma unroll");
  L(`    for (int mi = 0; mi < ${r.mi}; ++mi)`);
  L(
    `      tc_ldsm_x4(af[mi], tc_smem(as + (wm + mi * 16 + (lane & 15)) * ${r.lds} + kk * 16 + (lane >> 4) * 8));`,
  );
  L("    #pragma unroll");
  L(`    for (int nj = 0; nj < ${r.ni / 2}; ++nj) {`);
  L("      unsigned bf[4];");
  L(
    `      tc_ldsm_x4(bf, tc_smem(bs + (wn + nj * 16 + (lane & 7) + ((lane >> 4) << 3)) * ${r.lds} + kk * 16 + ((lane >> 3) & 1) * 8));`,
  );
  L("      #pragma unroll");
  L(`      for (int mi = 0; mi < ${r.mi}; ++mi) {`);
  L(`        ${r.mma}(acc[mi][2 * nj], af[mi], bf[0], bf[1]);`);
  L(`        ${r.mma}(acc[mi][2 * nj + 1], af[mi], bf[2], bf[3]);`);
  L("      }");
  L("    }");
  L("  }");
  L("}");
  L("tc_cp_wait_pending<0>();");
}

/**
 * Split-K: the partial tile to the workspace in fragment order (element j of thread t at [j][t]: coalesced),
 * fence, one counter bump per CTA; the last CTA of the tile resets the counter and sums every split's partial
 * in split order (its own read back too, so the result does not depend on which CTA is last).
 */
function emitSplitFixup(g: Gen): void {
  const { c, geo, threads } = g;
  const per = c.bm * c.bn; // floats per partial tile: threads × accumulators per thread
  const L = (s: string) => g.lines.push(s);
  L("float* part = reinterpret_cast<float*>(workspace);");
  L(`unsigned* counters = reinterpret_cast<unsigned*>(part + ${geo.tiles * c.splitK * per});`);
  L(`float* mine = part + (tile * ${c.splitK} + split) * ${per} + tid;`);
  const each = (body: (j: string, a: string) => string) => {
    L("#pragma unroll");
    L(`for (int i = 0; i < ${g.mi}; ++i)`);
    L("  #pragma unroll");
    L(`  for (int j = 0; j < ${g.ni}; ++j)`);
    L("    #pragma unroll");
    L(`    for (int e = 0; e < 4; ++e) ${body(`((i * ${g.ni} + j) * 4 + e) * ${threads}`, "acc[i][j][e]")}`);
  };
  each((j, a) => `mine[${j}] = ${a};`);
  L("tc_fence();");
  L("__shared__ int tc_last;");
  L("__syncthreads();");
  L("if (tid == 0) {");
  L(`  tc_last = tc_atomic_inc(counters + tile) == ${c.splitK - 1};`);
  L("  if (tc_last) counters[tile] = 0;");
  L("}");
  L("__syncthreads();");
  L("if (!tc_last) return;");
  L("tc_fence();");
  L(`const float* tp = part + tile * ${c.splitK * per} + tid;`);
  each((_j, a) => `${a} = 0.0f;`);
  L(`for (int s = 0; s < ${c.splitK}; ++s) {`);
  each((j, a) => `${a} += tc_ldcg(tp + s * ${per} + ${j});`);
  L("}");
}

/** Bias, activation, residual; rows below M and columns below N stored as pairs. */
function emitEpilogue(g: Gen): void {
  const { p, c } = g;
  const pack = c.dtype === "float16" ? "tc_pack_f16" : "tc_pack_bf16";
  const L = (s: string) => g.lines.push(s);
  const act = p.activation === "none" ? undefined : `tc_sg_${p.activation}`;
  L("#pragma unroll");
  L(`for (int j = 0; j < ${g.ni}; ++j) {`);
  L("  const int col = n0 + wn + j * 8 + tg * 2;");
  L(`  if (col >= ${p.N}) continue;`);
  if (p.bias) L(`  const float b0 = ${g.toFloat}(bias[col]), b1 = ${g.toFloat}(bias[col + 1]);`);
  L("  #pragma unroll");
  L(`  for (int i = 0; i < ${g.mi}; ++i) {`);
  L("    #pragma unroll");
  L("    for (int h = 0; h < 2; ++h) {");
  L("      const int row = m0 + wm + i * 16 + gq + h * 8;");
  L(`      if (row >= ${p.M}) continue;`);
  L("      float v0 = acc[i][j][2 * h], v1 = acc[i][j][2 * h + 1];");
  if (p.bias) L("      v0 += b0; v1 += b1;");
  if (act) L(`      v0 = ${act}(v0); v1 = ${act}(v1);`);
  L(`      const int at = row * ${p.N} + col;`);
  if (p.residual) L(`      v0 += ${g.toFloat}(residual[at]); v1 += ${g.toFloat}(residual[at + 1]);`);
  L(`      *reinterpret_cast<unsigned*>(y + at) = ${pack}(v0, v1);`);
  L("    }");
  L("  }");
  L("}");
}

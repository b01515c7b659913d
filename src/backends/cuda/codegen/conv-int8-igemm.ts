/**
 * An int8 implicit-GEMM convolution on the tensor cores (issue 14), for the layers where cuDNN's four sm_90 int8
 * engines lose to its fp16 ones (bench/RESULTS.md, session 15: ResNet-50's 56×56 layers at 1.1× fp16, EfficientNet's
 * expansions at 1.5–3×):
 *
 *   y[m, k] = out(ops(f32(Σ_j x̂[m, j] · w[k, j]) · scale[k] + bias[k]))
 *
 * M = N·P·Q output pixels, j over the R·S·C window of pixel m (C fastest: NHWC int8 x and KRSC int8 w, both
 * K-contiguous, so the window row x̂[m, ·] is a gather of C-long runs and w is already the "col" operand of
 * mma.sync.m16n8k32.row.col.s32.s8.s8.s32). Exact int32 accumulation; then the epilogue of the cuDNN int8 graph
 * it replaces (device/conv-graph.ts's int8 graph, kernels/conv-cudnn.ts's bind order): the per-channel float32
 * scale, the float32 bias, the step's epilogue ops in order (per-channel add/mul, tensor add/mul, activations) and
 * the output in fp16 or fp32, or in int8 rounded half to even and saturated (the next layer's quantize).
 *
 * Design. One CTA per BM×BN tile of Y; warps tiled warpsM × warpsN over it, each owning (BM/warpsM)×(BN/warpsN)
 * of m16n8 int32 accumulators. The window rows of the tile's BM pixels and the BN weight rows stream through
 * shared memory BK bytes at a time in a `stages`-deep cp.async ring, 16 bytes (16 channels of one tap) per
 * copy: C must be a multiple of 16 so a copy never straddles two taps. Taps outside the image, pixels past M and
 * columns past R·S·C are zero-filled by cp.async's src-size 0. Fragments come by ldmatrix exactly as
 * codegen/gemm-small.ts's (an m8n8.b16 matrix is 8 rows of 16 int8: lane l gets bytes 4(l%4)…4(l%4)+3 of row
 * l/4, which is the m16n8k32 s8 fragment), so the shared tiles are declared as 16-bit words and the same
 * helpers (and the CPU shim, test/backends/cuda/flash-host.ts) serve. The epilogue goes through shared memory:
 * the int32 tile is written there in fragment order, then each thread takes 4 consecutive channels of a pixel,
 * so the residual reads and the output writes are coalesced (8 bytes per lane for fp16, 4 for int8).
 *
 * Why mma.sync and not wgmma: it is what the CPU shim can check before any GPU has run it; its int8 rate on an
 * H100 (about half of wgmma's) still doubles fp16 mma.sync's, and the layers it is for are memory-bound at batch
 * 128 (bench/NOTES.md "Session 19" has the floors and the prediction).
 */

import type { GeneratedKernel } from "./element.js";
import { PDL_PROLOGUE } from "./emitter.js";
import { FLASH_HELPERS } from "./flash-attention.js";
import { emitMmaRing, SMALL_GEMM_HELPERS } from "./gemm-small.js";

export type IgemmOutput = "float16" | "float32" | "int8";
export type IgemmActivation = "relu" | "silu" | "sigmoid" | "tanh" | "gelu_erf" | "gelu_tanh";

/** One epilogue op after scale and bias, as ConvEpilogueOp, with operands bound by position. */
export type IgemmEpilogueOp =
  | { readonly kind: "act"; readonly fn: IgemmActivation }
  /** v = v (op) t[m, k]: a tensor of y's shape in `tensorType`. */
  | { readonly kind: "tensor"; readonly op: "add" | "mul" }
  /** v = v (op) values[k]: per output channel, in `channelType`. */
  | { readonly kind: "channel"; readonly op: "add" | "mul" };

export interface IgemmConvProblem {
  readonly n: number;
  readonly h: number;
  readonly w: number;
  /** Input channels (a multiple of 16). */
  readonly c: number;
  /** Output channels (a multiple of 8). */
  readonly k: number;
  readonly r: number;
  readonly s: number;
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly output: IgemmOutput;
  readonly bias: boolean;
  readonly epilogue: readonly IgemmEpilogueOp[];
  /** The element type of tensor-op operands (y's float type; an int8-output step has none). */
  readonly tensorType?: "float16" | "float32";
  /** The element type of channel-op operands: float32 for an int8 output, else the output's (as the builder uploads). */
  readonly channelType?: "float16" | "float32";
  /**
   * A float output also written quantized, as the next layer's per-tensor int8 quantize (zero point 0, range
   * [-128, 127]) computes it from the stored value: q = clamp(rintf(f32(y) · qinv)). qinv = 1.0f / scale in
   * float32 (quantizeInverse) is the kernel's last argument, so layers that differ only in scale share a kernel.
   * The quantize step that would read y back then has nothing to do (igemm-quantize-copy.ts).
   */
  readonly quantizedCopy?: boolean;
}

export interface IgemmConvConfig {
  /** CTA tile: pixels (64, 128 or 256) and output channels (32…256, a multiple of 32). */
  readonly bm: number;
  readonly bn: number;
  /** Bytes of the window per shared-memory chunk: 32, 64 or 128. */
  readonly bk: number;
  readonly warpsM: number;
  readonly warpsN: number;
  /** cp.async ring depth, 2…5. */
  readonly stages: number;
}

/**
 * The quantized copy's qinv argument for a quantize of `scale`: 1.0f / scale in float32, what element.ts's
 * `1.0f / scale` is (a float32 division is correctly rounded, and so is a double one rounded to float32).
 * Undefined when it is not a positive finite float32.
 */
export function quantizeInverse(scale: number): number | undefined {
  const inv = Math.fround(1 / Math.fround(scale));
  return inv > 0 && Number.isFinite(inv) ? inv : undefined;
}

/** Dynamic shared memory an sm_90 CTA may opt into. */
const SHARED_LIMIT = 227 * 1024;
const I32_MAX = 2 ** 31 - 1;

/** Bytes per shared row of a chunk: BK plus 16, so ldmatrix's 8 row reads hit 8 different bank quads. */
const rowBytes = (c: IgemmConvConfig) => c.bk + 16;
/** 32-bit words per row of the staged int32 tile: BN plus 8, so a half-warp's 8-byte fragment writes do not collide. */
const stagePitch = (c: IgemmConvConfig) => c.bn + 8;

/** Output size of one spatial dimension. */
function outSize(i: number, k: number, stride: number, pad: number, dil: number): number {
  return Math.floor((i + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
}

/** Output map, GEMM sizes and tiles of a problem under a configuration. */
export function igemmGeometry(p: IgemmConvProblem, c: IgemmConvConfig) {
  const P = outSize(p.h, p.r, p.stride[0], p.padding[0], p.dilation[0]);
  const Q = outSize(p.w, p.s, p.stride[1], p.padding[1], p.dilation[1]);
  const M = p.n * P * Q;
  const Kg = p.r * p.s * p.c;
  const tilesM = Math.ceil(M / c.bm);
  const tilesN = Math.ceil(p.k / c.bn);
  return { P, Q, M, Kg, tilesM, tilesN, ctas: tilesM * tilesN, chunks: Math.ceil(Kg / c.bk) };
}

/** Dynamic shared bytes: the larger of the cp.async ring and the staged int32 output tile. */
export function igemmSharedBytes(c: IgemmConvConfig): number {
  return Math.max(c.stages * (c.bm + c.bn) * rowBytes(c), c.bm * stagePitch(c) * 4);
}

/** Why `p` cannot run on this kernel (undefined when it can), in words. */
export function igemmConvSupports(p: IgemmConvProblem): string | undefined {
  const dims = { n: p.n, h: p.h, w: p.w, c: p.c, k: p.k, r: p.r, s: p.s };
  for (const [name, v] of Object.entries(dims))
    if (!Number.isInteger(v) || v < 1 || v > I32_MAX) return `${name} = ${v} is not a positive 32-bit size`;
  for (const [name, pair, min] of [
    ["stride", p.stride, 1],
    ["padding", p.padding, 0],
    ["dilation", p.dilation, 1],
  ] as const)
    if (pair.length !== 2 || pair.some((v) => !Number.isInteger(v) || v < min || v > 1024))
      return `${name} ${pair.join("×")} is not a pair of integers ≥ ${min}`;
  if (p.c % 16 !== 0) return `${p.c} input channels (a multiple of 16: one 16-byte copy per tap)`;
  if (p.k % 8 !== 0) return `${p.k} output channels (a multiple of 8)`;
  const g = igemmGeometry(p, { bm: 64, bn: 32, bk: 32, warpsM: 1, warpsN: 1, stages: 2 });
  if (g.P < 1 || g.Q < 1) return `the ${p.r}×${p.s} window does not fit the padded ${p.h}×${p.w} input`;
  if (p.n * p.h * p.w * p.c > I32_MAX || g.M * p.k > I32_MAX || g.Kg * p.k > I32_MAX)
    return "more than 2³¹ elements in a tensor (int indexing)";
  const tensors = p.epilogue.some((o) => o.kind === "tensor");
  const channels = p.epilogue.some((o) => o.kind === "channel");
  if (tensors && p.output === "int8") return "a tensor epilogue op with an int8 output";
  if (p.quantizedCopy && p.output === "int8") return "a quantized copy of an int8 output";
  if (tensors && p.tensorType === undefined) return "a tensor epilogue op without its element type";
  if (channels && p.channelType === undefined) return "a channel epilogue op without its element type";
  return undefined;
}

/** Why `c` cannot be generated (undefined when it can). */
export function igemmConfigProblem(c: IgemmConvConfig): string | undefined {
  if (![64, 128, 256].includes(c.bm)) return `bm ${c.bm} is not 64, 128 or 256`;
  if (c.bn % 32 !== 0 || c.bn < 32 || c.bn > 256) return `bn ${c.bn} is not a multiple of 32 in 32…256`;
  if (![32, 64, 128].includes(c.bk)) return `bk ${c.bk} is not 32, 64 or 128`;
  if (!Number.isInteger(c.warpsM) || !Number.isInteger(c.warpsN) || c.warpsM < 1 || c.warpsN < 1)
    return `warps ${c.warpsM}×${c.warpsN} are not positive integers`;
  const threads = 32 * c.warpsM * c.warpsN;
  if (threads > 512) return `${threads / 32} warps (at most 16)`;
  if (c.bm % (16 * c.warpsM) !== 0) return `bm ${c.bm} does not split into ${c.warpsM} warps of 16k rows`;
  if (c.bn % (16 * c.warpsN) !== 0) return `bn ${c.bn} does not split into ${c.warpsN} warps of 16k columns`;
  const segs = c.bk / 16;
  // each thread copies the same 16-byte column of the window in every chunk: threads split rows evenly
  if (threads % segs !== 0) return `${threads} threads do not split into rows of ${segs} copies`;
  if ((c.bm * segs) % threads !== 0 || (c.bn * segs) % threads !== 0)
    return `the ${c.bm}- and ${c.bn}-row tiles do not split evenly over ${threads} threads`;
  if (!Number.isInteger(c.stages) || c.stages < 2 || c.stages > 5) return `stages ${c.stages} is not in 2…5`;
  const bytes = igemmSharedBytes(c);
  if (bytes > SHARED_LIMIT) return `${bytes} bytes of shared memory (limit ${SHARED_LIMIT})`;
  return undefined;
}

/** A short label: "128x128 w2x4 k64 s3". */
export function describeIgemmConfig(c: IgemmConvConfig): string {
  return `${c.bm}x${c.bn} w${c.warpsM}x${c.warpsN} k${c.bk} s${c.stages}`;
}

/**
 * Configurations worth timing for `p`, best guess first: 128×128 (8 warps of 64×32) for wide layers, 128×64,
 * 64×64 and 256×64 where K is narrow or the map small; 64-byte chunks in a 4-deep ring (the window is L2-resident: the
 * ring hides its latency, not HBM's).
 */
export function igemmCandidates(p: IgemmConvProblem): IgemmConvConfig[] {
  const all: IgemmConvConfig[] = [
    { bm: 128, bn: 128, bk: 64, warpsM: 2, warpsN: 4, stages: 4 },
    { bm: 128, bn: 64, bk: 64, warpsM: 4, warpsN: 2, stages: 4 },
    { bm: 256, bn: 128, bk: 64, warpsM: 4, warpsN: 4, stages: 3 },
    { bm: 64, bn: 64, bk: 64, warpsM: 2, warpsN: 2, stages: 4 },
    // 64-channel layers (ResNet's layer 1): 64×32 warp tiles as the 128×128 tile has, not 128×64's 32×32
    { bm: 256, bn: 64, bk: 64, warpsM: 4, warpsN: 2, stages: 4 },
  ];
  const kg = p.r * p.s * p.c;
  // a ring deeper than the window's chunks holds nothing (ResNet's 64-channel 1×1 layers are one chunk) and only
  // costs shared memory, so fewer CTAs share an SM
  const shallow = all.map((c) => ({ ...c, stages: Math.min(c.stages, Math.max(2, Math.ceil(kg / c.bk))) }));
  const fits = shallow.filter((c) => igemmConfigProblem(c) === undefined);
  // a tile much wider than K only multiplies zero rows of w
  return fits.filter((c) => c.bn <= Math.max(64, p.k));
}

/** Kernel parameters in order, as the cuDNN int8 plan binds them: x, w, scale, [bias], y, one per memory op. */
export function igemmParams(p: IgemmConvProblem): GeneratedKernel["params"] {
  return [
    { tensor: "x", written: false },
    { tensor: "w", written: false },
    { tensor: "scale", written: false },
    ...(p.bias ? [{ tensor: "bias", written: false }] : []),
    { tensor: "y", written: true },
    ...(p.quantizedCopy ? [{ tensor: "q", written: true }] : []),
    ...p.epilogue.flatMap((o, i) => (o.kind === "act" ? [] : [{ tensor: `e${i}`, written: false }])),
  ];
}

/**
 * Helpers beyond FLASH_HELPERS and SMALL_GEMM_HELPERS (device versions behind TC_IGEMM_HELPERS, which the CPU
 * shim defines first): the int8 mma, float → int8 rounding half to even with saturation, the dynamic shared
 * array; then 8- and 16-byte word types both compilers know (guarded apart: every kernel of a program carries
 * them).
 */
export const IGEMM_HELPERS = `#ifndef TC_IGEMM_HELPERS
#define TC_IGEMM_HELPERS
__device__ __forceinline__ void tc_mma_s8(int (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
    : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned tc_s8_bits(float v) { int r; asm("cvt.rni.sat.s8.f32 %0, %1;" : "=r"(r) : "f"(v)); return (unsigned)r & 0xffu; }
__device__ __forceinline__ float tc_fmul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float tc_fadd(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float tc_h2f_bits(unsigned b) { return __half2float(__ushort_as_half((unsigned short)b)); }
#define TC_DYNAMIC_SMEM(name) extern __shared__ __align__(16) unsigned short name[]
#endif
#ifndef TC_IGEMM_TYPES
#define TC_IGEMM_TYPES
// element.ts's int8 quantize of a float (zero point 0), bit for bit: fmaxf/fminf send NaN to -128
__device__ __forceinline__ unsigned tc_q8_bits(float v, float inv) {
  return (unsigned)(int)fminf(fmaxf(rintf(tc_fmul(v, inv)) + 0.0f, -128.0f), 127.0f) & 0xffu;
}
struct __align__(16) tc_u4 { unsigned x, y, z, w; };
struct __align__(8) tc_u2 { unsigned x, y; };
#endif
`;

/** What the parts of one kernel's source share. */
interface Gen {
  readonly p: IgemmConvProblem;
  readonly c: IgemmConvConfig;
  readonly geo: ReturnType<typeof igemmGeometry>;
  readonly lines: string[];
  readonly threads: number;
  /** Shared row length of a chunk in 16-bit words. */
  readonly lds: number;
  readonly wtm: number;
  readonly wtn: number;
  readonly mi: number;
  readonly ni: number;
}

/**
 * The kernel for `p` under `c`: a 1-D grid of tilesM × tilesN CTAs (the channel tiles of a pixel tile adjacent,
 * so they share its window rows in L2), `igemmSharedBytes(c)` bytes of dynamic shared memory.
 */
export function generateIgemmConvKernel(
  name: string,
  p: IgemmConvProblem,
  c: IgemmConvConfig,
): GeneratedKernel {
  const why = igemmConvSupports(p) ?? igemmConfigProblem(c);
  if (why) throw new Error(`int8 implicit-GEMM conv (${describeIgemmConfig(c)}): ${why}`);
  const wtm = c.bm / c.warpsM;
  const wtn = c.bn / c.warpsN;
  const g: Gen = {
    p,
    c,
    geo: igemmGeometry(p, c),
    lines: [],
    threads: 32 * c.warpsM * c.warpsN,
    lds: rowBytes(c) / 2,
    wtm,
    wtn,
    mi: wtm / 16,
    ni: wtn / 8,
  };
  emitPrologue(g);
  emitMainLoop(g);
  emitStageAccumulators(g);
  emitEpilogue(g);
  const source = `${FLASH_HELPERS}${SMALL_GEMM_HELPERS}${IGEMM_HELPERS}extern "C" __global__ void __launch_bounds__(${g.threads}) ${name}(${signature(g)}) {\n${PDL_PROLOGUE}\n${g.lines.join("\n")}\n}\n`;
  return {
    name,
    source,
    params: igemmParams(p),
    grid: [g.geo.ctas, 1, 1],
    block: [g.threads, 1, 1],
    sharedBytes: igemmSharedBytes(c),
  };
}

const FLOAT_C = { float16: "__half", float32: "float" } as const;

function signature(g: Gen): string {
  const { p } = g;
  const yType = p.output === "int8" ? "signed char" : FLOAT_C[p.output];
  return [
    "const signed char* __restrict__ x",
    "const signed char* __restrict__ w",
    "const float* __restrict__ scale",
    ...(p.bias ? ["const float* __restrict__ bias"] : []),
    `${yType}* __restrict__ y`,
    ...(p.quantizedCopy ? ["signed char* __restrict__ q"] : []),
    ...p.epilogue.flatMap((o, i) => {
      if (o.kind === "act") return [];
      const t = o.kind === "tensor" ? p.tensorType! : p.channelType!;
      return [`const ${FLOAT_C[t]}* __restrict__ e${i}`];
    }),
    // a scalar after the tensors (not in GeneratedKernel.params): igemm-conv-select.ts's igemmArgs passes it
    ...(p.quantizedCopy ? ["const float qinv"] : []),
  ].join(", ");
}

/**
 * Shared memory, the CTA's tile, each thread's copy rows (a pixel's image offset and window origin, or a weight
 * row) precomputed once, the chunk loader, zeroed accumulators.
 */
function emitPrologue(g: Gen): void {
  const { c, p, geo, lds, threads } = g;
  const L = (s: string) => g.lines.push(s);
  const segs = c.bk / 16;
  const aRows = (c.bm * segs) / threads;
  const bRows = (c.bn * segs) / threads;
  L("TC_DYNAMIC_SMEM(tc_igemm_smem);");
  L("unsigned short* sa = tc_igemm_smem;");
  L(`unsigned short* sb = tc_igemm_smem + ${c.stages * c.bm * lds};`);
  L("const int tid = threadIdx.x;");
  L("const int warp = tid >> 5;");
  L("const int lane = tid & 31;");
  L("const int tg = lane & 3;");
  L("const int gq = lane >> 2;");
  L(`const int m0 = (blockIdx.x / ${geo.tilesN}) * ${c.bm};`);
  L(`const int n0 = (blockIdx.x % ${geo.tilesN}) * ${c.bn};`);
  L(`const int wm = (warp / ${c.warpsN}) * ${g.wtm};`);
  L(`const int wn = (warp % ${c.warpsN}) * ${g.wtn};`);
  // every chunk, this thread copies column `seg` (16 bytes) of rows tid / segs + i · threads / segs
  L(`const int seg = (tid % ${segs}) * 16;`);
  L(`const int row0 = tid / ${segs};`);
  L(`int a_img[${aRows}], a_h[${aRows}], a_w[${aRows}];`);
  L("#pragma unroll");
  L(`for (int i = 0; i < ${aRows}; ++i) {`);
  L(`  const int m = m0 + row0 + i * ${threads / segs};`);
  L(`  const int n = m / ${geo.P * geo.Q}, pq = m % ${geo.P * geo.Q};`);
  // (a pixel past M has no image: 0, so n · HWC cannot overflow for the padding rows of the last tile)
  L(`  a_img[i] = m < ${geo.M} ? n * ${p.h * p.w * p.c} : 0;`);
  // a pixel past M gets a window origin no tap can reach: its copies are zero-filled
  L(`  a_h[i] = m < ${geo.M} ? (pq / ${geo.Q}) * ${p.stride[0]} - ${p.padding[0]} : ${-(1 << 30)};`);
  L(`  a_w[i] = (pq % ${geo.Q}) * ${p.stride[1]} - ${p.padding[1]};`);
  L("}");
  L(`const signed char* b_row[${bRows}];`);
  L(`bool b_ok[${bRows}];`);
  L("#pragma unroll");
  L(`for (int i = 0; i < ${bRows}; ++i) {`);
  L(`  const int n = n0 + row0 + i * ${threads / segs};`);
  L(`  b_ok[i] = n < ${p.k};`);
  L(`  b_row[i] = w + (b_ok[i] ? n : 0) * ${geo.Kg};`);
  L("}");
  const kTail = geo.Kg % c.bk !== 0;
  L("auto load = [&](int kt, int st) {");
  L(`  const int kc = kt * ${c.bk} + seg;`);
  // the tap (r, s) and channel of this thread's column; a column past the window is no tap
  L(`  const int tap = kc / ${p.c}, ch = kc - tap * ${p.c};`);
  L(`  const int dr = (tap / ${p.s}) * ${p.dilation[0]}, ds = (tap % ${p.s}) * ${p.dilation[1]};`);
  L(`  const bool kok = ${kTail ? `kc < ${geo.Kg}` : "true"};`);
  L(`  unsigned short* da = sa + st * ${c.bm * lds} + row0 * ${lds} + seg / 2;`);
  L("  #pragma unroll");
  L(`  for (int i = 0; i < ${aRows}; ++i) {`);
  L("    const int hh = a_h[i] + dr, ww = a_w[i] + ds;");
  L(`    const bool ok = kok && (unsigned)hh < ${p.h}u && (unsigned)ww < ${p.w}u;`);
  L(
    `    tc_cp_async16(tc_smem(da + i * ${(threads / segs) * lds}), x + (ok ? a_img[i] + (hh * ${p.w} + ww) * ${p.c} + ch : 0), ok);`,
  );
  L("  }");
  L(`  unsigned short* db = sb + st * ${c.bn * lds} + row0 * ${lds} + seg / 2;`);
  L("  #pragma unroll");
  L(`  for (int i = 0; i < ${bRows}; ++i)`);
  L(
    `    tc_cp_async16(tc_smem(db + i * ${(threads / segs) * lds}), b_row[i] + (kok ? kc : 0), kok && b_ok[i]);`,
  );
  L("};");
  L(`int acc[${g.mi}][${g.ni}][4];`);
  L("#pragma unroll");
  L(`for (int i = 0; i < ${g.mi}; ++i)`);
  L("  #pragma unroll");
  L(`  for (int j = 0; j < ${g.ni}; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0;`);
}

/**
 * The cp.async ring (gemm-small.ts's): stages-1 chunks in flight before the loop; each iteration waits for chunk
 * i, one barrier, refills the slot chunk i-1 used, and runs chunk i's mma 32 bytes of the window at a time.
 */
function emitMainLoop(g: Gen): void {
  const { c } = g;
  const L = (s: string) => g.lines.push(s);
  const ring = { ...c, lds: g.lds, mi: g.mi, ni: g.ni, count: `${g.geo.chunks}`, first: "0" };
  emitMmaRing(L, { ...ring, kSteps: c.bk / 32, mma: "tc_mma_s8" });
  L("__syncthreads();");
}

/** The int32 tile into shared memory (over the ring, which no copy still targets), in [pixel][channel] order. */
function emitStageAccumulators(g: Gen): void {
  const pitch = stagePitch(g.c);
  const L = (s: string) => g.lines.push(s);
  L("int* stage = reinterpret_cast<int*>(tc_igemm_smem);");
  L("#pragma unroll");
  L(`for (int i = 0; i < ${g.mi}; ++i)`);
  L("  #pragma unroll");
  L(`  for (int j = 0; j < ${g.ni}; ++j)`);
  L("    #pragma unroll");
  L("    for (int h = 0; h < 2; ++h) {");
  // one 8-byte store per pair (the pitch keeps a half-warp's 8-byte stores on distinct banks)
  L(
    `      *reinterpret_cast<tc_u2*>(stage + (wm + i * 16 + gq + h * 8) * ${pitch} + wn + j * 8 + tg * 2) = tc_u2{(unsigned)acc[i][j][2 * h], (unsigned)acc[i][j][2 * h + 1]};`,
  );
  L("    }");
  L("__syncthreads();");
}

const ACT: Readonly<Record<IgemmActivation, string>> = {
  relu: "fmaxf(v[u], 0.0f)",
  silu: "v[u] / (1.0f + expf(-v[u]))",
  sigmoid: "1.0f / (1.0f + expf(-v[u]))",
  tanh: "tanhf(v[u])",
  gelu_erf: "tc_sg_gelu_erf(v[u])",
  gelu_tanh: "tc_sg_gelu_tanh(v[u])",
};

/** Loads of 4 consecutive values of a float array at `at` into `dst[0..3]` (8 or 16 bytes). */
function load4(type: "float16" | "float32", src: string, at: string, dst: string): string[] {
  if (type === "float32") {
    return [
      `{ const tc_u4 u = *reinterpret_cast<const tc_u4*>(${src} + ${at});`,
      `  ${dst}[0] = __int_as_float((int)u.x); ${dst}[1] = __int_as_float((int)u.y); ${dst}[2] = __int_as_float((int)u.z); ${dst}[3] = __int_as_float((int)u.w); }`,
    ];
  }
  return [
    `{ const tc_u2 u = *reinterpret_cast<const tc_u2*>(${src} + ${at}); const unsigned u0 = u.x, u1 = u.y;`,
    `  ${dst}[0] = tc_h2f_bits(u0 & 0xffffu); ${dst}[1] = tc_h2f_bits(u0 >> 16); ${dst}[2] = tc_h2f_bits(u1 & 0xffffu); ${dst}[3] = tc_h2f_bits(u1 >> 16); }`,
  ];
}

/**
 * Each thread takes 4 channels of one pixel at a time (a warp covers 128 consecutive channels of a row): scale,
 * bias and the ops in order in fp32, then one 4-, 8- or 16-byte store.
 */
function emitEpilogue(g: Gen): void {
  const { p, c, geo, threads } = g;
  const pitch = stagePitch(c);
  const groups = c.bn / 4;
  const L = (s: string) => g.lines.push(s);
  L(`for (int e = tid; e < ${c.bm * groups}; e += ${threads}) {`);
  L(`  const int row = e / ${groups}, cg = (e % ${groups}) * 4;`);
  L("  const int m = m0 + row, col = n0 + cg;");
  L(`  if (m >= ${geo.M} || col >= ${p.k}) continue;`);
  L(`  const tc_u4 a = *reinterpret_cast<const tc_u4*>(stage + row * ${pitch} + cg);`);
  L("  const tc_u4 sc = *reinterpret_cast<const tc_u4*>(scale + col);");
  L("  float v[4] = {");
  L(
    "    tc_fmul((float)(int)a.x, __int_as_float((int)sc.x)), tc_fmul((float)(int)a.y, __int_as_float((int)sc.y)),",
  );
  L(
    "    tc_fmul((float)(int)a.z, __int_as_float((int)sc.z)), tc_fmul((float)(int)a.w, __int_as_float((int)sc.w))};",
  );
  L(`  const int at = m * ${p.k} + col;`);
  if (p.bias) {
    L("  {");
    L("    const tc_u4 b = *reinterpret_cast<const tc_u4*>(bias + col);");
    L(
      "    v[0] = tc_fadd(v[0], __int_as_float((int)b.x)); v[1] = tc_fadd(v[1], __int_as_float((int)b.y)); v[2] = tc_fadd(v[2], __int_as_float((int)b.z)); v[3] = tc_fadd(v[3], __int_as_float((int)b.w));",
    );
    L("  }");
  }
  p.epilogue.forEach((o, i) => {
    if (o.kind === "act") {
      L(`  #pragma unroll`);
      L(`  for (int u = 0; u < 4; ++u) v[u] = ${ACT[o.fn]};`);
      return;
    }
    const type = o.kind === "tensor" ? p.tensorType! : p.channelType!;
    L("  {");
    L("    float t[4];");
    for (const s of load4(type, `e${i}`, o.kind === "tensor" ? "at" : "col", "t")) L(`    ${s}`);
    L("    #pragma unroll");
    L(
      `    for (int u = 0; u < 4; ++u) v[u] = ${o.op === "add" ? "tc_fadd(v[u], t[u])" : "tc_fmul(v[u], t[u])"};`,
    );
    L("  }");
  });
  if (p.output === "int8")
    L(
      "  *reinterpret_cast<unsigned*>(y + at) = tc_s8_bits(v[0]) | (tc_s8_bits(v[1]) << 8) | (tc_s8_bits(v[2]) << 16) | (tc_s8_bits(v[3]) << 24);",
    );
  else if (p.output === "float16") {
    L("  const tc_u2 h = tc_u2{tc_pack_f16(v[0], v[1]), tc_pack_f16(v[2], v[3])};");
    L("  *reinterpret_cast<tc_u2*>(y + at) = h;");
    // the copy quantizes the stored (fp16-rounded) value, as a quantize kernel reading y would
    if (p.quantizedCopy) {
      L("  v[0] = tc_h2f_bits(h.x & 0xffffu); v[1] = tc_h2f_bits(h.x >> 16);");
      L("  v[2] = tc_h2f_bits(h.y & 0xffffu); v[3] = tc_h2f_bits(h.y >> 16);");
    }
  } else {
    L(
      "  *reinterpret_cast<tc_u4*>(y + at) = tc_u4{(unsigned)__float_as_int(v[0]), (unsigned)__float_as_int(v[1]), (unsigned)__float_as_int(v[2]), (unsigned)__float_as_int(v[3])};",
    );
  }
  if (p.quantizedCopy) {
    // element.ts's quantize: rintf(x · (1.0f / scale)) clamped to [-128, 127] (zero point 0; NaN → -128 as there)
    L(
      "  *reinterpret_cast<unsigned*>(q + at) = tc_q8_bits(v[0], qinv) | (tc_q8_bits(v[1], qinv) << 8) | (tc_q8_bits(v[2], qinv) << 16) | (tc_q8_bits(v[3], qinv) << 24);",
    );
  }
  L("}");
}

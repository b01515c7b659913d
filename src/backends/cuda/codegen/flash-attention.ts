/**
 * A FlashAttention-2 style kernel on tensor cores for fp16/bf16 attention layers.
 *
 * One CTA per (batch·head, tile of 16·warps query rows); each warp owns 16 query rows. K and V stream through
 * shared memory blockN keys at a time (cp.async). S = Q·Kᵀ and O = P·V are `mma.sync.m16n8k16` (fp16 or bf16
 * in, fp32 accumulate) fed by `ldmatrix`; the scores never leave registers: the m16n8 accumulators of S are,
 * pairwise, exactly the A fragments of P·V. The softmax is online in fp32 (running max and sum per row,
 * rescaling O), in base 2 with the scale folded into one FMA when no additive mask needs the scaled scores
 * first.
 *
 * Variants (FlashAttentionConfig; every shape is static at code generation, so they specialize rather than test):
 * - kvStages 1 (default): one K and one V buffer; K of the next tile loads while P·V of this one runs, V while
 *   Q·Kᵀ runs; two __syncthreads per tile. kvStages 2: K and V double-buffered, both of tile t+1 issued after
 *   tile t's softmax, a whole tile ahead of their use; one __syncthreads per tile (twice the K/V shared memory).
 * - skipPadding: the ragged last key tile is peeled off the key loop and emitted with a compile-time number of
 *   16-key chunks (ViT's 197 keys: 3 full 64-key tiles and one tile of one chunk, so 208 keys of work instead
 *   of 256), keys past S masked only there; and a warp whose 16 query rows all lie past L skips the math of
 *   every tile behind one warp-uniform branch (it still loads and synchronizes). The first version of this
 *   option branched per 16-key chunk on the runtime tile index inside the unrolled mma loops (20 branches per
 *   tile; NVRTC kept the key loop rolled, so none folded; no local memory: 123 registers, 0 stack) and measured
 *   slower on an H100; here no branch sits inside an mma sequence.
 * - warps 1…16 (16·warps query rows per CTA): more warps read K and V from L2 fewer times per head (ViT-B b64
 *   at 4 warps reads them 4 times, at 8 twice); blockN 16…128 keys per tile.
 *
 * Semantics match the row-wise kernel (codegen/attention.ts): scores scaled, causal (key > query masked,
 * top-left aligned), boolean mask (false masks) or additive mask, each broadcast over batch axes; a row with
 * every key masked gives zeros. Rows past L and keys past S in the ragged last tiles are zero-filled on load,
 * keys past S masked, rows past L not stored.
 *
 * Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"): lane = 4·g + t. A (16×16, row): a0 (g,
 * 2t..2t+1), a1 (g+8, 2t..), a2 (g, 8+2t..), a3 (g+8, 8+2t..). B (16×8, col): b0 (k 2t..2t+1, n g), b1 (k
 * 8+2t.., n g). C (16×8 fp32): c0,c1 (g, 2t..2t+1), c2,c3 (g+8, 2t..). `ldmatrix.x4` gives register i the
 * 8×8 matrix whose row addresses lanes 8i..8i+7 supply, lane holding (row g, cols 2t..2t+1); `.trans` gives
 * (rows 2t..2t+1, col g).
 *
 * The warp-level primitives are small inline functions (TC_FLASH_HELPERS) so that a host shim can stand in
 * for them in CPU tests (test/backends/cuda/flash-host.ts).
 */
import { numel } from "../../../ir/tensor.js";
import type { AttentionLayer } from "../../../network/layers/index.js";
import { addressedElements, elementStrides, type TensorInfo } from "../plan/tensors.js";
import { floatLiteral, fromStorage, storageCType, toStorage } from "./ctypes.js";
import { broadcastCoords, type CodegenContext, type GeneratedKernel } from "./element.js";
import { decompose, Emitter, indexType } from "./emitter.js";

/** Keys per K/V tile. */
export const FLASH_BLOCK_N = 64;
/** Largest head (and value) dimension: Q fragments and the O accumulator live in registers. */
export const FLASH_MAX_HEAD_DIM = 128;
/** Most warps per CTA (16 query rows each). */
export const FLASH_MAX_WARPS = 16;
/** Static shared memory a kernel may declare without the dynamic opt-in. */
const STATIC_SHARED_LIMIT = 48 * 1024;

export interface FlashAttentionConfig {
  /** Warps per CTA (1…16); each computes 16 query rows. */
  readonly warps: number;
  /** Keys per tile streamed through shared memory: a multiple of 16 up to 128. */
  readonly blockN: number;
  readonly dtype: "float16" | "bfloat16";
  /** Query/key features (E) and value features (Ev). */
  readonly headDim: number;
  readonly valueDim: number;
  /**
   * Skip the work that only padding would feed, by specialization: the ragged last key tile peeled off the loop
   * with a compile-time number of 16-key chunks, and warps whose 16 query rows all lie past L skipping the math
   * behind one warp-uniform branch per tile. ViT's 197 tokens are 256 in 64-row/64-key tiles: about a third of
   * the mma work is on padding. On by default (TORCHC_FLASH_SKIP_PADDING=0 turns it off): on an H100 (session
   * 12, flash-sweep) 1.12–1.20× faster at ViT-B/16 and DeiT-tiny shapes, batch 1 to 128. Its first, per-chunk
   * branching version had made ViT-B/16's attention slower (session 11: 1.069 → 1.234 ms at batch 64).
   */
  readonly skipPadding?: boolean;
  /** K/V buffers: 1 (default) or 2, double-buffered with one barrier per tile (TORCHC_FLASH_KV_STAGES=2). */
  readonly kvStages?: 1 | 2;
  /**
   * CTAs that must fit on one SM: `__launch_bounds__(32·warps, minBlocks)` caps the registers at 64K / (32·warps
   * ·minBlocks) (TORCHC_FLASH_MIN_BLOCKS). Unset, ptxas picks: 128 registers for today's kernel at d64 (4 CTAs of
   * 4 warps), but 134 double-buffered (3 CTAs) and 152 for 8 warps skipping padding (1 CTA of 8 warps), where a
   * cap of 128 keeps 16 warps an SM without spilling.
   */
  readonly minBlocks?: number;
}

/** Which kernel an attention layer runs, and why not the flash kernel when it doesn't. */
export type AttentionKernelChoice =
  | { readonly kernel: "flash"; readonly config: FlashAttentionConfig }
  | { readonly kernel: "rowwise"; readonly reason: string };

const LAST = (shape: readonly number[]) => shape.length - 1;

/** Whether the last (feature) axis is stored contiguously. */
function featuresContiguous(t: TensorInfo): boolean {
  return elementStrides(t)[LAST(t.shape)] === 1;
}

/** Why `c` cannot be generated (undefined when it can). */
export function flashConfigProblem(c: FlashAttentionConfig): string | undefined {
  if (!Number.isInteger(c.warps) || c.warps < 1 || c.warps > FLASH_MAX_WARPS)
    return `warps ${c.warps} is not in 1…${FLASH_MAX_WARPS}`;
  if (c.blockN % 16 !== 0 || c.blockN < 16 || c.blockN > 128)
    return `blockN ${c.blockN} is not a multiple of 16 in 16…128`;
  for (const d of [c.headDim, c.valueDim])
    if (d % 16 !== 0 || d < 16 || d > FLASH_MAX_HEAD_DIM)
      return `head dim ${d} is not a multiple of 16 in 16…${FLASH_MAX_HEAD_DIM}`;
  if (c.kvStages !== undefined && c.kvStages !== 1 && c.kvStages !== 2)
    return `kvStages ${c.kvStages} is not 1 or 2`;
  if (
    c.minBlocks !== undefined &&
    (!Number.isInteger(c.minBlocks) || c.minBlocks < 1 || c.minBlocks * c.warps > 64)
  )
    return `minBlocks ${c.minBlocks} is not in 1…${Math.floor(64 / c.warps)} for ${c.warps} warps`;
  const bytes = flashSharedBytes(c);
  if (bytes > STATIC_SHARED_LIMIT)
    return `${bytes} bytes of shared memory (static limit ${STATIC_SHARED_LIMIT})`;
  return undefined;
}

/** The variant the TORCHC_FLASH_* environment asks for, on top of `base`. */
function flashEnvConfig(base: FlashAttentionConfig, warps: number | undefined): FlashAttentionConfig {
  const env = process.env;
  const int = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined);
  const forcedWarps = int(env.TORCHC_FLASH_WARPS);
  const blockN = int(env.TORCHC_FLASH_BLOCK_N);
  const stages = env.TORCHC_FLASH_KV_STAGES === "2" ? 2 : undefined;
  const minBlocks = int(env.TORCHC_FLASH_MIN_BLOCKS);
  return {
    ...base,
    ...(warps === undefined && forcedWarps !== undefined ? { warps: forcedWarps } : {}),
    ...(blockN !== undefined ? { blockN } : {}),
    ...(env.TORCHC_FLASH_SKIP_PADDING === "1" ? { skipPadding: true } : {}),
    ...(env.TORCHC_FLASH_SKIP_PADDING === "0" ? { skipPadding: false } : {}),
    ...(stages ? { kvStages: stages } : {}),
    ...(minBlocks ? { minBlocks } : {}),
  };
}

/**
 * The flash kernel for fp16/bf16 storage, head and value dims multiples of 16 up to 128, and features stored
 * contiguously; anything else (fp32 storage above all: its tolerance is 1e-4) keeps the row-wise kernel.
 * TORCHC_FLASH_ATTENTION=0 turns the flash kernel off; for A/B timing, TORCHC_FLASH_WARPS=1…16 fixes its query
 * tile (16 rows per warp), TORCHC_FLASH_BLOCK_N=16|32|64|128 its key tile, TORCHC_FLASH_KV_STAGES=2 double-buffers
 * K and V, TORCHC_FLASH_SKIP_PADDING=0|1 turns the padding specialization off or on (on by default; session 11's
 * kernel is SKIP_PADDING=0 with BLOCK_N=64), TORCHC_FLASH_MIN_BLOCKS=n caps the registers for n CTAs an SM. A
 * variant that does not fit (shared memory above 48 KiB, say) falls back to the default, all its knobs with it.
 */
export function chooseAttentionKernel(
  layer: AttentionLayer,
  info: (tensor: string) => TensorInfo,
  opts: { readonly warps?: number } = {},
): AttentionKernelChoice {
  const rowwise = (reason: string): AttentionKernelChoice => ({ kernel: "rowwise", reason });
  if (process.env.TORCHC_FLASH_ATTENTION === "0") return rowwise("TORCHC_FLASH_ATTENTION=0");
  const [q, k, v] = layer.inputs.slice(0, 3).map(info);
  const dtype = q.storage;
  if (dtype !== "float16" && dtype !== "bfloat16") return rowwise(`${dtype} storage`);
  if (k.storage !== dtype || v.storage !== dtype)
    return rowwise(`mixed storage ${dtype}/${k.storage}/${v.storage}`);
  const E = q.shape[LAST(q.shape)];
  const Ev = v.shape[LAST(v.shape)];
  for (const [what, d] of [
    ["head dim", E],
    ["value dim", Ev],
  ] as const) {
    if (d % 16 !== 0 || d < 16 || d > FLASH_MAX_HEAD_DIM)
      return rowwise(`${what} ${d} is not a multiple of 16 in 16…${FLASH_MAX_HEAD_DIM}`);
  }
  for (const [what, t] of [
    ["query", q],
    ["key", k],
    ["value", v],
  ] as const) {
    if (!featuresContiguous(t)) return rowwise(`${what} features are not contiguous`);
  }
  const out = info(layer.output);
  const L = q.shape[q.shape.length - 2];
  const batch = numel(out.shape.slice(0, -2));
  const base = defaultFlashConfig({
    warps: opts.warps ?? chooseWarps(batch, L),
    blockN: FLASH_BLOCK_N,
    dtype,
    headDim: E,
    valueDim: Ev,
  });
  const config = flashEnvConfig(base, opts.warps);
  return { kernel: "flash", config: flashConfigProblem(config) === undefined ? config : base };
}

/**
 * Today's default on top of the 64-key tile: padding skipped, and 128-key tiles where their shared memory fits
 * (head dims up to 80 at 4 warps). H100, session 12 (flash-sweep, µs per layer): ViT-B/16 b64 78.1 → 55.8 (PyTorch's cuDNN
 * SDPA 49.8, its flash 69.3), DeiT-tiny b128 42.2 → 31.4; in the whole model (transformers bench, same run)
 * ViT-B/16 b64 5.478 → 5.208 ms, DeiT-tiny b1 0.338 → 0.306, b128 1.800 → 1.693.
 */
export function defaultFlashConfig(c: FlashAttentionConfig): FlashAttentionConfig {
  const skipping: FlashAttentionConfig = { ...c, skipPadding: true };
  const wide: FlashAttentionConfig = { ...skipping, blockN: 128 };
  return flashConfigProblem(wide) === undefined ? wide : skipping;
}

/**
 * 4 warps (64 query rows), fewer only when L has fewer 16-row tiles. Smaller CTAs for parallelism at batch 1
 * measured slower (H100, session 12, flash-sweep, padding skipped, 64-key tiles double-buffered: ViT-B/16 b1
 * 6.92 µs at 4 warps against 7.32 at 2; DeiT-tiny b1 7.14 at 4 against 7.24 at 2 and 8.04 at 1): the warps of a
 * CTA share its K/V tiles. Not measured with the default's single-buffered 128-key tiles.
 */
export function chooseWarps(_batch: number, L: number): 1 | 2 | 3 | 4 {
  return Math.max(1, Math.min(4, Math.ceil(L / 16))) as 1 | 2 | 3 | 4;
}

export function describeAttentionChoice(c: AttentionKernelChoice): string {
  if (c.kernel === "rowwise") return `rowwise: ${c.reason}`;
  const f = c.config;
  const dims = f.headDim === f.valueDim ? `d${f.headDim}` : `d${f.headDim}/${f.valueDim}`;
  const extras = `${f.skipPadding ? " skip-padding" : ""}${f.kvStages === 2 ? " 2-stage" : ""}${f.minBlocks ? ` ${f.minBlocks}/SM` : ""}`;
  return `flash ${f.dtype === "float16" ? "fp16" : "bf16"} ${dims} ${16 * f.warps}×${f.blockN}${extras}`;
}

/** Halves of one K+V stage of the double-buffered variant, and where its Q tile lives (stage 1, or after both). */
function stageLayout(c: FlashAttentionConfig): { stage: number; qAt: number; total: number } {
  const stage = c.blockN * (c.headDim + 8 + c.valueDim + 8);
  const q = 16 * c.warps * (c.headDim + 8);
  return q <= stage
    ? { stage, qAt: stage, total: 2 * stage }
    : { stage, qAt: 2 * stage, total: 2 * stage + q };
}

/**
 * Static shared memory of a flash kernel: one stage holds the K tile and the V tile (which first holds the Q
 * tile); two stages hold two of each, the Q tile first in the second.
 */
export function flashSharedBytes(c: FlashAttentionConfig): number {
  if (c.kvStages === 2) return 2 * stageLayout(c).total;
  const bm = 16 * c.warps;
  return 2 * (c.blockN * (c.headDim + 8) + Math.max(c.blockN * (c.valueDim + 8), bm * (c.headDim + 8)));
}

/**
 * Device versions of the warp-level primitives. The host shim of the CPU tests defines TC_FLASH_HELPERS and
 * its own versions first.
 */
export const FLASH_HELPERS = `#ifndef TC_FLASH_HELPERS
#define TC_FLASH_HELPERS
__device__ __forceinline__ unsigned tc_smem(const void* p) {
  unsigned r; asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p)); return r;
}
__device__ __forceinline__ void tc_cp_async16(unsigned dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" :: "r"(dst), "l"(src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void tc_cp_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void tc_cp_wait_all() { asm volatile("cp.async.wait_group 0;" ::: "memory"); }
__device__ __forceinline__ void tc_ldsm_x4(unsigned (&r)[4], unsigned a) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
    : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ __forceinline__ void tc_ldsm_x4_t(unsigned (&r)[4], unsigned a) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
    : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ __forceinline__ void tc_mma_f16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
    : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void tc_mma_bf16(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
    : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ unsigned tc_pack_f16(float lo, float hi) {
  unsigned r; asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r;
}
__device__ __forceinline__ unsigned tc_pack_bf16(float lo, float hi) {
  unsigned r; asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r;
}
__device__ __forceinline__ float tc_ex2(float x) { float r; asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x)); return r; }
__device__ __forceinline__ float tc_quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1)); return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float tc_quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1); return v + __shfl_xor_sync(0xffffffffu, v, 2);
}
#endif
`;

/** What the parts of one kernel's source share. */
interface Gen {
  readonly e: Emitter;
  readonly layer: AttentionLayer;
  readonly ctx: CodegenContext;
  readonly cfg: FlashAttentionConfig;
  readonly L: number;
  readonly S: number;
  readonly E: number;
  readonly Ev: number;
  /** Query rows per CTA, keys per tile, threads per CTA, key tiles. */
  readonly BM: number;
  readonly BN: number;
  readonly threads: number;
  readonly NT: number;
  /** Leading dimensions (halves) of the Q, K and V tiles in shared memory: rows padded by 16 bytes. */
  readonly LDQ: number;
  readonly LDK: number;
  readonly LDV: number;
  readonly mma: string;
  readonly pack: string;
  /**
   * Scores are kept in "units": raw q·k when nothing needs the scaled value (the scale then rides in the
   * exponent's FMA), else scale·q·k + mask. `toLog2` converts units to log2 units.
   */
  readonly raw: boolean;
  readonly toLog2: string;
  /** Double-buffered K/V (kvStages 2). */
  readonly staged: boolean;
  /** Whether some warp of some CTA has all its rows past L and skips the math (skipPadding). */
  readonly gated: boolean;
}

/** One key tile as the tile emitters see it. */
interface Tile {
  /** Expressions of its first key and of its index. */
  readonly k0: string;
  readonly t: string;
  /** 16-key chunks of work (blockN / 16 but in a peeled ragged last tile). */
  readonly chunks: number;
  /** When keys past S must be masked: a runtime condition, "always", or never (undefined). */
  readonly tail: string | undefined;
  /** Shared-memory bases of its K and V tiles. */
  readonly ks: string;
  readonly vs: string;
  /** Whether a tile follows (a runtime condition, or false), and its stage's base (double-buffered). */
  readonly next: string | false;
  readonly nextStage?: string;
  /**
   * Peeled loops: tiles before `full` are whole tiles within S, loaded without clamping rows; the tile at `full`
   * (when `lastRows` is set) is the ragged one, `lastRows` rows clamped and zero-filled past S.
   */
  readonly split?: { readonly full: number; readonly lastRows?: number };
}

export function generateFlashAttentionKernel(
  name: string,
  layer: AttentionLayer,
  ctx: CodegenContext,
  cfg: FlashAttentionConfig,
): GeneratedKernel {
  const [q, k, v, mask] = layer.inputs;
  const qi = ctx.info(q);
  const [L, E] = qi.shape.slice(-2);
  const S = ctx.info(k).shape.at(-2)!;
  const Ev = ctx.info(v).shape.at(-1)!;
  if (E !== cfg.headDim || Ev !== cfg.valueDim || qi.storage !== cfg.dtype)
    throw new Error(`flash attention '${layer.name}': the configuration does not fit the layer`);
  const problem = flashConfigProblem(cfg);
  if (problem) throw new Error(`flash attention '${layer.name}': ${problem}`);
  const idx = indexType(
    // a strided q/k/v view addresses its root beyond its own numel
    [q, k, v, layer.output, ...(mask ? [mask] : [])].map((t) => addressedElements(ctx.info(t)) * 4),
  );
  const additive = mask !== undefined && ctx.info(mask).logicalDType !== "bool";
  const raw = !additive && layer.scale > 0;
  const BM = 16 * cfg.warps;
  const lastRows = L - (Math.ceil(L / BM) - 1) * BM;
  const g: Gen = {
    e: new Emitter(ctx.info, idx),
    layer,
    ctx,
    cfg,
    L,
    S,
    E,
    Ev,
    BM,
    BN: cfg.blockN,
    threads: 32 * cfg.warps,
    NT: Math.ceil(S / cfg.blockN),
    LDQ: E + 8,
    LDK: E + 8,
    LDV: Ev + 8,
    mma: cfg.dtype === "float16" ? "tc_mma_f16" : "tc_mma_bf16",
    pack: cfg.dtype === "float16" ? "tc_pack_f16" : "tc_pack_bf16",
    raw,
    toLog2: floatLiteral(raw ? layer.scale * Math.LOG2E : Math.LOG2E),
    staged: cfg.kvStages === 2,
    gated: cfg.skipPadding === true && Math.ceil(lastRows / 16) < cfg.warps,
  };
  const { bc, kg, vg } = emitPrologue(g);
  if (cfg.skipPadding) emitPeeledKeyLoop(g, kg, vg, bc);
  else emitKeyLoop(g, kg, vg, bc);
  emitEpilogue(g.e, layer, ctx, { bc, L, Ev, pack: g.pack });
  const e = g.e;
  const source = `${FLASH_HELPERS}extern "C" __global__ void __launch_bounds__(${g.threads}${cfg.minBlocks ? `, ${cfg.minBlocks}` : ""}) ${name}(${e.signature()}) {\n${e.body()}\n}\n`;
  return {
    name,
    source,
    params: e.params,
    grid: [Math.max(1, numel(ctx.info(layer.output).shape.slice(0, -2)) * Math.ceil(L / g.BM)), 1, 1],
    block: [g.threads, 1, 1],
    sharedBytes: 0,
  };
}

/** Shared-memory bases of stage `s` (an expression) of the double-buffered variant. */
function stageBases(g: Gen, s: string): { ks: string; vs: string } {
  const { stage } = stageLayout(g.cfg);
  const at = s === "0" ? "sm" : `sm + ${s} * ${stage}`;
  return { ks: at, vs: `${at} + ${g.BN * g.LDK}` };
}

/** Every key tile in one loop, keys past S masked in the last (today's kernel). */
function emitKeyLoop(g: Gen, kg: Operand, vg: Operand, bc: string[]): void {
  const e = g.e;
  e.line("for (int t = 0; t < nt; ++t) {");
  e.line(`  const int k0 = t * ${g.BN};`);
  const tail = g.S % g.BN !== 0 ? "t == nt - 1" : undefined;
  const bases = g.staged ? stageBases(g, "(t & 1)") : { ks: "ks", vs: "vs" };
  emitTile(g, kg, vg, bc, {
    k0: "k0",
    t: "t",
    chunks: g.BN / 16,
    tail,
    ...bases,
    next: "t + 1 < nt",
    nextStage: "((t + 1) & 1)",
  });
  e.line("}");
}

/**
 * Full key tiles in a loop without any tail masking, then (when S is not a multiple of blockN) the ragged last
 * tile with a compile-time number of 16-key chunks, keys past S masked only there.
 */
function emitPeeledKeyLoop(g: Gen, kg: Operand, vg: Operand, bc: string[]): void {
  const { e, S, BN, NT } = g;
  const ragged = S % BN !== 0;
  const full = ragged ? NT - 1 : NT;
  const lastChunks = ragged ? Math.ceil((S - full * BN) / 16) : BN / 16;
  if (full > 0) {
    e.line(`for (int t = 0; t < ${g.layer.causal ? `min(nt, ${full})` : full}; ++t) {`);
    e.line(`  const int k0 = t * ${BN};`);
    const bases = g.staged ? stageBases(g, "(t & 1)") : { ks: "ks", vs: "vs" };
    const tile = { k0: "k0", t: "t", chunks: BN / 16, tail: undefined, ...bases };
    const split = { full, ...(ragged ? { lastRows: lastChunks * 16 } : {}) };
    emitTile(g, kg, vg, bc, { ...tile, next: "t + 1 < nt", nextStage: "((t + 1) & 1)", split });
    e.line("}");
  }
  if (!ragged) return;
  // Causal: the last tile only where this CTA's rows reach it.
  e.line(g.layer.causal ? `if (nt == ${NT}) {` : "{");
  const bases = g.staged ? stageBases(g, `${full & 1}`) : { ks: "ks", vs: "vs" };
  const k0 = `${full * BN}`;
  emitTile(g, kg, vg, bc, { k0, t: `${full}`, chunks: lastChunks, tail: "always", ...bases, next: false });
  e.line("}");
}

/**
 * One key tile: S = Q·Kᵀ, the fixups and the online softmax, then the loads of tile t+1, then O += P·V. One stage:
 * V_t loads meanwhile Q·Kᵀ, K_{t+1} (after a barrier: K_t is read) meanwhile P·V. Two stages: K and V of t+1 into
 * the other stage, issued after the softmax (issued before Q·Kᵀ they kept ~8 more registers live: 134–136 at
 * ViT's d64, 3 CTAs an SM instead of 4) yet a whole tile ahead of their use, and one barrier per tile.
 */
function emitTile(g: Gen, kg: Operand, vg: Operand, bc: string[], tile: Tile): void {
  const e = g.e;
  if (!g.staged) {
    loadTile(g, tile.vs, vg, tile.k0, tile.chunks * 16, g.Ev, g.S, g.LDV);
    e.line("  tc_cp_commit();");
  }
  if (g.gated) {
    e.line(`  float s[${tile.chunks * 2}][4];`);
    e.line(`  unsigned pf[${tile.chunks}][4];`);
    e.line("  if (active) {");
  }
  emitQK(g, tile);
  emitScoreFixups(g, bc, tile);
  emitOnlineSoftmax(g, tile);
  if (g.gated) e.line("  }");
  if (!g.staged) {
    // V_t has landed and every warp is done with K_t: K_{t+1} may overwrite it.
    e.line("  tc_cp_wait_all();");
    e.line("  __syncthreads();");
  }
  // Two stages: every warp finished reading the other stage (tile t-1) before the last barrier.
  if (tile.next) emitNextLoads(g, tile, g.staged ? [kg, vg] : [kg]);
  if (g.gated) e.line("  if (active) {");
  emitPV(g, tile);
  if (g.gated) e.line("  }");
  // One stage: K_{t+1} visible to all, every warp done reading V_t before the next V load. Two: tile t+1
  // visible, every warp done with tile t's stage before t+2 overwrites it.
  if (tile.next !== false) {
    e.line("  tc_cp_wait_all();");
    e.line("  __syncthreads();");
  }
}

/**
 * The loads of tile t+1: K (and V when double-buffered, into the other stage). In a peeled loop, whole tiles
 * unclamped and the ragged last one with its static row count; else whole tiles, rows clamped past S.
 */
function emitNextLoads(g: Gen, tile: Tile, ops: readonly Operand[]): void {
  const e = g.e;
  const dst = g.staged ? stageBases(g, tile.nextStage!) : { ks: tile.ks, vs: tile.vs };
  const r0 = `(${tile.k0} + ${g.BN})`;
  const load = (rows: number, inBounds: boolean) => {
    loadTile(g, dst.ks, ops[0], r0, rows, g.E, g.S, g.LDK, inBounds);
    if (ops[1]) loadTile(g, dst.vs, ops[1], r0, rows, g.Ev, g.S, g.LDV, inBounds);
    e.line("    tc_cp_commit();");
  };
  const split = tile.split;
  if (!split) {
    e.line(`  if (${tile.next}) {`);
    load(g.BN, false);
    e.line("  }");
    return;
  }
  e.line(`  if (${tile.t} + 1 < ${split.full}) {`);
  load(g.BN, true);
  if (split.lastRows !== undefined) {
    e.line(`  } else if (${tile.next}) {`);
    load(split.lastRows, false);
  }
  e.line("  }");
}

interface Operand {
  /** Pointer expression (as `const unsigned short*`) to this CTA's batch slice. */
  readonly base: string;
  /** Element stride between rows (the L or S axis). */
  readonly rowStride: number;
}

/** Element strides of the last two axes (0 where the axis is broadcast or absent), right-aligned. */
function rowColStrides(t: TensorInfo): [number, number] {
  const s = elementStrides(t);
  const r = t.shape.length;
  const at = (a: number) => (a < 0 || t.shape[a] === 1 ? 0 : s[a]);
  return [at(r - 2), at(r - 1)];
}

/** Rows [r0, r0 + rows) of an [n × d] operand into shared memory at `dst` (leading dimension ld), zero past n. */
function loadTile(
  g: Gen,
  dst: string,
  src: Operand,
  r0: string,
  rows: number,
  d: number,
  n: number,
  ld: number,
  inBounds = false,
) {
  const e = g.e;
  const chunks = d / 8;
  e.line("#pragma unroll");
  e.line(`for (int c = tid; c < ${rows * chunks}; c += ${g.threads}) {`);
  e.line(`  const int r = c / ${chunks}, col = (c % ${chunks}) * 8;`);
  e.line(`  const int gr = ${r0} + r;`);
  const to = /^\w+$/.test(dst) ? dst : `(${dst})`;
  // Rows known to lie below n: one base address and immediate offsets, no clamp, no predicate.
  const row = inBounds ? "gr" : `min(gr, ${n - 1})`;
  e.line(
    `  tc_cp_async16(tc_smem(${to} + r * ${ld} + col), ${src.base} + (${e.idx})${row} * ${src.rowStride} + col, ${inBounds ? "true" : `gr < ${n}`});`,
  );
  e.line("}");
}

/** Shared memory: one K and one V tile (Q through V), or two stages of both (Q through the second). */
function emitSharedArrays(g: Gen): { q: string; k0: string; v0: string } {
  const e = g.e;
  if (g.staged) {
    const { qAt, total } = stageLayout(g.cfg);
    e.line(`__shared__ __align__(16) unsigned short sm[${total}];`);
    return { q: `sm + ${qAt}`, ...(({ ks, vs }) => ({ k0: ks, v0: vs }))(stageBases(g, "0")) };
  }
  e.line(`__shared__ __align__(16) unsigned short ks[${g.BN * g.LDK}];`);
  e.line(`__shared__ __align__(16) unsigned short vs[${Math.max(g.BN * g.LDV, g.BM * g.LDQ)}];`);
  return { q: "vs", k0: "ks", v0: "vs" };
}

/**
 * Shared memory, this CTA's batch and query tile, pointers to its q/k/v slices; Q and K_0 (and V_0 when
 * double-buffered) loaded, Q into registers as A fragments; O, row max and row sum zeroed; `nt` key tiles to visit.
 */
function emitPrologue(g: Gen): { bc: string[]; kg: Operand; vg: Operand } {
  const { e, layer, ctx, BM, BN, L, E } = g;
  const [q, k, v] = layer.inputs;
  const MT = Math.ceil(L / BM);
  const batch = ctx.info(layer.output).shape.slice(0, -2);
  const smem = emitSharedArrays(g);
  e.line("const int tid = threadIdx.x;");
  e.line("const int warp = tid >> 5;");
  e.line("const int lane = tid & 31;");
  e.line("const int tg = lane & 3;");
  e.line(`const ${e.idx} blk = blockIdx.x;`);
  // Causal: the heaviest query tiles (most keys) first.
  e.line(`const int mt = ${layer.causal ? `${MT - 1} - ` : ""}(int)(blk % ${MT});`);
  e.line(`const ${e.idx} b = blk / ${MT};`);
  const bc = decompose(
    e,
    "b",
    batch,
    batch.map((_, a) => a),
  );
  const operand = (t: string): Operand => {
    const info = ctx.info(t);
    const off = e.offset(t, [...broadcastCoords(bc, info.shape.slice(0, -2)), "0", "0"]);
    const base = e.fresh("g");
    const p = `reinterpret_cast<const unsigned short*>(${e.param(t)})`;
    e.line(`const unsigned short* ${base} = ${p}${off === "0" ? "" : ` + (${off})`};`);
    return { base, rowStride: rowColStrides(info)[0] };
  };
  const [qg, kg, vg] = [operand(q), operand(k), operand(v)];
  e.line(`const int q0 = mt * ${BM};`);
  e.line("const int rowBase = q0 + warp * 16 + (lane >> 2);");
  // Warp-uniform: a warp whose rows are all past L does no math (it still loads and synchronizes).
  if (g.gated) e.line(`const bool active = q0 + warp * 16 < ${L};`);
  loadTile(g, smem.q, qg, "q0", BM, E, L, g.LDQ);
  loadTile(g, smem.k0, kg, "0", BN, E, g.S, g.LDK);
  if (g.staged) loadTile(g, smem.v0, vg, "0", BN, g.Ev, g.S, g.LDV);
  e.line("tc_cp_commit();");
  e.line("tc_cp_wait_all();");
  e.line("__syncthreads();");
  e.line(`unsigned qf[${E / 16}][4];`);
  e.line("#pragma unroll");
  e.line(
    `for (int kk = 0; kk < ${E / 16}; ++kk) tc_ldsm_x4(qf[kk], tc_smem(${smem.q} + (warp * 16 + (lane & 15)) * ${g.LDQ} + kk * 16 + (lane >> 4) * 8));`,
  );
  e.line("__syncthreads();");
  e.line(`float o[${g.Ev / 8}][4];`);
  e.line("#pragma unroll");
  e.line(`for (int n = 0; n < ${g.Ev / 8}; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;`);
  e.line("float m0 = -TC_INF, m1 = -TC_INF, l0 = 0.0f, l1 = 0.0f;");
  // Causal: key tiles past the last query row of this CTA are fully masked.
  if (layer.causal) e.line(`const int nt = min(${g.NT}, (min(q0 + ${BM}, ${L}) - 1) / ${BN} + 1);`);
  else e.line(`const int nt = ${g.NT};`);
  return { bc, kg, vg };
}

/** S = Q·K_tᵀ: two m16n8 accumulators per 16 keys, K fragments by ldmatrix. */
function emitQK(g: Gen, tile: Tile): void {
  const e = g.e;
  const n = tile.chunks;
  const ks = /^\w+$/.test(tile.ks) ? tile.ks : `(${tile.ks})`;
  if (!g.gated) e.line(`  float s[${2 * n}][4];`);
  e.line("  #pragma unroll");
  e.line(`  for (int j = 0; j < ${2 * n}; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;`);
  e.line("  #pragma unroll");
  e.line(`  for (int kk = 0; kk < ${g.E / 16}; ++kk) {`);
  e.line("    #pragma unroll");
  e.line(`    for (int nn = 0; nn < ${n}; ++nn) {`);
  e.line("      unsigned bk[4];");
  e.line(
    `      tc_ldsm_x4(bk, tc_smem(${ks} + (nn * 16 + (lane & 7) + ((lane >> 4) << 3)) * ${g.LDK} + kk * 16 + ((lane >> 3) & 1) * 8));`,
  );
  e.line(`      ${g.mma}(s[2 * nn], qf[kk], bk[0], bk[1]);`);
  e.line(`      ${g.mma}(s[2 * nn + 1], qf[kk], bk[2], bk[3]);`);
  e.line("    }");
  e.line("  }");
}

/**
 * The online softmax over this tile: rows rowBase (c0, c1) and rowBase + 8 (c2, c3), each spread over a lane
 * quad. New row max, O and the row sum rescaled, scores → probabilities → P as A fragments (accumulators 2kk
 * and 2kk+1 cover keys 16kk…16kk+15).
 */
function emitOnlineSoftmax(g: Gen, tile: Tile): void {
  const { e, toLog2: K } = g;
  const n = tile.chunks;
  e.line("  float x0 = -TC_INF, x1 = -TC_INF;");
  e.line("  #pragma unroll");
  e.line(`  for (int j = 0; j < ${2 * n}; ++j) {`);
  e.line("    x0 = fmaxf(x0, fmaxf(s[j][0], s[j][1]));");
  e.line("    x1 = fmaxf(x1, fmaxf(s[j][2], s[j][3]));");
  e.line("  }");
  e.line("  x0 = fmaxf(m0, tc_quad_max(x0));");
  e.line("  x1 = fmaxf(m1, tc_quad_max(x1));");
  // A row with nothing unmasked yet keeps max -inf: exponents then use 0, so every p and alpha is 0.
  e.line(`  const float u0 = x0 == -TC_INF ? 0.0f : x0 * ${K};`);
  e.line(`  const float u1 = x1 == -TC_INF ? 0.0f : x1 * ${K};`);
  e.line(`  const float a0 = tc_ex2(fmaf(m0, ${K}, -u0));`);
  e.line(`  const float a1 = tc_ex2(fmaf(m1, ${K}, -u1));`);
  e.line("  m0 = x0;");
  e.line("  m1 = x1;");
  e.line("  float ps0 = 0.0f, ps1 = 0.0f;");
  e.line("  #pragma unroll");
  e.line(`  for (int j = 0; j < ${2 * n}; ++j) {`);
  e.line(`    s[j][0] = tc_ex2(fmaf(s[j][0], ${K}, -u0));`);
  e.line(`    s[j][1] = tc_ex2(fmaf(s[j][1], ${K}, -u0));`);
  e.line(`    s[j][2] = tc_ex2(fmaf(s[j][2], ${K}, -u1));`);
  e.line(`    s[j][3] = tc_ex2(fmaf(s[j][3], ${K}, -u1));`);
  e.line("    ps0 += s[j][0] + s[j][1];");
  e.line("    ps1 += s[j][2] + s[j][3];");
  e.line("  }");
  e.line("  l0 = l0 * a0 + ps0;");
  e.line("  l1 = l1 * a1 + ps1;");
  e.line("  #pragma unroll");
  e.line(
    `  for (int n = 0; n < ${g.Ev / 8}; ++n) { o[n][0] *= a0; o[n][1] *= a0; o[n][2] *= a1; o[n][3] *= a1; }`,
  );
  if (!g.gated) e.line(`  unsigned pf[${n}][4];`);
  e.line("  #pragma unroll");
  e.line(`  for (int kk = 0; kk < ${n}; ++kk) {`);
  e.line(`    pf[kk][0] = ${g.pack}(s[2 * kk][0], s[2 * kk][1]);`);
  e.line(`    pf[kk][1] = ${g.pack}(s[2 * kk][2], s[2 * kk][3]);`);
  e.line(`    pf[kk][2] = ${g.pack}(s[2 * kk + 1][0], s[2 * kk + 1][1]);`);
  e.line(`    pf[kk][3] = ${g.pack}(s[2 * kk + 1][2], s[2 * kk + 1][3]);`);
  e.line("  }");
}

/** O += P·V_t, V fragments by ldmatrix.trans. */
function emitPV(g: Gen, tile: Tile): void {
  const e = g.e;
  const vs = /^\w+$/.test(tile.vs) ? tile.vs : `(${tile.vs})`;
  e.line("  #pragma unroll");
  e.line(`  for (int kk = 0; kk < ${tile.chunks}; ++kk) {`);
  e.line("    #pragma unroll");
  e.line(`    for (int nn = 0; nn < ${g.Ev / 16}; ++nn) {`);
  e.line("      unsigned bv[4];");
  e.line(
    `      tc_ldsm_x4_t(bv, tc_smem(${vs} + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * ${g.LDV} + nn * 16 + (lane >> 4) * 8));`,
  );
  e.line(`      ${g.mma}(o[2 * nn], pf[kk], bv[0], bv[1]);`);
  e.line(`      ${g.mma}(o[2 * nn + 1], pf[kk], bv[2], bv[3]);`);
  e.line("    }");
  e.line("  }");
}

/** Scale (unless raw), causal, the ragged key tail and the mask, applied to the scores in place. */
function emitScoreFixups(g: Gen, bc: string[], tile: Tile): void {
  const { e, layer, ctx, S, L } = g;
  const mask = layer.inputs[3];
  const body: string[] = [];
  if (!g.raw) body.push(`x *= ${floatLiteral(layer.scale)};`);
  if (layer.causal) body.push("if (key > row) x = -TC_INF;");
  if (tile.tail) body.push(`if (key >= ${S}) x = -TC_INF;`);
  let maskPrefix: string[] = [];
  if (mask) {
    const mi = ctx.info(mask);
    const coords = [...broadcastCoords([...bc, "0", "0"], mi.shape)];
    const off = e.offset(mask, coords);
    const mg = e.fresh("mg");
    maskPrefix = [
      `const ${storageCType(mi.storage)}* ${mg} = ${e.param(mask)}${off === "0" ? "" : ` + (${off})`};`,
    ];
    const [rs, cs] = rowColStrides(mi);
    const terms = [
      ...(rs ? [`(${e.idx})min(row, ${L - 1}) * ${rs}`] : []),
      ...(cs ? [`min(key, ${S - 1})${cs === 1 ? "" : ` * ${cs}`}`] : []),
    ];
    const m = fromStorage(`${mg}[${terms.length ? terms.join(" + ") : "0"}]`, mi.storage, mi.logicalDType);
    body.push(mi.logicalDType === "bool" ? `if (!${m}) x = -TC_INF;` : `x += ${m};`);
  }
  if (body.length === 0) return;
  for (const l of maskPrefix) e.line(`  ${l}`);
  // Only the tiles that need it do the work when the fixups are masks alone (the scale is in the exponent).
  const conds: string[] = [];
  if (g.raw && !mask && tile.tail !== "always") {
    if (layer.causal) conds.push(`${tile.k0} + ${tile.chunks * 16 - 1} > q0 + warp * 16`);
    if (tile.tail) conds.push(tile.tail);
  }
  e.line(conds.length ? `  if (${conds.join(" || ")}) {` : "  {");
  e.line("    #pragma unroll");
  e.line(`    for (int j = 0; j < ${tile.chunks * 2}; ++j) {`);
  e.line("      #pragma unroll");
  e.line("      for (int c = 0; c < 4; ++c) {");
  e.line(`        const int key = ${tile.k0} + j * 8 + tg * 2 + (c & 1);`);
  e.line("        const int row = rowBase + (c >> 1) * 8;");
  e.line("        float x = s[j][c];");
  for (const l of body) e.line(`        ${l}`);
  e.line("        s[j][c] = x;");
  e.line("      }");
  e.line("    }");
  e.line("  }");
}

/** Row sums across the quad, 1/sum (0 for a fully masked row), and the stores of rows below L. */
function emitEpilogue(
  e: Emitter,
  layer: AttentionLayer,
  ctx: CodegenContext,
  o: { bc: string[]; L: number; Ev: number; pack: string },
): void {
  const oi = ctx.info(layer.output);
  const off = e.offset(layer.output, [...o.bc, "0", "0"]);
  const [rs, cs] = rowColStrides(oi);
  const st = storageCType(oi.storage);
  const og = e.fresh("og");
  e.line(`${st}* ${og} = ${e.param(layer.output, true)}${off === "0" ? "" : ` + (${off})`};`);
  e.line("l0 = tc_quad_sum(l0);");
  e.line("l1 = tc_quad_sum(l1);");
  e.line("const float i0 = l0 > 0.0f ? 1.0f / l0 : 0.0f;");
  e.line("const float i1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;");
  const paired = cs === 1 && oi.storage === ctx.info(layer.inputs[0]).storage;
  for (const [h, row, inv] of [
    [0, "rowBase", "i0"],
    [1, "rowBase + 8", "i1"],
  ] as const) {
    e.line(`if (${row} < ${o.L}) {`);
    e.line(`  ${st}* orow = ${og} + (${e.idx})(${row}) * ${rs};`);
    e.line("  #pragma unroll");
    e.line(`  for (int n = 0; n < ${o.Ev / 8}; ++n) {`);
    e.line("    const int col = n * 8 + tg * 2;");
    const v0 = `o[n][${2 * h}] * ${inv}`;
    const v1 = `o[n][${2 * h + 1}] * ${inv}`;
    if (paired) {
      e.line(`    *reinterpret_cast<unsigned*>(orow + col) = ${o.pack}(${v0}, ${v1});`);
    } else {
      const c = (x: string) => (cs === 1 ? x : `(${x}) * ${cs}`);
      e.line(`    orow[${c("col")}] = ${toStorage(v0, oi.storage, oi.logicalDType)};`);
      e.line(`    orow[${c("col + 1")}] = ${toStorage(v1, oi.storage, oi.logicalDType)};`);
    }
    e.line("  }");
    e.line("}");
  }
}

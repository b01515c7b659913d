/**
 * Opt-in variants of the warp-per-row rows kernels (codegen/rows.ts, rows-warp.ts), for A/B timing on the GPU
 * (scripts/gpu/rows-sweep.bench.ts). Every knob is read when a kernel is generated; unset, the kernels are the
 * default ones, byte for byte.
 *
 * - `TORCHC_ROWS_LANES=4|8|16|32|auto`: lanes per row on the warp path (a warp takes 32/lanes rows, its statistics
 *   go through segmented shuffles). `auto`: about three 16-byte chunks a lane (192 halves → 8 lanes, 96 → 4,
 *   384 → 16, 768 → 32). Narrow rows leave most of a warp idle with one lane per 16 bytes (a row of 192 halves is
 *   24 chunks: 8 of 32 lanes idle, one load in flight a lane); fewer lanes a row keep every lane busy with several
 *   loads in flight.
 * - `TORCHC_ROWS_ONEPASS=1`: layer norm's mean and variance from one pass over the registers (sum and sum of squares
 *   in fp32, the two warp reductions independent, so their shuffles interleave) instead of two dependent ones.
 *   Exact enough where mean² is not many thousand times the variance (fp32 cancellation).
 * - `TORCHC_ROWS_GRID=<blocks>`: a grid-stride loop over the rows on at most that many blocks (e.g. 132 SMs ×
 *   resident blocks), every block running the same number of iterations; no tail wave of partly filled SMs.
 * - `TORCHC_ROWS_MINBLOCKS=<n>`: `__launch_bounds__(threads, n)`, so ptxas keeps registers low enough for n
 *   resident blocks an SM (the default 52 registers of a 768-wide residual norm allow 4 blocks of 256 threads).
 * - `TORCHC_ROWS_PRELOAD=1`: the norm's weight and bias are loaded in the load pass, before the statistics, so their
 *   latency overlaps the row's loads instead of following the reductions.
 */

/** The knobs in force (read from the environment now). */
export interface RowsKnobs {
  /** Lanes per row on the warp path, "auto", or undefined (a whole warp). */
  readonly lanes?: number | "auto";
  readonly onePass: boolean;
  /** Blocks of a grid-stride launch, or undefined (a block per TX rows). */
  readonly grid?: number;
  readonly preload: boolean;
  /** Minimum resident blocks an SM for __launch_bounds__, or undefined. */
  readonly minBlocks?: number;
}

export function rowsKnobs(): RowsKnobs {
  const env = process.env;
  const lanesRaw = env.TORCHC_ROWS_LANES;
  let lanes: number | "auto" | undefined;
  if (lanesRaw === "auto") lanes = "auto";
  else if (lanesRaw && [4, 8, 16, 32].includes(Number(lanesRaw))) lanes = Number(lanesRaw);
  const grid = Number(env.TORCHC_ROWS_GRID);
  const minBlocks = Number(env.TORCHC_ROWS_MINBLOCKS);
  return {
    lanes,
    onePass: env.TORCHC_ROWS_ONEPASS === "1",
    grid: Number.isInteger(grid) && grid > 0 ? grid : undefined,
    preload: env.TORCHC_ROWS_PRELOAD === "1",
    minBlocks: Number.isInteger(minBlocks) && minBlocks > 0 ? minBlocks : undefined,
  };
}

/**
 * Lanes per row for a warp-path kernel over rows of `inner` elements stored in `bytes`-byte elements: the knob's
 * number, or (auto) the power of two from 4 to 32 nearest to a third of the row's 16-byte chunks.
 */
export function lanesPerRow(knob: number | "auto", inner: number, bytes: number): number {
  if (knob !== "auto") return knob;
  const chunks = Math.ceil((inner * bytes) / 16);
  let lanes = 4;
  while (lanes < 32 && lanes * 3 < chunks) lanes *= 2;
  return lanes;
}

/**
 * Segmented warp reductions over aligned groups of `w` lanes (w a power of two ≤ 32), prepended to a kernel's
 * source where it uses them; guarded, so several kernels of one program define them once. Device code only (the
 * CPU emulator defines its own, test/backends/cuda/emulate.ts).
 */
export const SEGMENTED_SHUFFLES = `#ifndef TC_ROWS_SEGMENTED
#define TC_ROWS_SEGMENTED
#ifdef __CUDA_ARCH__
__device__ __forceinline__ float tc_seg_sum(float v, int w) { for (int o = w >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o); return v; }
__device__ __forceinline__ float tc_seg_max(float v, int w) { for (int o = w >> 1; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o)); return v; }
#endif
#endif
`;

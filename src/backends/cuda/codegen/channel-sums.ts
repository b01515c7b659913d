/**
 * An element group that also sums its root over the spatial axes (ElementGroup.channelSums): squeeze-excite's
 * pooling done by the kernel that makes the pooled tensor (the depthwise convolution and its activation), so the
 * mean needs no launch of its own and the tensor is not read back from memory (at batch 128 the separate mean
 * read ~0.3 GB of EfficientNet-B0's activations again; at batch 1 it was 16 of ~100 launches).
 *
 * Threads compute what the element kernel's would (V channels of one pixel each) but are laid out so that a block
 * holds whole pixels: G = C/V threads per pixel, k pixels per pass. Block (n, tile) walks pixels tile·k + r of
 * sample n, stepping by tiles·k, and keeps its V sums in registers; the block's k rows are then added in shared
 * memory by a fixed tree and the tile's C sums are written as fp32. The order of every addition is fixed, so the
 * result is the same on every run (no atomics, and nothing to zero before the kernel).
 */
import { envNumber } from "../../../util/env-number.js";
import { channelsLast, layoutKey } from "../plan/layout.js";
import { fromStorage, toStorage } from "./ctypes.js";
import {
  type CodegenContext,
  type ElementGroup,
  type GeneratedKernel,
  groupIndexType,
  lanesFor,
  storeGroupOutputs,
  vectorWidth,
} from "./element.js";
import { decompose, Emitter } from "./emitter.js";

/** Threads a block aims for (whole pixels: the largest multiple of G not above it, or G). */
const BLOCK_THREADS = 512;
/** Blocks to aim for across the batch, and the most tiles per sample (what a reader of the sums adds up). */
const TARGET_BLOCKS = 1024;
/**
 * Up to about one block per SM at batch 1 (the 112² depthwise layer's element kernel had 196 blocks of 256 threads;
 * 128 tiles of ~500 threads keep more threads in flight), while a reader adds ≤ 128 rows per channel.
 */
const MAX_TILES = 128;
/** The widest row of channel groups one block can hold. */
export const MAX_CHANNEL_GROUPS = 1024;

/** Pixels per pass and threads per block for G channel groups of V lanes. */
export function sumsBlock(groups: number, lanes: number): { k: number; threads: number } {
  if (groups > MAX_CHANNEL_GROUPS) throw new Error(`channel sums: ${groups} channel groups exceed one block`);
  // ≤ 1024 threads a block, and the tree's k rows of G·V fp32 sums within 32 KiB of shared memory.
  const perPass = Math.min(Math.floor(envNumber("TORCHC_SUMS_BLOCK", BLOCK_THREADS, 1)), 1024) / groups;
  const k = Math.max(1, Math.floor(Math.min(perPass, 8192 / (groups * lanes))));
  return { k, threads: groups * k };
}

/** Tiles per sample for a root [n, c, h·w]: enough blocks to fill the GPU, few enough for the readers. */
export function channelSumTiles(n: number, channels: number, pixels: number, storageBytes: number): number {
  const lanes = lanesFor(channels, storageBytes);
  const { k } = sumsBlock(channels / lanes, lanes);
  const wanted = Math.ceil(envNumber("TORCHC_SUMS_TARGET_BLOCKS", TARGET_BLOCKS, 1) / n);
  return Math.max(
    1,
    Math.min(Math.ceil(pixels / k), wanted, Math.floor(envNumber("TORCHC_SUMS_MAX_TILES", MAX_TILES, 1))),
  );
}

export function generateChannelSumsKernel(
  name: string,
  group: ElementGroup,
  ctx: CodegenContext,
): GeneratedKernel {
  const sums = group.channelSums;
  if (!sums) throw new Error("generateChannelSumsKernel needs a group with channelSums");
  const root = ctx.info(group.root);
  if (
    root.shape.length !== 4 ||
    layoutKey(root.shape, root.layout) !== layoutKey(root.shape, channelsLast(4))
  )
    throw new Error(`channel sums of '${group.root}': the root must be 4-D with channels innermost`);
  const [n, c, h, w] = root.shape;
  const pixels = h * w;
  const { axis, width: V } = vectorWidth(group, ctx);
  if (V > 1 && axis !== 1)
    throw new Error(`channel sums of '${group.root}': lanes run along axis ${axis}, not channels`);
  const G = c / V;
  const { k, threads } = sumsBlock(G, V);
  const P = sums.tiles;
  const e = new Emitter(ctx.info, groupIndexType(group, ctx, [n * P * c]));
  const idx = e.idx;
  e.line(`__shared__ float red[${k * c}];`);
  e.line(`const int cg = threadIdx.x % ${G};`);
  e.line(`const int r = threadIdx.x / ${G};`);
  e.line(`const ${idx} nn = (${idx})blockIdx.x / ${P};`);
  e.line(`const int tile = blockIdx.x % ${P};`);
  const acc = Array.from({ length: V }, (_, j) => `sum${j}`);
  for (const a of acc) e.line(`float ${a} = 0.0f;`);
  e.block(`for (${idx} hw = (${idx})tile * ${k} + r; hw < ${pixels}; hw += ${P * k})`, () => {
    e.line(`const ${idx} i = (nn * ${pixels} + hw) * ${G} + cg;`);
    const coords = decompose(e, V === 1 ? "i" : `i * ${V}`, root.shape, root.layout);
    const values = storeGroupOutputs(e, group, ctx, coords, { axis, width: V });
    // The sums add what was stored (rounded to the storage type), as a separate reduction would read it.
    for (const [j, v] of values.entries())
      e.line(
        `${acc[j]} += ${fromStorage(toStorage(v, root.storage, root.logicalDType), root.storage, "float32")};`,
      );
  });
  storeTileSums(e, acc, { k, c, V, tiles: P, partials: sums.partials });
  const source = `extern "C" __global__ void __launch_bounds__(${threads}) ${name}(${e.signature()}) {\n${e.body()}\n}\n`;
  return {
    name,
    source,
    params: e.params,
    grid: [n * P, 1, 1],
    block: [threads, 1, 1],
    sharedBytes: 0,
  };
}

/**
 * The block's k rows of sums (each thread's V accumulators) added by a fixed tree in shared memory, then row 0's
 * threads write the tile's C sums.
 */
function storeTileSums(
  e: Emitter,
  acc: readonly string[],
  g: { k: number; c: number; V: number; tiles: number; partials: string },
): void {
  const { k, c, V } = g;
  for (const [j, a] of acc.entries()) e.line(`red[r * ${c} + cg * ${V} + ${j}] = ${a};`);
  e.line("__syncthreads();");
  // Rows r and r + s are added for s = the largest power of two below k, halving: a fixed order.
  let top = 1;
  while (top * 2 < k) top *= 2;
  for (let s = top; s >= 1 && k > 1; s /= 2) {
    e.block(`if (r < ${s} && r + ${s} < ${k})`, () => {
      for (let j = 0; j < V; j++)
        e.line(`red[r * ${c} + cg * ${V} + ${j}] += red[(r + ${s}) * ${c} + cg * ${V} + ${j}];`);
    });
    e.line("__syncthreads();");
  }
  const p = e.param(g.partials, true);
  e.block("if (r == 0)", () => {
    for (let j = 0; j < V; j++)
      e.line(`${p}[(nn * ${g.tiles} + tile) * ${c} + cg * ${V} + ${j}] = red[cg * ${V} + ${j}];`);
  });
}

/**
 * Row blocking for element groups built around a depthwise convolution (EfficientNet's depthwise + BN + SiLU):
 * each thread computes R output rows of V channels at one column instead of one row. The one-row kernel loads
 * every input tap for every output (k² loads per output); here a column of R outputs loads the (R−1)·s + k input
 * rows it spans once per kernel column and adds each into every output row that uses it, so an input vector is
 * read once per thread instead of up to k times. Stride 1 only (measured slower at stride 2).
 *
 * At batch 128 the one-row kernels ran at 2–5× their bandwidth floor (H100, session 14: a 5×5 at 28²×240 took
 * 145 µs against ~30 µs of DRAM traffic). Measured with R = 2: that layer 145 → 104 µs, the 3×3 layers 0–8% faster
 * (closer to instruction-bound than load-bound), EfficientNet-B0 b128 3.607 → 3.384 ms together with the pooling
 * kernel (codegen/spatial-mean.ts; 3.634 → 3.407 in another run).
 *
 * Cost: compile time. The kernel is unrolled over rows × taps × lanes; nvcc for sm_90 on the dev box took 0.44 s
 * for a 3×3 at R = 2 against 0.37 one-row, 0.59 against 0.39 for a 5×5, so EfficientNet-B0 b128's ten blocked
 * kernels add ~1.5 s of NVRTC to a cold compile if compiled one after another.
 *
 * Only for large maps (batch 1 keeps the one-row kernel: fewer threads would cost more than the loads save) and
 * only when the convolution's input is materialized, so that a padded tap can be a guarded load.
 * `TORCHC_DW_ROWS=n` sets R (1 turns it off, at most 8); `TORCHC_DW_ROWS_MIN_THREADS` moves the size bound.
 */
import { numel } from "../../../ir/tensor.js";
import type { Layer, LayerOf } from "../../../network/layers/index.js";
import { envNumber } from "../../../util/env-number.js";
import { fromStorage } from "./ctypes.js";
import {
  type CodegenContext,
  ElementEmitter,
  type ElementGroup,
  type GeneratedKernel,
  groupIndexType,
  ITEM_BLOCK,
  isPointwiseLayer,
  storeGroupOutputs,
  threadPerItemKernel,
} from "./element.js";
import { decompose, Emitter, laneCoord } from "./emitter.js";

/**
 * Output rows per thread by default. H100, EfficientNet-B0 batch 128 (session 14), µs per layer one row / R = 2 /
 * R = 4: 5×5 stride 1 at 28²×240 144 / 104 / 105; 3×3 stride 1 at 56²×144 143 / 132 / 143; 3×3 stride 2 from
 * 112²×96 154 / 162 / 201 (few loads to share at stride 2, and the registers cost occupancy).
 */
export const DEPTHWISE_ROWS = 2;
/** Blocking needs at least this many threads after it (about two waves of 256-thread blocks on an H100). */
export const DEPTHWISE_ROWS_MIN_THREADS = 1 << 16;

export interface RowBlocking {
  readonly conv: LayerOf<"convolution">;
  /** Output rows per thread. */
  readonly rows: number;
  /** Channels per thread (the group's vector width). */
  readonly lanes: number;
}

function isDepthwise2d(l: Layer, ctx: CodegenContext): l is LayerOf<"convolution"> {
  if (l.type !== "convolution") return false;
  const w = ctx.info(l.inputs[1]).shape;
  return w.length === 4 && w[1] === 1 && l.groups === ctx.info(l.output).shape[1];
}

/**
 * Whether `group` is blocked by rows and how: one depthwise 2-D convolution whose output has the root's shape,
 * every other member pointwise, the convolution's input materialized, channels innermost with V > 1 lanes.
 */
export function depthwiseRowBlocking(
  group: ElementGroup,
  ctx: CodegenContext,
  lanes: { axis: number; width: number },
): RowBlocking | undefined {
  // at most 8: the kernel is unrolled over rows × kernel taps
  const rows = Math.min(8, Math.floor(envNumber("TORCHC_DW_ROWS", DEPTHWISE_ROWS, 1)));
  if (rows < 2 || group.channelSums || lanes.width < 2 || lanes.axis !== 1) return undefined;
  const root = ctx.info(group.root);
  if (root.shape.length !== 4 || root.shape[2] < 2) return undefined;
  const convs = group.layers.filter((l) => !isPointwiseLayer(l));
  if (convs.length !== 1 || !isDepthwise2d(convs[0], ctx)) return undefined;
  const conv = convs[0];
  if (ctx.info(conv.output).shape.join() !== root.shape.join()) return undefined;
  if (conv.stride.some((st) => st !== 1)) return undefined;
  if (group.layers.some((l) => l.output === conv.inputs[0])) return undefined;
  const minThreads = envNumber("TORCHC_DW_ROWS_MIN_THREADS", DEPTHWISE_ROWS_MIN_THREADS);
  if (numel(root.shape) / (lanes.width * rows) < minThreads) return undefined;
  return { conv, rows, lanes: lanes.width };
}

/** The row-blocked kernel of `group` (see the file comment); the caller checked `depthwiseRowBlocking`. */
export function generateDepthwiseRowsKernel(
  name: string,
  group: ElementGroup,
  ctx: CodegenContext,
  b: RowBlocking,
): GeneratedKernel {
  const e = new Emitter(ctx.info, groupIndexType(group, ctx));
  const root = ctx.info(group.root);
  const [n, ch, h, w] = root.shape;
  const hBlocks = Math.ceil(h / b.rows);
  const threads = (n * ch * hBlocks * w) / b.lanes;
  e.line(`const ${e.idx} i = (${e.idx})blockIdx.x * ${ITEM_BLOCK} + threadIdx.x;`);
  e.line(`if (i >= ${threads}) return;`);
  const [cn, cv, chb, cw] = decompose(e, "i", [n, ch / b.lanes, hBlocks, w], root.layout);
  const c0 = e.let(e.idx, `(${e.idx})(${cv}) * ${b.lanes}`, "c");
  const h0 = e.let(e.idx, `(${e.idx})(${chb}) * ${b.rows}`, "h");
  // Each row's stores (and the other members' loads) sit behind `h0 + j < H`; the convolution's loads are guarded.
  const rowCoords = Array.from({ length: b.rows }, (_, j) =>
    j === 0 ? h0 : e.let(e.idx, `${h0} + ${j}`, "hr"),
  );
  const g = new ElementEmitter(e, new Map(group.layers.map((l) => [l.output, l] as const)), ctx);
  e.vec = { base: c0, width: b.lanes };
  const accs = convolutionRows(e, g, ctx, b, { n: cn, c0, h0, w: cw });
  for (const [j, hr] of rowCoords.entries())
    for (let l = 0; l < b.lanes; l++)
      e.memoSet(`${b.conv.output}@${[cn, laneCoord(c0, l), hr, cw].join(",")}`, accs[j][l]);
  e.vec = undefined;
  for (const [j, hr] of rowCoords.entries()) {
    e.block(j === 0 ? "" : `if (${h0} + ${j} < ${h})`, () => {
      storeGroupOutputs(e, group, ctx, [cn, c0, hr, cw], { axis: 1, width: b.lanes });
    });
  }
  return threadPerItemKernel(name, e, threads);
}

/**
 * The convolution's fp32 accumulators for the thread's R rows × V lanes ([row][lane]): bias first, then every
 * kernel column, and within it every input row the thread's outputs span, each tap added into the rows it
 * belongs to (for one output: kernel columns outer, rows inner).
 */
function convolutionRows(
  e: Emitter,
  g: ElementEmitter,
  ctx: CodegenContext,
  b: RowBlocking,
  at: { n: string; c0: string; h0: string; w: string },
): string[][] {
  const { conv } = b;
  const [x, wt, bias] = conv.inputs;
  const [, , hIn, wIn] = ctx.info(x).shape;
  const [, , kh, kw] = ctx.info(wt).shape;
  const [sh, sw] = conv.stride;
  const [ph, pw] = conv.padding;
  const [dh, dw] = conv.dilation;
  const lane = (l: number) => laneCoord(at.c0, l);
  const accs = Array.from({ length: b.rows }, () =>
    Array.from({ length: b.lanes }, (_, l) => {
      const acc = e.fresh("acc");
      e.line(`float ${acc} = ${bias ? `(float)${g.value(bias, [lane(l)])}` : "0.0f"};`);
      return acc;
    }),
  );
  const inRows = (b.rows - 1) * sh + (kh - 1) * dh + 1;
  const ih = Array.from({ length: inRows }, (_, t) =>
    e.let(e.idx, `(${e.idx})(${at.h0}) * ${sh} - ${ph} + ${t}`, "ih"),
  );
  for (let q = 0; q < kw; q++) {
    const iw = e.let(e.idx, `(${e.idx})(${at.w}) * ${sw} - ${pw} + ${q * dw}`, "iw");
    for (let t = 0; t < inRows; t++) {
      const uses: [number, number][] = [];
      for (let j = 0; j < b.rows; j++) {
        const d = t - j * sh;
        if (d >= 0 && d % dh === 0 && d / dh < kh) uses.push([j, d / dh]);
      }
      if (uses.length === 0) continue;
      const inside = `${ih[t]} >= 0 && ${ih[t]} < ${hIn} && ${iw} >= 0 && ${iw} < ${wIn}`;
      const xs = guardedLanes(e, x, [at.n, at.c0, ih[t], iw], b.lanes, inside);
      for (const [j, r] of uses)
        for (let l = 0; l < b.lanes; l++) {
          const wv = g.value(wt, [lane(l), "0", `${r}`, `${q}`]);
          e.line(`${accs[j][l]} = fmaf(${xs[l]}, (float)${wv}, ${accs[j][l]});`);
        }
    }
  }
  return accs;
}

/**
 * V lanes of `x` from `coords0` (lane 0's coords) as fp32 variables, zero where `inside` is false: one wide
 * guarded load when the tensor allows it, else one guarded scalar load per lane.
 */
function guardedLanes(
  e: Emitter,
  x: string,
  coords0: readonly string[],
  lanes: number,
  inside: string,
): string[] {
  const t = e.info(x);
  const p = e.param(x);
  const ok = e.let("bool", inside, "in");
  if (!e.vectorizable(x, 1)) {
    return Array.from({ length: lanes }, (_, l) => {
      const c = coords0.map((v, a) => (a === 1 ? laneCoord(coords0[1], l) : v));
      return e.let(
        "float",
        `${ok} ? (float)${fromStorage(`${p}[${e.offset(x, c)}]`, t.storage, t.logicalDType)} : 0.0f`,
        "xv",
      );
    });
  }
  const arr = e.wideLoad(x, coords0, ok);
  return Array.from({ length: lanes }, (_, l) =>
    e.let("float", `(float)${fromStorage(`${arr}[${l}]`, t.storage, t.logicalDType)}`, "xv"),
  );
}

/**
 * Cooperative kernels over "rows": a tensor split into outer axes (one row per outer coordinate) and inner
 * axes (the elements of a row). TX rows per block, TY threads per row (TX·TY = 256), a strided loop over the
 * row, and a shared-memory tree to combine the partials. When the input's innermost memory axis lies inside
 * the row, the TY threads of a row are adjacent (coalesced along the row); otherwise the TX rows are
 * adjacent (coalesced across rows, e.g. spatial reductions of NHWC tensors). Reduce, global pooling,
 * softmax and layer/group normalization are built on it, with fp32 (or fp64) statistics.
 */
import type { DType } from "../../../ir/dtype.js";
import { DTYPE_BYTES } from "../../../ir/dtype.js";
import { numel } from "../../../ir/tensor.js";
import type {
  AdaptivePoolingLayer,
  NormalizationLayer,
  ReduceLayer,
  SoftmaxLayer,
} from "../../../network/layers/index.js";
import type { RowsFusion } from "../fuse/steps.js";
import { computeCType, floatLiteral, highest, isFloatDType, lowest } from "./ctypes.js";
import { type CodegenContext, ElementEmitter, type GeneratedKernel } from "./element.js";
import { decompose, Emitter, indexType } from "./emitter.js";
import { lanesPerRow, type RowsKnobs, rowsKnobs, SEGMENTED_SHUFFLES } from "./rows-knobs.js";
import { type LaneIO, type RegisterRow, registerRow } from "./rows-warp.js";

const THREADS = 256;

interface Frame {
  e: Emitter;
  /** Logical coords of the input for the thread's row (outer axes set, inner axes "0"). */
  rowCoords: string[];
  tx: string;
  ty: string;
  TX: number;
  TY: number;
  rows: number;
  inner: number;
  threads: number;
  /** The TY threads of a row are consecutive lanes (a row never straddles a warp's boundary when TY ≥ 32). */
  alongRow: boolean;
  /** Blocks launched (fewer than rows / TX with a grid-stride loop, TORCHC_ROWS_GRID). */
  grid: number;
  /** The kernel body is a grid-stride loop (closed by finish). */
  loop: boolean;
  /** The kernel uses the segmented shuffles (rows-knobs.ts), defined ahead of it. */
  segmented: boolean;
  /** The variant knobs in force for this kernel (rows-knobs.ts); empty for reduce kernels. */
  knobs: Partial<RowsKnobs>;
}

interface RowSpec {
  input: string;
  outer: number[];
  inner: number[];
}

function pow2ceil(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** Rows from which a warp per row beats a block per row: enough warps to fill the GPU several times over. */
const MANY_ROWS = 2048;
/** The longest row a warp takes alone (32 elements per lane per pass; 32 registers a lane on the register path). */
const WARP_ROW_MAX = 1024;

/**
 * Threads per row (TY) and the block's threads. With `knobs.lanes` (softmax and norms only), a warp-path kernel
 * gives each row fewer lanes than a warp (rows-knobs.ts).
 */
function split(
  x: ReturnType<CodegenContext["info"]>,
  rows: number,
  inner: number,
  alongRow: boolean,
  knobs: Partial<RowsKnobs>,
): { TY: number; threads: number } {
  // Rows across memory (NHWC spatial means): 1024-thread blocks, so many loads are in flight per row;
  // 32 adjacent rows per block (coalesced), or 8 with 128 threads each when there are few rows.
  const threads = !alongRow && inner >= 256 ? 1024 : THREADS;
  let TY: number;
  // Many short rows (a transformer's LayerNorm at batch 64: 12,608 rows of 192): a warp per row, 8 rows per
  // block, warp-shuffle statistics. A block per row there left a quarter of its threads idle and paid eight
  // barrier levels per statistic (7x slower than the bandwidth floor on the H200).
  // TORCHC_ROWS_WARP=0 keeps a block per row (for A/B timing).
  const warpRows = process.env.TORCHC_ROWS_WARP !== "0";
  if (warpRows && alongRow && rows >= MANY_ROWS && inner <= WARP_ROW_MAX) {
    TY = knobs.lanes ? lanesPerRow(knobs.lanes, inner, DTYPE_BYTES[x.storage]) : 32;
  } else if (alongRow) TY = Math.min(THREADS, Math.max(32, pow2ceil(inner)));
  else if (threads === 1024) TY = rows <= 256 ? 128 : 32;
  else TY = rows <= 32 * 64 ? 32 : 8;
  TY = Math.min(TY, pow2ceil(Math.max(1, inner)) >= 2 ? TY : 1) || 1;
  return { TY, threads };
}

/**
 * Chooses the thread split and emits the row decomposition; `variants`: the kernel takes the rows-knobs.ts knobs
 * (softmax and norms).
 */
function frame(ctx: CodegenContext, spec: RowSpec, extraCounts: number[], variants = false): Frame {
  const x = ctx.info(spec.input);
  const idx = indexType([numel(x.shape) * 4, ...extraCounts]);
  const e = new Emitter(ctx.info, idx);
  const rows = spec.outer.reduce((p, a) => p * x.shape[a], 1);
  const inner = spec.inner.reduce((p, a) => p * x.shape[a], 1);
  const innermost = x.layout.filter((a) => x.shape[a] !== 1).at(-1);
  const alongRow = innermost === undefined || spec.inner.includes(innermost);
  const knobs: Partial<RowsKnobs> = variants ? rowsKnobs() : {};
  const { TY, threads } = split(x, rows, inner, alongRow, knobs);
  const TX = threads / TY;
  e.line("const int tid = threadIdx.x;");
  e.line(alongRow ? `const int tx = tid / ${TY};` : `const int tx = tid % ${TX};`);
  e.line(alongRow ? `const int ty = tid % ${TY};` : `const int ty = tid / ${TX};`);
  const blocks = Math.max(1, Math.ceil(rows / TX));
  // TORCHC_ROWS_GRID: a grid-stride loop on the warp path, the same trip count in every block (barriers stay safe)
  const loop = knobs.grid !== undefined && alongRow && TY <= 32 && rows >= MANY_ROWS && knobs.grid < blocks;
  const iters = loop ? Math.ceil(blocks / (knobs.grid ?? 1)) : 1;
  const grid = Math.ceil(blocks / iters);
  if (loop) {
    e.line(`for (int it = 0; it < ${iters}; ++it) {`);
    e.line(`const ${idx} row_raw = ((${idx})it * ${grid} + blockIdx.x) * ${TX} + tx;`);
  } else e.line(`const ${idx} row_raw = (${idx})blockIdx.x * ${TX} + tx;`);
  e.line(`const bool active = row_raw < ${rows};`);
  e.line(`const ${idx} row = active ? row_raw : 0;`);
  const outerOrder = x.layout.filter((a) => spec.outer.includes(a));
  const rowShape = x.shape.map((d, a) => (spec.outer.includes(a) ? d : 1));
  const rowCoords = decompose(e, "row", rowShape, outerOrder.length ? outerOrder : [0]);
  return {
    e,
    rowCoords,
    tx: "tx",
    ty: "ty",
    TX,
    TY,
    rows,
    inner,
    threads,
    alongRow,
    grid,
    loop,
    segmented: false,
    knobs,
  };
}

/** Emits `for (e = ty; e < inner; e += TY)` with the element's input coords, calling body(coords). */
function rowLoop(f: Frame, ctx: CodegenContext, spec: RowSpec, body: (coords: string[]) => void): void {
  const e = f.e;
  const x = ctx.info(spec.input);
  const innerOrder = x.layout.filter((a) => spec.inner.includes(a));
  const elemShape = x.shape.map((d, a) => (spec.inner.includes(a) ? d : 1));
  e.block(`for (${e.idx} j = ty; j < ${f.inner}; j += ${f.TY})`, () => {
    const ec = decompose(e, "j", elemShape, innerOrder.length ? innerOrder : [0]);
    body(f.rowCoords.map((c, a) => (spec.inner.includes(a) ? ec[a] : c)));
  });
}

/**
 * Combines `acc` (type ct) over the TY threads of each row; returns the row's result variable. A float sum or max
 * over a row of whole warps goes through warp shuffles, then (TY > 32) one shared-memory step across the row's
 * warps; anything else through a shared-memory tree.
 */
function blockCombine(
  f: Frame,
  ct: string,
  acc: string,
  combine: (a: string, b: string) => string,
  name: string,
  warpOp?: "sum" | "max",
): string {
  const e = f.e;
  const sm = `sm_${name}`;
  if (warpOp && ct === "float" && f.alongRow && f.TY < 32 && 32 % f.TY === 0 && f.TY >= 2) {
    // a row of TY < 32 lanes (TORCHC_ROWS_LANES): segmented shuffles within the row's aligned group of lanes
    f.segmented = true;
    return e.let("float", `tc_seg_${warpOp}(${acc}, ${f.TY})`, `${name}_w`);
  }
  if (warpOp && ct === "float" && f.alongRow && f.TY >= 32 && f.TY % 32 === 0) {
    const w = e.let("float", `${warpOp === "sum" ? "tc_warp_sum" : "tc_warp_max"}(${acc})`, `${name}_w`);
    if (f.TY === 32) return w;
    const W = f.TY / 32;
    const r = e.fresh(`${name}_r`);
    e.line(`__shared__ float ${sm}[${f.TX * W}];`);
    e.line(`if ((ty & 31) == 0) ${sm}[tx * ${W} + (ty >> 5)] = ${w};`);
    e.line("__syncthreads();");
    e.line(`float ${r} = ${sm}[tx * ${W}];`);
    e.line(`for (int i = 1; i < ${W}; ++i) ${r} = ${combine(r, `${sm}[tx * ${W} + i]`)};`);
    e.line("__syncthreads();");
    return r;
  }
  e.line(`__shared__ ${ct} ${sm}[${f.TX * f.TY}];`);
  e.line(`${sm}[tx * ${f.TY} + ty] = ${acc};`);
  e.line("__syncthreads();");
  e.block(`for (int s = ${f.TY / 2}; s > 0; s >>= 1)`, () => {
    e.line(
      `if (ty < s) ${sm}[tx * ${f.TY} + ty] = ${combine(`${sm}[tx * ${f.TY} + ty]`, `${sm}[tx * ${f.TY} + ty + s]`)};`,
    );
    e.line("__syncthreads();");
  });
  const r = e.let(ct, `${sm}[tx * ${f.TY}]`, name);
  e.line("__syncthreads();");
  return r;
}

function finish(name: string, f: Frame): GeneratedKernel {
  if (f.loop) f.e.line("}");
  const helpers = f.segmented ? SEGMENTED_SHUFFLES : "";
  const bounds = f.knobs.minBlocks ? `${f.threads}, ${f.knobs.minBlocks}` : `${f.threads}`;
  const source = `${helpers}extern "C" __global__ void __launch_bounds__(${bounds}) ${name}(${f.e.signature()}) {\n${f.e.body()}\n}\n`;
  return {
    name,
    source,
    params: f.e.params,
    grid: [f.grid, 1, 1],
    block: [f.threads, 1, 1],
    sharedBytes: 0,
  };
}

type ReduceKind = ReduceLayer["op"];

/** The reduced axes and the reduction: a reduce layer's own, or adaptive pooling to 1 over the spatial axes. */
function reduction(
  layer: ReduceLayer | AdaptivePoolingLayer,
  rank: number,
): { axes: number[]; op: ReduceKind } {
  if (layer.type === "reduce") return { axes: [...layer.axes], op: layer.op };
  const sp = layer.outputSize.length;
  return {
    axes: Array.from({ length: sp }, (_, i) => rank - sp + i),
    op: layer.mode === "avg" ? "mean" : "max",
  };
}

/** The accumulator's C type and initial value for `op` over `inT`. */
function accumulator(op: ReduceKind, inT: DType): { accCt: string; init: string } {
  const inCt = computeCType(inT);
  const float = isFloatDType(inT);
  const wide = inCt === "double" ? "double" : float ? "float" : "long long";
  switch (op) {
    case "sum":
    case "mean":
      return { accCt: wide, init: "0" };
    case "prod":
      return { accCt: wide, init: "1" };
    case "max":
      return { accCt: inCt, init: lowest(inT) };
    case "argmax":
      return { accCt: inCt, init: float ? floatLiteral(Number.NEGATIVE_INFINITY, inCt) : lowest(inT) };
    case "min":
      return { accCt: inCt, init: highest(inT) };
    case "argmin":
      return { accCt: inCt, init: float ? floatLiteral(Number.POSITIVE_INFINITY, inCt) : highest(inT) };
    default:
      return { accCt: "int", init: op === "all" ? "1" : "0" };
  }
}

/** One element `v` (at `coords`) folded into acc (and aidx for argmax/argmin). */
function accumulate(e: Frame["e"], op: ReduceKind, accCt: string, v: string, k: string): void {
  switch (op) {
    case "sum":
    case "mean":
      e.line(`acc += (${accCt})${v};`);
      return;
    case "prod":
      e.line(`acc *= (${accCt})${v};`);
      return;
    case "max":
      e.line(`acc = tc_max(acc, (${accCt})${v});`);
      return;
    case "min":
      e.line(`acc = tc_min(acc, (${accCt})${v});`);
      return;
    case "any":
      e.line(`acc = acc || ${v};`);
      return;
    case "all":
      e.line(`acc = acc && ${v};`);
      return;
    case "argmax":
    case "argmin": {
      // The reduced axis' coordinate is the index; a NaN wins, then the first occurrence.
      const better = op === "argmax" ? ">" : "<";
      e.line(
        `{ const long long kk = (long long)(${k}); const bool vn = ${v} != ${v}; const bool an = acc != acc;`,
      );
      e.line(
        `  if ((vn && !an) || (vn == an && (${v} ${better} acc || (${v} == acc && kk < aidx))) || (vn && an && kk < aidx)) { acc = ${v}; aidx = kk; } }`,
      );
      return;
    }
  }
}

/** argmax/argmin across the block's rows of threads: value and index pairs, NaN first, then the lowest index. */
function combineArg(f: Frame, op: "argmax" | "argmin", ct: string): string {
  const e = f.e;
  const sm = "sm_arg";
  e.line(`__shared__ ${ct} ${sm}_v[${f.TX * f.TY}];`);
  e.line(`__shared__ long long ${sm}_i[${f.TX * f.TY}];`);
  e.line(`${sm}_v[tx * ${f.TY} + ty] = acc; ${sm}_i[tx * ${f.TY} + ty] = aidx;`);
  e.line("__syncthreads();");
  const better = op === "argmax" ? ">" : "<";
  e.block(`for (int s = ${f.TY / 2}; s > 0; s >>= 1)`, () => {
    e.block("if (ty < s)", () => {
      e.line(`const int p = tx * ${f.TY} + ty, q = p + s;`);
      e.line(`const ${ct} a = ${sm}_v[p], b = ${sm}_v[q]; const long long ia = ${sm}_i[p], ib = ${sm}_i[q];`);
      e.line(`const bool an = a != a, bn = b != b;`);
      e.line(
        `const bool takeB = (bn && !an) || (an == bn && (b ${better} a || (b == a && ib < ia))) || (an && bn && ib < ia);`,
      );
      e.line(`if (takeB) { ${sm}_v[p] = b; ${sm}_i[p] = ib; }`);
    });
    e.line("__syncthreads();");
  });
  return e.let(
    "long long",
    `${sm}_i[tx * ${f.TY}] == 0x7fffffffffffffffLL ? 0LL : ${sm}_i[tx * ${f.TY}]`,
    "res",
  );
}

/** How two partial results of `op` combine. */
function combineOf(op: ReduceKind): (a: string, b: string) => string {
  return (a, b) => {
    switch (op) {
      case "sum":
      case "mean":
        return `${a} + ${b}`;
      case "prod":
        return `${a} * ${b}`;
      case "max":
        return `tc_max(${a}, ${b})`;
      case "min":
        return `tc_min(${a}, ${b})`;
      case "any":
        return `(${a} || ${b})`;
      default:
        return `(${a} && ${b})`;
    }
  };
}

/** reduce layers, and adaptive pooling to size 1 (a mean or max over the spatial axes). */
export function generateReduceKernel(
  name: string,
  layer: ReduceLayer | AdaptivePoolingLayer,
  ctx: CodegenContext,
): GeneratedKernel {
  const input = layer.inputs[0];
  const x = ctx.info(input);
  const rank = x.shape.length;
  const { axes, op } = reduction(layer, rank);
  const outer = Array.from({ length: rank }, (_, a) => a).filter((a) => !axes.includes(a));
  const spec: RowSpec = { input, outer, inner: axes };
  const out = ctx.info(layer.output);
  const f = frame(ctx, spec, [numel(out.shape) * 4]);
  const e = f.e;
  const arg = op === "argmax" || op === "argmin";
  const { accCt, init } = accumulator(op, x.logicalDType);
  e.line(`${accCt} acc = ${init};`);
  if (arg) e.line("long long aidx = 0x7fffffffffffffffLL;");
  rowLoop(f, ctx, spec, (coords) => {
    e.line("if (!active) break;");
    const v = e.load(input, coords);
    accumulate(e, op, accCt, v, coords[axes[0]]);
  });
  let result: string;
  if (arg) result = combineArg(f, op, accCt);
  else {
    // Not max: a reduce's max propagates NaN, the warp max (fmaxf) drops it.
    const warpOp = op === "sum" || op === "mean" ? "sum" : undefined;
    result = blockCombine(f, accCt, "acc", combineOf(op), "red", warpOp);
    if (op === "mean") result = e.let(accCt, `${result} / (${accCt})${f.inner}`, "res");
  }
  // Output coords: kept axes in order (with size-1 axes where dims are kept).
  const outCoords: string[] = [];
  const keep = layer.type === "adaptive_pooling" || layer.keepDims;
  for (let a = 0; a < rank; a++) {
    if (!axes.includes(a)) outCoords.push(f.rowCoords[a]);
    else if (keep) outCoords.push("0");
  }
  e.block("if (active && ty == 0)", () =>
    e.store(layer.output, outCoords, result, arg ? "int64" : out.logicalDType),
  );
  return finish(name, f);
}

/**
 * A rows kernel's input and output through its fused element layers (fuse/steps.ts RowsFusion): `load` gives the
 * input at coordinates (loaded, or computed by the prologue), `storeShared` stores the prologue values read
 * elsewhere (call it in exactly one pass, so each element is written once), `store` writes the layer's value (an
 * expression of compute type `ct`) through the epilogue.
 */
function fusedIO(
  e: Emitter,
  ctx: CodegenContext,
  input: string,
  output: string,
  fusion: Partial<RowsFusion>,
) {
  const prologue = fusion.prologue ?? [];
  const epilogue = fusion.epilogue ?? [];
  const pro = new ElementEmitter(e, new Map(prologue.map((l) => [l.output, l] as const)), ctx);
  const epi = new ElementEmitter(e, new Map(epilogue.map((l) => [l.output, l] as const)), ctx);
  const final = epilogue.length ? epilogue[epilogue.length - 1].output : output;
  /** Stores lane values of `t` at the lanes' coords: one wide store in vector mode where `t` allows, else one by one. */
  const storeLanes = (t: string, lanes: string[][], axis: number, values: readonly string[]) => {
    const dt = ctx.info(t).logicalDType;
    if (e.vec && e.vectorizable(t, axis)) e.storeVector(t, lanes[0], values, dt);
    else for (const [j, v] of values.entries()) e.store(t, lanes[j], v, dt);
  };
  const io = {
    load: (c: string[]) => (prologue.length ? pro.value(input, c) : e.load(input, c)),
    storeShared(c: string[]): void {
      for (const t of fusion.stores ?? []) e.store(t, c, pro.value(t, c), ctx.info(t).logicalDType);
    },
    store(c: string[], y: string, ct: string): void {
      if (epilogue.length === 0) {
        e.store(output, c, y, ctx.info(output).logicalDType);
        return;
      }
      // The layer's value is the epilogue's input at these coordinates.
      e.memoSet(`${output}@${c.join(",")}`, e.let(ct, y, "y"));
      e.store(final, c, epi.value(final, c), ctx.info(final).logicalDType);
    },
    storeSharedLanes(lanes: string[][], axis: number): void {
      for (const t of fusion.stores ?? [])
        storeLanes(
          t,
          lanes,
          axis,
          lanes.map((c) => pro.value(t, c)),
        );
    },
    storeLanes(lanes: string[][], axis: number, ys: readonly string[], ct: string): void {
      if (epilogue.length === 0) {
        storeLanes(output, lanes, axis, ys);
        return;
      }
      for (const [j, c] of lanes.entries()) e.memoSet(`${output}@${c.join(",")}`, e.let(ct, ys[j], "y"));
      storeLanes(
        final,
        lanes,
        axis,
        lanes.map((c) => epi.value(final, c)),
      );
    },
  };
  return io satisfies LaneIO;
}

/** Softmax on the register path (rows-warp.ts): max, then the exponentials (kept in place of x) and their sum. */
function registerSoftmax(
  name: string,
  f: Frame,
  layer: SoftmaxLayer,
  reg: RegisterRow,
  io: LaneIO,
): GeneratedKernel {
  const e = f.e;
  e.line(`float m = ${floatLiteral(Number.NEGATIVE_INFINITY)};`);
  reg.each((v) => e.line(`m = fmax(m, ${v});`));
  const mx = blockCombine(f, "float", "m", (a, b) => `fmax(${a}, ${b})`, "max", "max");
  const m0 = e.let("float", `${mx} == ${floatLiteral(Number.NEGATIVE_INFINITY)} ? 0.0f : ${mx}`, "m");
  e.line("float s = 0;");
  reg.each((v) => e.line(layer.log ? `s += exp(${v} - ${m0});` : `${v} = exp(${v} - ${m0}); s += ${v};`));
  const sum = blockCombine(f, "float", "s", (a, b) => `${a} + ${b}`, "sum", "sum");
  const ls = layer.log ? e.let("float", `log(${sum})`, "ls") : "";
  reg.store(io, (v) => (layer.log ? `${v} - ${m0} - ${ls}` : `${v} / ${sum}`));
  return finish(name, f);
}

/**
 * Layer or RMS norm on the register path (rows-warp.ts): the same two passes (mean, squared deviations) over
 * registers. Undefined where the path does not apply, and for group norm (its statistics are per group of a row).
 */
function registerNorm(
  name: string,
  f: Frame,
  ctx: CodegenContext,
  layer: NormalizationLayer,
  inner: readonly number[],
  fusion: Partial<RowsFusion>,
  io: LaneIO,
  scaleCoords: (c: string[]) => string[],
): GeneratedKernel | undefined {
  if (layer.kind === "group") return undefined;
  const [input, scale, bias] = layer.inputs;
  const preload = f.knobs.preload ? { tensors: [scale, bias], coords: scaleCoords } : undefined;
  const reg = registerRow(f, ctx, input, inner, layer.output, fusion, [scale, bias], io, preload);
  if (!reg) return undefined;
  const e = f.e;
  let mean = "0.0f";
  let sq = "";
  if (layer.kind !== "rms" && f.knobs.onePass) {
    ({ mean, sq } = onePassMoments(f, reg));
  } else if (layer.kind !== "rms") {
    e.line("float s = 0;");
    reg.each((v) => e.line(`s += ${v};`));
    const sum = blockCombine(f, "float", "s", (a, b) => `${a} + ${b}`, "sum", "sum");
    mean = e.let("float", `${sum} / (float)${f.inner}`, "mean");
  }
  if (layer.kind === "rms" || !f.knobs.onePass) {
    e.line("float q = 0;");
    reg.each((v) => e.line(`{ const float d = ${v} - ${mean}; q += d * d; }`));
    sq = blockCombine(f, "float", "q", (a, b) => `${a} + ${b}`, "sq", "sum");
  }
  const rstd = e.let(
    "float",
    `1.0f / sqrt(${sq} / (float)${f.inner} + ${floatLiteral(layer.epsilon)})`,
    "rstd",
  );
  reg.store(io, (v, c, i) => {
    const pre = (t: string) => reg.preloaded.get(t);
    const sc = pre(scale) ? `${pre(scale)}[${i}]` : e.load(scale, scaleCoords(c));
    const bi = pre(bias) ? `${pre(bias)}[${i}]` : e.load(bias, scaleCoords(c));
    return `(${v} - ${mean}) * ${rstd} * (float)${sc} + (float)${bi}`;
  });
  return finish(name, f);
}

/**
 * TORCHC_ROWS_ONEPASS: the row's sum and sum of squares in one pass over the registers, reduced by two independent
 * warp reductions; the variance is E[x²] − mean² (clamped at 0). Returns the mean and the sum of squared deviations.
 */
function onePassMoments(f: Frame, reg: RegisterRow): { mean: string; sq: string } {
  const e = f.e;
  e.line("float s = 0, q2 = 0;");
  reg.each((v) => e.line(`{ const float x = ${v}; s += x; q2 += x * x; }`));
  const sum = blockCombine(f, "float", "s", (a, b) => `${a} + ${b}`, "sum", "sum");
  const sum2 = blockCombine(f, "float", "q2", (a, b) => `${a} + ${b}`, "sq", "sum");
  const mean = e.let("float", `${sum} / (float)${f.inner}`, "mean");
  const sq = e.let("float", `fmaxf(${sum2} - ${sum} * ${mean}, 0.0f)`, "sqd");
  return { mean, sq };
}

/** Softmax or log-softmax along one axis; with `fusion`, element layers before and after it as for layer norm. */
export function generateSoftmaxKernel(
  name: string,
  layer: SoftmaxLayer,
  ctx: CodegenContext,
  fusion: Partial<RowsFusion> = {},
): GeneratedKernel {
  const input = layer.inputs[0];
  const x = ctx.info(input);
  const rank = x.shape.length;
  const axis = rank === 0 ? 0 : layer.axis;
  const spec: RowSpec = {
    input,
    outer: Array.from({ length: rank }, (_, a) => a).filter((a) => a !== axis),
    inner: rank === 0 ? [] : [axis],
  };
  const f = frame(ctx, spec, [], true);
  const e = f.e;
  const ct = x.logicalDType === "float64" ? "double" : "float";
  const io = fusedIO(e, ctx, input, layer.output, fusion);
  const reg = registerRow(f, ctx, input, spec.inner, layer.output, fusion, [], io);
  if (reg) return registerSoftmax(name, f, layer, reg, io);
  e.line(`${ct} m = ${floatLiteral(Number.NEGATIVE_INFINITY, ct)};`);
  rowLoop(f, ctx, spec, (c) => {
    e.line("if (!active) break;");
    io.storeShared(c);
    e.line(`m = fmax(m, (${ct})${io.load(c)});`);
  });
  const mx = blockCombine(f, ct, "m", (a, b) => `fmax(${a}, ${b})`, "max", "max");
  const m0 = e.let(ct, `${mx} == ${floatLiteral(Number.NEGATIVE_INFINITY, ct)} ? (${ct})0 : ${mx}`, "m");
  e.line(`${ct} s = 0;`);
  rowLoop(f, ctx, spec, (c) => {
    e.line("if (!active) break;");
    e.line(`s += exp((${ct})${io.load(c)} - ${m0});`);
  });
  const sum = blockCombine(f, ct, "s", (a, b) => `${a} + ${b}`, "sum", "sum");
  const ls = e.let(ct, `log(${sum})`, "ls");
  rowLoop(f, ctx, spec, (c) => {
    e.line("if (!active) break;");
    const v = io.load(c);
    io.store(c, layer.log ? `(${ct})${v} - ${m0} - ${ls}` : `exp((${ct})${v} - ${m0}) / ${sum}`, ct);
  });
  return finish(name, f);
}

/**
 * Layer or group normalization. With `fusion` (layer norm only), the row's input is computed from the prologue's
 * members at each element (stored where `stores` says, on the first pass) and the normalized value goes through
 * the epilogue before it is stored: a pre-norm block's residual add, norm and casts in one kernel. Statistics
 * and the affine map are computed in float32 (float64 for float64 inputs) whatever the storage.
 */
export function generateNormalizationKernel(
  name: string,
  layer: NormalizationLayer,
  ctx: CodegenContext,
  fusion: Partial<RowsFusion> = {},
): GeneratedKernel {
  const [input, scale, bias] = layer.inputs;
  if ((fusion.prologue?.length || fusion.epilogue?.length) && layer.kind === "group")
    throw new Error(`normalization '${layer.name}': group norm takes no fused layers`);
  const x = ctx.info(input);
  const rank = x.shape.length;
  const ct = x.logicalDType === "float64" ? "double" : "float";
  let spec: RowSpec;
  // Group norm: rows are (n, group); a row's elements are (channel within group, spatial…).
  let channelOf: (c: string[]) => string;
  if (layer.kind !== "group") {
    spec = {
      input,
      outer: Array.from({ length: layer.beginAxis }, (_, a) => a),
      inner: Array.from({ length: rank - layer.beginAxis }, (_, i) => layer.beginAxis + i),
    };
    channelOf = () => "";
  } else {
    spec = { input, outer: [0], inner: Array.from({ length: rank - 1 }, (_, i) => i + 1) };
    channelOf = (c) => c[1];
  }
  const groups = layer.kind === "group" ? layer.numGroups : 1;
  const cg = layer.kind === "group" ? x.shape[1] / groups : 1;
  const f = frame(ctx, spec, [], layer.kind !== "group");
  const e = f.e;
  const scaleCoords = (c: string[]) => (layer.kind !== "group" ? c.slice(layer.beginAxis) : [channelOf(c)]);
  const io = fusedIO(e, ctx, input, layer.output, fusion);
  const registered = registerNorm(name, f, ctx, layer, spec.inner, fusion, io, scaleCoords);
  if (registered) return registered;
  const load = io.load;
  // For group norm, a "row" of the frame is one sample; each group is handled by looping over groups.
  const innerCount = layer.kind === "group" ? f.inner / groups : f.inner;
  const body = (g: string | null) => {
    const inGroup = (c: string[]) => (g === null ? "true" : `((${c[1]}) / ${cg} == ${g})`);
    // RMSNorm has no mean pass: its first pass sums squares (and stores the fused prologue's values).
    const rms = layer.kind === "rms";
    let mean = `(${ct})0`;
    if (!rms) {
      e.line(`${ct} s = 0;`);
      rowLoop(f, ctx, spec, (c) => {
        e.line("if (!active) break;");
        io.storeShared(c);
        e.line(`if (${inGroup(c)}) s += (${ct})${load(c)};`);
      });
      const sum = blockCombine(f, ct, "s", (a, b) => `${a} + ${b}`, "sum", "sum");
      mean = e.let(ct, `${sum} / (${ct})${innerCount}`, "mean");
    }
    e.line(`${ct} q = 0;`);
    rowLoop(f, ctx, spec, (c) => {
      e.line("if (!active) break;");
      if (rms) io.storeShared(c);
      e.line(`if (${inGroup(c)}) { const ${ct} d = (${ct})${load(c)} - ${mean}; q += d * d; }`);
    });
    const sq = blockCombine(f, ct, "q", (a, b) => `${a} + ${b}`, "sq", "sum");
    const rstd = e.let(
      ct,
      `(${ct})1 / sqrt(${sq} / (${ct})${innerCount} + (${ct})${floatLiteral(layer.epsilon, ct)})`,
      "rstd",
    );
    rowLoop(f, ctx, spec, (c) => {
      e.line("if (!active) break;");
      e.block(g === null ? "" : `if (${inGroup(c)})`, () => {
        const v = load(c);
        const sc = e.load(scale, scaleCoords(c));
        const bi = e.load(bias, scaleCoords(c));
        io.store(c, `((${ct})${v} - ${mean}) * ${rstd} * (${ct})${sc} + (${ct})${bi}`, ct);
      });
    });
  };
  if (layer.kind !== "group") body(null);
  else e.block(`for (int g = 0; g < ${groups}; ++g)`, () => body("g"));
  return finish(name, f);
}

export type { DType };

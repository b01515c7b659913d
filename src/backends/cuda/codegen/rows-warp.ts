/**
 * The register path of a warp-per-row rows kernel (codegen/rows.ts): when a row is one contiguous run of memory (its
 * one non-unit axis is the innermost, unit-stride axis of everything the kernel loads and stores at the row's
 * coordinates), each lane moves its share of the row with 16-byte loads (uint4: 8 halves or 4 floats) once, keeps
 * it in registers as float, and every statistic (mean, variance, max, sum of exponentials) is a pass over those
 * registers and a warp shuffle: the row is read from global memory once and written once, with 16-byte stores.
 *
 * Chunk c (V consecutive elements, V = 16 bytes of the narrowest storage touched) belongs to lane c % 32; lane l
 * holds chunks l, l + 32, …, so a warp's load of one chunk index is 512 contiguous bytes. A row of 768 halves is 96
 * chunks, 3 per lane; a row of 192 halves is 24 chunks, lanes 24…31 hold none (a whole warp still takes the row:
 * splitting a warp between rows would need segmented shuffles, and the kernel is bound by memory, not lanes).
 *
 * Everything a rows step fuses is supported: prologue members are computed at the lanes' coordinates with the
 * Emitter's vector mode (their operands load 16 bytes at a time where they are contiguous along the row, one element
 * at a time where they are not, e.g. broadcasts), the stored prologue members (the residual sum) and the epilogue's
 * result are written with 16-byte stores. Anything not certainly contiguous and 16-byte aligned (a strided view
 * whose offset is not a multiple of 16 bytes, a row spread over several axes, a stored tensor that is not unit
 * stride along the row) keeps the scalar path. On by default since H100 session 11 (transformer-fusion, swin-ops
 * and models right with it; ViT-B/16 batch 64 rows 1.138 → 0.677 ms); `TORCHC_ROWS_VECTOR=0` keeps the scalar
 * path everywhere, for A/B timing.
 */
import { DTYPE_BYTES } from "../../../ir/dtype.js";
import type { Layer } from "../../../network/layers/index.js";
import type { RowsFusion } from "../fuse/steps.js";
import type { CodegenContext } from "./element.js";
import { type Emitter, laneCoord } from "./emitter.js";

/** What the register path reads of the rows frame. */
export interface WarpRowFrame {
  readonly e: Emitter;
  /** Logical coords of the input for the thread's row (outer axes set, inner axes "0"). */
  readonly rowCoords: readonly string[];
  readonly TY: number;
  readonly inner: number;
  readonly alongRow: boolean;
}

/** Tensors loaded in the load pass besides the row (TORCHC_ROWS_PRELOAD: a norm's weight and bias). */
export interface Preload {
  readonly tensors: readonly string[];
  /** The tensor's coords at an element's input coords. */
  coords(c: string[]): string[];
}

/** The rows kernel's fused input and output, lane by lane (rows.ts fusedIO). */
export interface LaneIO {
  /** The input at coords (loaded, or computed by the prologue). */
  load(c: string[]): string;
  /** Stores the prologue members read elsewhere at the V lanes' coords. */
  storeSharedLanes(lanes: string[][], axis: number): void;
  /** Stores the layer's lane values (compute type `ct`) through the epilogue. */
  storeLanes(lanes: string[][], axis: number, ys: readonly string[], ct: string): void;
}

/** A row held in registers: `xr[k·V + j]` is element (lane + 32k)·V + j of the row, as float. */
export interface RegisterRow {
  readonly V: number;
  /** Chunks per lane. */
  readonly K: number;
  /** The register array. */
  readonly xr: string;
  /** Emits `body(x)` for every element this lane holds (x an lvalue), skipping chunks past the row's end. */
  each(body: (x: string) => void): void;
  /** Float register arrays of the preloaded tensors (same indexing as `xr`), by tensor. */
  readonly preloaded: ReadonlyMap<string, string>;
  /**
   * The output pass: `y(x, coords, i)` for every element this lane holds (`i` its index in the register arrays),
   * stored through `io` with wide stores.
   */
  store(io: LaneIO, y: (x: string, coords: string[], i: number) => string): void;
}

/** Tensors a rows kernel reads from memory at (a broadcast of) the row's coordinates: fused layers' operands. */
function leaves(layers: readonly Layer[], members: ReadonlySet<string>, ctx: CodegenContext): string[] {
  const out = new Set<string>();
  for (const l of layers)
    for (const t of l.inputs) if (!members.has(t) && ctx.scalarConstant(t) === undefined) out.add(t);
  return [...out];
}

/** Where the register path applies: the row's axis and the lanes per 16-byte vector. */
interface RegisterPlan {
  readonly axis: number;
  readonly V: number;
}

/** The register path's conditions (the module comment); undefined where the scalar loops must stay. */
function registerPlan(
  f: WarpRowFrame,
  ctx: CodegenContext,
  input: string,
  inner: readonly number[],
  output: string,
  fusion: Partial<RowsFusion>,
  reads: readonly string[],
): RegisterPlan | undefined {
  if (process.env.TORCHC_ROWS_VECTOR === "0") return undefined;
  // A warp per row, its lanes along the row; or (TORCHC_ROWS_LANES) an aligned group of 4, 8 or 16 lanes per row.
  const lanesOk = f.TY === 32 || (f.TY >= 4 && f.TY < 32 && 32 % f.TY === 0);
  if (!lanesOk || !f.alongRow || f.inner === 0) return undefined;
  const x = ctx.info(input);
  if (x.logicalDType === "float64") return undefined;
  const axes = inner.filter((a) => x.shape[a] !== 1);
  if (axes.length !== 1) return undefined;
  const axis = axes[0];
  const prologue = fusion.prologue ?? [];
  const epilogue = fusion.epilogue ?? [];
  const final = epilogue.length ? epilogue[epilogue.length - 1].output : output;
  const written = [final, ...(fusion.stores ?? [])];
  if (written.some((t) => ctx.info(t).shape.join() !== x.shape.join())) return undefined;
  const members = new Set([output, ...prologue.map((l) => l.output), ...epilogue.map((l) => l.output)]);
  const loaded = [
    ...(prologue.length ? [] : [input]),
    ...leaves([...prologue, ...epilogue], members, ctx),
    ...reads,
  ];
  const touched = [...new Set([...written, ...loaded])];
  const bytes = touched.map((t) => DTYPE_BYTES[ctx.info(t).storage]).filter((b) => b === 2 || b === 4);
  const V = 16 / Math.min(...bytes, 4);
  // At most 32 floats a lane (rows.ts WARP_ROW_MAX): the row stays in registers; 64 with fewer lanes a row.
  const floats = Math.ceil(f.inner / V / f.TY) * V;
  if (f.inner % V !== 0 || f.inner > 1024 || floats > (f.TY === 32 ? 32 : 64)) return undefined;
  // Certain 16-byte alignment: every row start is a multiple of V elements from its tensor's start (vectorizable),
  // and every tensor's start is 16-byte aligned (arena slots and allocations are 256-byte aligned; a strided view
  // adds its element offset).
  for (const t of touched) {
    const i = ctx.info(t);
    if (((i.offset ?? 0) * DTYPE_BYTES[i.storage]) % 16 !== 0) return undefined;
  }
  const e = f.e;
  e.vec = { base: "jb", width: V };
  const wide = [...written, ...(prologue.length ? [] : [input])].every((t) => e.vectorizable(t, axis));
  e.vec = undefined;
  return wide ? { axis, V } : undefined;
}

/** Declares the row's register array (and the preloaded tensors'): K chunks of V floats a lane, L lanes a row. */
function registers(e: Emitter, L: number, V: number, K: number, preload: Preload | undefined) {
  const xr = e.fresh("xr");
  const who = L === 32 ? "a warp per row" : `${L} lanes per row`;
  e.line(`// rows: register path, ${who}, ${V}-element (16-byte) vectors, ${K} per lane`);
  e.line(`float ${xr}[${K * V}] = {};`);
  const preloaded = new Map((preload?.tensors ?? []).map((t) => [t, e.fresh("pr")] as const));
  for (const a of preloaded.values()) e.line(`float ${a}[${K * V}] = {};`);
  return { xr, preloaded };
}

/**
 * The register path for a warp-per-row kernel over `input` (row = `inner` axes), or undefined where it does not
 * apply (then the caller keeps its scalar loops). `reads`: the layer's own operands at the row's coordinates
 * (a norm's weight and bias). Emits the load pass (and the prologue's stores) when it applies.
 */
export function registerRow(
  f: WarpRowFrame,
  ctx: CodegenContext,
  input: string,
  inner: readonly number[],
  output: string,
  fusion: Partial<RowsFusion>,
  reads: readonly string[],
  io: LaneIO,
  preload?: Preload,
): RegisterRow | undefined {
  const plan = registerPlan(f, ctx, input, inner, output, fusion, reads);
  if (!plan) return undefined;
  const { axis, V } = plan;
  const e = f.e;
  const L = f.TY;
  const chunks = f.inner / V;
  const K = Math.ceil(chunks / L);
  const lane = e.let("int", "ty", "lane");
  const bases = Array.from({ length: K }, (_, k) =>
    e.let(e.idx, k === 0 ? `(${e.idx})${lane} * ${V}` : `(${e.idx})(${lane} + ${L * k}) * ${V}`, "jb"),
  );
  // Chunk k is past the row's end on some lanes only when the row is not a whole number of row-wide chunks.
  const partial = (k: number) => L * (k + 1) > chunks;
  const guard = (k: number, active: boolean) =>
    [active ? "active" : "", partial(k) ? `${bases[k]} < ${f.inner}` : ""].filter(Boolean).join(" && ");
  const { xr, preloaded } = registers(e, L, V, K, preload);
  /** The V lanes' input coords of chunk k. */
  const lanesOf = (k: number) =>
    Array.from({ length: V }, (_, j) => f.rowCoords.map((c, a) => (a === axis ? laneCoord(bases[k], j) : c)));
  const overChunks = (active: boolean, body: (k: number) => void) => {
    for (let k = 0; k < K; k++) {
      const g = guard(k, active);
      e.block(g ? `if (${g})` : "", () => {
        e.vec = { base: bases[k], width: V };
        try {
          body(k);
        } finally {
          e.vec = undefined;
        }
      });
    }
  };
  // The load pass: the prologue's stored members, then the input, lane by lane (memoized between the two).
  overChunks(true, (k) => {
    const lanes = lanesOf(k);
    io.storeSharedLanes(lanes, axis);
    lanes.forEach((c, j) => {
      e.line(`${xr}[${k * V + j}] = (float)${io.load(c)};`);
    });
    for (const [t, a] of preloaded)
      lanes.forEach((c, j) => {
        e.line(`${a}[${k * V + j}] = (float)${e.load(t, preload!.coords(c))};`);
      });
  });
  return {
    V,
    K,
    xr,
    preloaded,
    each(body) {
      for (let k = 0; k < K; k++) {
        const g = guard(k, false);
        e.block(g ? `if (${g})` : "", () => {
          e.line("#pragma unroll");
          e.block(`for (int j = 0; j < ${V}; ++j)`, () => body(`${xr}[${k * V} + j]`));
        });
      }
    },
    store(out, y) {
      overChunks(true, (k) => {
        const lanes = lanesOf(k);
        const ys = lanes.map((c, j) => y(`${xr}[${k * V + j}]`, c, k * V + j));
        out.storeLanes(lanes, axis, ys, "float");
      });
    },
  };
}

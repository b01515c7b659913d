/**
 * Split-K variants of cuBLASLt's heuristic answers, for the timed choice (lt-timed-choice.ts) to weigh against
 * them. Why: a small-M GEMM with a large K gets few CTAs: ViT-B/16 batch 1's fc2 (197×768×3072) has ~12 output
 * tiles of 128×128 for an H100's 132 SMs, each walking K = 3072 alone (10.3 µs in a graph, for a ~2 µs floor). Cut
 * K in s parts and s× more CTAs share the walk, their partial sums added by a reduction scheme the algorithm
 * supports.
 *
 * Each variant is a copy of a heuristic answer's 64 bytes with SPLITK_NUM and REDUCTION_SCHEME set, kept only when
 * cublasLtMatmulAlgoCheck accepts it for this very descriptor and layouts (which also gives the workspace it needs:
 * over the maximum, it is dropped). A split-K algorithm with the bias/GELU epilogue and a residual (beta = 1, C) is
 * cuBLASLt's to keep correct once AlgoCheck accepts it; the GPU tests compare the engine's outputs with PyTorch's,
 * and scripts/gpu/lt-splitk-sweep.bench.ts checks every variant against the heuristic's first answer.
 *
 * The 64 bytes carry the whole configuration (cublasLt.h: the struct "can be trivially serialized and later
 * restored for use with the same version of cuBLAS library"), so a split-K choice goes through buildLtPlan's
 * `saved`, the plan cache (one file per cuBLASLt version) and the package (artifacts.ts keeps the algo's bytes and
 * its workspace bytes) as is. Which splits to try is a pure function of the geometry (splitKFactors).
 */
import {
  ALGO_CAP,
  ALGO_CONFIG,
  ALGO_CONFIG_BYTES,
  type AlgoConfigAttribute,
  CUBLASLT,
  type CublasLtApi,
  HEURISTIC_RESULT,
  LT_TILE_SHAPES,
  REDUCTION_SCHEME,
} from "../../../ffi/cublaslt.js";
import { CublasError, cublasStatusName } from "../../../ffi/status.js";
import type { OutNum, Ptr } from "../../../ffi/types.js";
import type { LtAlgo, LtPlan } from "./blaslt-plan.js";
import { checkInt, checkPtr, fail } from "./validate.js";

/** The four cuBLASLt calls used here (a fake table in tests). */
export type LtAlgoApi = Pick<
  CublasLtApi,
  | "cublasLtMatmulAlgoConfigSetAttribute"
  | "cublasLtMatmulAlgoConfigGetAttribute"
  | "cublasLtMatmulAlgoCapGetAttribute"
  | "cublasLtMatmulAlgoCheck"
>;

/** Split counts tried, smallest first. */
export const SPLITK_FACTORS: readonly number[] = [2, 3, 4, 6, 8, 12, 16];
/** Each part walks at least this much of K (shorter walks pay the reduction for little work). */
export const SPLITK_MIN_CHUNK = 256;
/** Reduction schemes by preference: in D itself (no second kernel), then partials in D's type, then in fp32. */
export const REDUCTION_PREFERENCE: readonly number[] = [
  REDUCTION_SCHEME.INPLACE,
  REDUCTION_SCHEME.OUTPUT_TYPE,
  REDUCTION_SCHEME.COMPUTE_TYPE,
];

/**
 * The split counts worth timing for a problem whose unsplit kernel has `tiles` CTAs: none once they fill a wave of
 * `sms`; else those with K/s ≥ SPLITK_MIN_CHUNK that bring tiles·s within half a wave to two waves (at least two
 * when the parts allow, the largest below that range added), the `max` closest to one full wave, ascending.
 */
export function splitKFactors(g: { tiles: number; k: number; sms: number }, max = 4): number[] {
  if (!(g.tiles > 0) || !(g.sms > 0) || g.tiles >= g.sms) return [];
  const allowed = SPLITK_FACTORS.filter((s) => g.k / s >= SPLITK_MIN_CHUNK);
  const picked = allowed.filter((s) => g.tiles * s >= g.sms / 2 && g.tiles * s <= 2 * g.sms);
  for (const s of allowed.filter((s) => g.tiles * s < g.sms / 2).reverse())
    if (picked.length < 2) picked.push(s);
  const fromOneWave = (s: number) => Math.abs(Math.log((g.tiles * s) / g.sms));
  return picked
    .sort((a, b) => fromOneWave(a) - fromOneWave(b))
    .slice(0, max)
    .sort((a, b) => a - b);
}

/** The first `count` schemes of REDUCTION_PREFERENCE that `mask` (ALGO_CAP.REDUCTION_SCHEME_MASK) allows. */
export function reductionSchemesFor(mask: number, count: number): number[] {
  return REDUCTION_PREFERENCE.filter((s) => (mask & s) !== 0).slice(0, count);
}

/** A row-major problem Y[M,N] = X[M,K]·op(W) (+ batch), and the device's SM count. */
export interface LtSplitKProblem {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly batch: number;
  readonly sms: number;
}

/**
 * CTAs of an unsplit kernel: from the tile shape when the tile id is one LT_TILE_SHAPES knows (cuBLASLt's D is N×M,
 * column-major), else from cuBLASLt's waves count (for its current `splitK`), else as 128×128 tiles.
 */
export function estimateTiles(p: LtSplitKProblem, tileId: number, waves: number, splitK: number): number {
  const shape = LT_TILE_SHAPES[tileId];
  if (!shape && waves > 0) return Math.max(1, Math.round((waves * p.sms) / Math.max(1, splitK)));
  const [rows, cols] = shape ?? [128, 128];
  return Math.ceil(p.n / rows) * Math.ceil(p.m / cols) * p.batch;
}

/** An algorithm's configuration (−1 where cuBLASLt would not say, e.g. an attribute newer than the library). */
export type LtAlgoConfig = Readonly<Record<AlgoConfigAttribute, number>>;

/** E.g. "algo 66 tile 20 stages 35 splitK 4 inplace": the sweep's and the logs' name of a configuration. */
export function describeLtAlgoConfig(c: LtAlgoConfig): string {
  const scheme =
    Object.entries(REDUCTION_SCHEME).find(([, v]) => v === c.REDUCTION_SCHEME)?.[0] ?? c.REDUCTION_SCHEME;
  const split = c.SPLITK_NUM > 1 ? ` splitK ${c.SPLITK_NUM} ${String(scheme).toLowerCase()}` : "";
  return `algo ${c.ID} tile ${c.TILE_ID} stages ${c.STAGES_ID}${split}`;
}

/** The configuration less its split: two algorithms alike here differ only in how K is cut. */
const baseKey = (c: LtAlgoConfig) =>
  [c.ID, c.TILE_ID, c.STAGES_ID, c.CTA_SWIZZLING, c.CUSTOM_OPTION, c.INNER_SHAPE_ID, c.CLUSTER_SHAPE_ID].join(
    "/",
  );
const fullKey = (c: LtAlgoConfig) => `${baseKey(c)}/${c.SPLITK_NUM}/${c.REDUCTION_SCHEME}`;

function checkAlgo(algo: unknown): Uint8Array {
  if (!(algo instanceof Uint8Array) || algo.byteLength !== HEURISTIC_RESULT.algoBytes)
    fail(`a cuBLASLt algorithm must be a Uint8Array of ${HEURISTIC_RESULT.algoBytes} bytes`);
  return algo;
}

const cell = (bytes: 2 | 4) => (bytes === 2 ? new Uint16Array(1) : new Uint32Array(1));

/** Every ALGO_CONFIG attribute of `algo`. */
export function readLtAlgoConfig(algo: Uint8Array, api: LtAlgoApi = CUBLASLT.fn): LtAlgoConfig {
  checkAlgo(algo);
  const out = {} as Record<AlgoConfigAttribute, number>;
  for (const name of Object.keys(ALGO_CONFIG) as AlgoConfigAttribute[]) {
    const bytes = ALGO_CONFIG_BYTES[name];
    const value = cell(bytes);
    const written: OutNum = [0];
    const rc = api.cublasLtMatmulAlgoConfigGetAttribute(algo, ALGO_CONFIG[name], value, bytes, written);
    out[name] = rc === 0 ? (name === "ID" ? new Int32Array(value.buffer)[0] : value[0]) : -1;
  }
  return out;
}

/** Whether `algo` can split K, and the reduction schemes it allows (0 when it cannot say). */
export function ltSplitKCaps(
  algo: Uint8Array,
  api: LtAlgoApi = CUBLASLT.fn,
): { splitK: boolean; schemes: number } {
  checkAlgo(algo);
  const read = (attr: number) => {
    const value = new Uint32Array(1);
    const rc = api.cublasLtMatmulAlgoCapGetAttribute(algo, attr, value, 4, [0]);
    return rc === 0 ? value[0] : 0;
  };
  return { splitK: read(ALGO_CAP.SPLITK_SUPPORT) !== 0, schemes: read(ALGO_CAP.REDUCTION_SCHEME_MASK) };
}

/** A copy of `algo` with `values` set; throws CublasError naming the attribute cuBLASLt refused. */
export function withLtAlgoConfig(
  algo: Uint8Array,
  values: Partial<Record<AlgoConfigAttribute, number>>,
  api: LtAlgoApi = CUBLASLT.fn,
): Uint8Array {
  const copy = checkAlgo(algo).slice();
  for (const [name, v] of Object.entries(values) as [AlgoConfigAttribute, number][]) {
    const bytes = ALGO_CONFIG_BYTES[name];
    const value = cell(bytes);
    value[0] = checkInt(name, v, 0, bytes === 2 ? 0xffff : 0xffffffff);
    const rc = api.cublasLtMatmulAlgoConfigSetAttribute(copy, ALGO_CONFIG[name], value, bytes);
    if (rc !== 0) throw new CublasError(`cublasLtMatmulAlgoConfigSetAttribute(${name})`, rc);
  }
  return copy;
}

/** cublasLtMatmulAlgoCheck of `algo` on the plan's descriptor and layouts (C = D's layout): status, needs. */
export function checkLtAlgo(
  handle: Ptr,
  plan: Pick<LtPlan, "desc" | "layouts">,
  algo: Uint8Array,
  api: LtAlgoApi = CUBLASLT.fn,
): { status: number; workspaceBytes: number; waves: number } {
  const [a, b, d] = plan.layouts;
  for (const [name, p] of [
    ["handle", handle],
    ["desc", plan.desc],
    ["A", a],
    ["B", b],
    ["D", d],
  ] as const)
    checkPtr(`cuBLASLt ${name}`, p);
  const result = new Uint8Array(HEURISTIC_RESULT.size);
  const status = api.cublasLtMatmulAlgoCheck(handle, plan.desc, a, b, d, d, checkAlgo(algo), result);
  const view = new DataView(result.buffer);
  return {
    status,
    workspaceBytes: Number(view.getBigUint64(HEURISTIC_RESULT.workspaceSize, true)),
    waves: view.getFloat32(HEURISTIC_RESULT.waves, true),
  };
}

/** How many variants to make: the engine's defaults keep its timing short; the sweep asks for more. */
export interface SplitKOptions {
  /** Distinct heuristic answers (their split set aside) to make variants of, in the heuristic's order. */
  readonly bases: number;
  /** Split counts per base (splitKFactors' `max`). */
  readonly splits: number;
  /** Reduction schemes per split count (reductionSchemesFor's `count`). */
  readonly schemes: number;
  /** Variants at most. */
  readonly max: number;
}

/** The engine's: at most 8 variants, two bases × four splits × one scheme. */
export const ENGINE_SPLITK: SplitKOptions = { bases: 2, splits: 4, schemes: 1, max: 8 };

/** A split-K variant: the algorithm, its workspace (AlgoCheck's), its configuration and the answer it came from. */
export interface LtSplitKAlgo extends LtAlgo {
  readonly config: LtAlgoConfig;
  /** Index of its base in the heuristic's answers. */
  readonly base: number;
}

interface SplitKBase {
  readonly index: number;
  readonly algo: Uint8Array;
  readonly config: LtAlgoConfig;
  /** The reduction schemes it allows (ALGO_CAP.REDUCTION_SCHEME_MASK). */
  readonly schemes: number;
}

/** The first `count` heuristic answers that can split K, distinct once their split is set aside. */
function splitKBases(heuristic: readonly LtAlgo[], count: number, api: LtAlgoApi): SplitKBase[] {
  const out: SplitKBase[] = [];
  const seen = new Set<string>();
  for (const [index, h] of heuristic.entries()) {
    if (out.length >= count) break;
    const config = readLtAlgoConfig(h.algo, api);
    const caps = ltSplitKCaps(h.algo, api);
    if (!caps.splitK || (caps.schemes & REDUCTION_SCHEME.MASK) === 0 || seen.has(baseKey(config))) continue;
    seen.add(baseKey(config));
    out.push({ index, algo: h.algo, config, schemes: caps.schemes });
  }
  return out;
}

/** `base` cut in `splitK` parts summed by `scheme`, or why cuBLASLt refused it. */
function splitKVariant(
  handle: Ptr,
  plan: Pick<LtPlan, "desc" | "layouts">,
  base: SplitKBase,
  cut: { splitK: number; scheme: number; maxWorkspace: number },
  api: LtAlgoApi,
): LtSplitKAlgo | string {
  const label = `${describeLtAlgoConfig(base.config)} cut ${cut.splitK}, scheme ${cut.scheme}`;
  let algo: Uint8Array;
  try {
    algo = withLtAlgoConfig(base.algo, { SPLITK_NUM: cut.splitK, REDUCTION_SCHEME: cut.scheme }, api);
  } catch (e) {
    if (e instanceof CublasError) return `${label}: ${e.call} ${e.statusName}`;
    throw e;
  }
  const check = checkLtAlgo(handle, plan, algo, api);
  if (check.status !== 0) return `${label}: cublasLtMatmulAlgoCheck ${cublasStatusName(check.status)}`;
  if (check.workspaceBytes > cut.maxWorkspace)
    return `${label}: needs ${check.workspaceBytes} bytes of workspace, over ${cut.maxWorkspace}`;
  return {
    algo,
    workspaceBytes: check.workspaceBytes,
    config: readLtAlgoConfig(algo, api),
    base: base.index,
  };
}

/**
 * Split-K variants of the first `options.bases` distinct heuristic answers that can split K, for the problem `p`
 * planned as `plan` (its descriptor and layouts, as the heuristic saw them): the splits splitKFactors gives for
 * each base's tile count, each with its preferred reduction schemes, each accepted by cublasLtMatmulAlgoCheck and
 * within `maxWorkspace`, none a configuration the heuristic already answered. `dropped` says why each refused one
 * was (its status name).
 */
export function ltSplitKCandidates(
  handle: Ptr,
  plan: Pick<LtPlan, "desc" | "layouts">,
  heuristic: readonly LtAlgo[],
  p: LtSplitKProblem,
  maxWorkspace: number,
  options: SplitKOptions = ENGINE_SPLITK,
  api: LtAlgoApi = CUBLASLT.fn,
): { candidates: LtSplitKAlgo[]; dropped: string[] } {
  for (const key of ["m", "n", "k", "batch", "sms"] as const) checkInt(`problem.${key}`, p[key], 1);
  const seen = new Set(heuristic.map((h) => fullKey(readLtAlgoConfig(h.algo, api))));
  const candidates: LtSplitKAlgo[] = [];
  const dropped: string[] = [];
  for (const base of splitKBases(heuristic, options.bases, api)) {
    const c = base.config;
    const tiles = estimateTiles(p, c.TILE_ID, checkLtAlgo(handle, plan, base.algo, api).waves, c.SPLITK_NUM);
    for (const splitK of splitKFactors({ tiles, k: p.k, sms: p.sms }, options.splits))
      for (const scheme of reductionSchemesFor(base.schemes, options.schemes)) {
        if (candidates.length >= options.max) return { candidates, dropped };
        const v = splitKVariant(handle, plan, base, { splitK, scheme, maxWorkspace }, api);
        if (typeof v === "string") dropped.push(v);
        else if (!seen.has(fullKey(v.config))) {
          seen.add(fullKey(v.config));
          candidates.push(v);
        }
      }
  }
  return { candidates, dropped };
}

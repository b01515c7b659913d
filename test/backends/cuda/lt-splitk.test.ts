// Split-K variants of cuBLASLt's heuristic answers (src/backends/cuda/device/blaslt-splitk.ts): which splits the
// geometry asks for, the attribute and enum encoding (through a fake table of the four cuBLASLt calls that keeps the
// configuration in the algorithm's own bytes), and which variants survive cublasLtMatmulAlgoCheck and the workspace.
import { describe, expect, it } from "vitest";
import {
  checkLtAlgo,
  describeLtAlgoConfig,
  ENGINE_SPLITK,
  estimateTiles,
  type LtAlgoApi,
  ltSplitKCandidates,
  ltSplitKCaps,
  readLtAlgoConfig,
  reductionSchemesFor,
  SPLITK_MIN_CHUNK,
  splitKFactors,
  withLtAlgoConfig,
} from "../../../src/backends/cuda/device/blaslt-splitk.js";
import { DeviceArgumentError } from "../../../src/backends/cuda/device/validate.js";
import {
  ALGO_CAP,
  ALGO_CONFIG,
  ALGO_CONFIG_BYTES,
  HEURISTIC_RESULT,
  LT_TILE_SHAPES,
  REDUCTION_SCHEME,
} from "../../../src/ffi/cublaslt.js";

const H100_SMS = 132;
const { INPLACE, COMPUTE_TYPE, OUTPUT_TYPE } = REDUCTION_SCHEME;

describe("which splits to try", () => {
  const splits = (tiles: number, k: number, max?: number) => splitKFactors({ tiles, k, sms: H100_SMS }, max);

  it("ViT-B/16 b1 fc2 (197×768×3072): 12 tiles of 128×128 → 6, 8, 12 parts (72–144 CTAs)", () => {
    expect(splits(12, 3072)).toEqual([6, 8, 12]);
    // 64×64 tiles: 48 CTAs → 96, 144, 192
    expect(splits(48, 3072)).toEqual([2, 3, 4]);
    expect(splits(24, 3072)).toEqual([3, 4, 6, 8]);
    expect(splits(24, 3072, 2)).toEqual([4, 6]);
  });

  it("BERT-base b1 fc2 (128×768×3072): 6 tiles → 12 parts, and 8 (the most below half a wave)", () => {
    expect(splits(6, 3072)).toEqual([8, 12]);
  });

  it("K = 768 cuts in at most 3 parts; K = 192 (DeiT-tiny's qkv) not at all", () => {
    expect(splits(12, 768)).toEqual([2, 3]);
    expect(splits(36, 768)).toEqual([2, 3]);
    expect(splits(4, 192)).toEqual([]);
  });

  it("nothing once the tiles fill the SMs (batch 64) or for a degenerate geometry", () => {
    expect(splits(H100_SMS, 3072)).toEqual([]);
    expect(splits(594, 3072)).toEqual([]);
    expect(splits(0, 3072)).toEqual([]);
    expect(splitKFactors({ tiles: 12, k: 3072, sms: 0 })).toEqual([]);
  });

  it("every answer: distinct, ascending, parts of ≥ 256, at most two waves, at most `max`", () => {
    for (const k of [256, 512, 768, 1024, 3072, 4096, 11008])
      for (let tiles = 1; tiles < H100_SMS; tiles += 7)
        for (const max of [1, 2, 4]) {
          const s = splits(tiles, k, max);
          expect(s.length).toBeLessThanOrEqual(max);
          expect([...new Set(s)].sort((a, b) => a - b)).toEqual(s);
          for (const x of s) {
            expect(k / x).toBeGreaterThanOrEqual(SPLITK_MIN_CHUNK);
            expect(tiles * x).toBeLessThanOrEqual(2 * H100_SMS);
          }
        }
  });

  it("reduction schemes: in place, then partials in D's type, then in fp32, as the mask allows", () => {
    expect(reductionSchemesFor(REDUCTION_SCHEME.MASK, 1)).toEqual([INPLACE]);
    expect(reductionSchemesFor(REDUCTION_SCHEME.MASK, 3)).toEqual([INPLACE, OUTPUT_TYPE, COMPUTE_TYPE]);
    expect(reductionSchemesFor(COMPUTE_TYPE | OUTPUT_TYPE, 2)).toEqual([OUTPUT_TYPE, COMPUTE_TYPE]);
    expect(reductionSchemesFor(COMPUTE_TYPE, 3)).toEqual([COMPUTE_TYPE]);
    expect(reductionSchemesFor(0, 3)).toEqual([]);
  });

  it("tiles: from the tile id (D is N×M), else cuBLASLt's waves, else 128×128", () => {
    const vit = { m: 197, n: 768, k: 3072, batch: 1, sms: H100_SMS };
    expect(estimateTiles(vit, 20, 0, 1)).toBe(12); // 128×128
    expect(estimateTiles(vit, 18, 0, 1)).toBe(24); // 128×64: 6 × 4
    expect(estimateTiles({ ...vit, batch: 3 }, 15, 0.1, 1)).toBe(12 * 4 * 3); // 64×64, tile id wins
    expect(estimateTiles(vit, 0, 12 / H100_SMS, 1)).toBe(12);
    expect(estimateTiles(vit, 500, 96 / H100_SMS, 8)).toBe(12); // an unknown tile id split 8 ways
    expect(estimateTiles(vit, 0, 0, 1)).toBe(12);
  });
});

describe("cuBLASLt enums (cublasLt.h, CUDA 12)", () => {
  it("has the configuration, capability and reduction values", () => {
    expect(ALGO_CONFIG).toMatchObject({
      ID: 0,
      TILE_ID: 1,
      SPLITK_NUM: 2,
      REDUCTION_SCHEME: 3,
      STAGES_ID: 6,
    });
    expect(ALGO_CONFIG).toMatchObject({
      CTA_SWIZZLING: 4,
      CUSTOM_OPTION: 5,
      INNER_SHAPE_ID: 7,
      CLUSTER_SHAPE_ID: 8,
    });
    expect(ALGO_CONFIG_BYTES).toMatchObject({ SPLITK_NUM: 4, REDUCTION_SCHEME: 4, INNER_SHAPE_ID: 2 });
    expect(ALGO_CAP).toMatchObject({ SPLITK_SUPPORT: 0, REDUCTION_SCHEME_MASK: 1, EPILOGUE_MASK: 12 });
    expect(REDUCTION_SCHEME).toEqual({ NONE: 0, INPLACE: 1, COMPUTE_TYPE: 2, OUTPUT_TYPE: 4, MASK: 7 });
    expect(LT_TILE_SHAPES[20]).toEqual([128, 128]);
    expect(LT_TILE_SHAPES[18]).toEqual([128, 64]);
    expect(LT_TILE_SHAPES[35]).toEqual([256, 32]);
    expect(HEURISTIC_RESULT).toMatchObject({ algoBytes: 64, workspaceSize: 64, waves: 76 });
  });
});

/** Where the fake keeps configuration attribute `attr` in the 64 algorithm bytes (little-endian). */
const at = (attr: number) => 8 + 4 * attr;
const bytesOf = (v: ArrayBufferView) => [...new Uint8Array(v.buffer, v.byteOffset, v.byteLength)];
const width = (attr: number) =>
  ALGO_CONFIG_BYTES[
    (Object.keys(ALGO_CONFIG) as (keyof typeof ALGO_CONFIG)[]).find((k) => ALGO_CONFIG[k] === attr)!
  ];

interface FakeOptions {
  /** Capabilities by algorithm id: [SPLITK_SUPPORT, REDUCTION_SCHEME_MASK]. */
  readonly caps: Record<number, readonly [number, number]>;
  /** AlgoCheck's status for a configuration (0 default). */
  readonly check?: (splitK: number, scheme: number) => number;
  /** Workspace AlgoCheck reports (0 default). */
  readonly workspace?: (splitK: number, scheme: number) => number;
  /** Configuration attributes the fake refuses to set. */
  readonly refuseSet?: readonly number[];
}

/** The four calls, faked: each records its arguments; the configuration lives in the algorithm's bytes. */
function fakeLt(o: FakeOptions) {
  const sets: { attr: number; bytes: number[]; size: number }[] = [];
  const checks: bigint[][] = [];
  const u32 = (algo: Uint8Array, attr: number) =>
    new DataView(algo.buffer, algo.byteOffset).getUint32(at(attr), true);
  const api: LtAlgoApi = {
    cublasLtMatmulAlgoConfigSetAttribute(algo, attr, buf, size) {
      sets.push({ attr, bytes: bytesOf(buf), size });
      if (size !== width(attr) || buf.byteLength !== size || o.refuseSet?.includes(attr)) return 7;
      algo.set(bytesOf(buf), at(attr));
      return 0;
    },
    cublasLtMatmulAlgoConfigGetAttribute(algo, attr, buf, size, written) {
      if (size !== width(attr)) return 7;
      new Uint8Array(buf.buffer, buf.byteOffset, size).set(algo.subarray(at(attr), at(attr) + size));
      written[0] = size;
      return 0;
    },
    cublasLtMatmulAlgoCapGetAttribute(algo, attr, buf, size, written) {
      const caps = o.caps[u32(algo, ALGO_CONFIG.ID)] ?? [0, 0];
      if (size !== 4 || attr > 1) return 7;
      new DataView(buf.buffer, buf.byteOffset).setUint32(0, caps[attr], true);
      written[0] = 4;
      return 0;
    },
    cublasLtMatmulAlgoCheck(handle, desc, a, b, c, d, algo, result) {
      checks.push([handle, desc, a, b, c, d] as bigint[]);
      const [split, scheme] = [u32(algo, ALGO_CONFIG.SPLITK_NUM), u32(algo, ALGO_CONFIG.REDUCTION_SCHEME)];
      const view = new DataView(result.buffer, result.byteOffset);
      view.setBigUint64(HEURISTIC_RESULT.workspaceSize, BigInt(o.workspace?.(split, scheme) ?? 0), true);
      view.setFloat32(HEURISTIC_RESULT.waves, 0.25, true);
      return o.check?.(split, scheme) ?? 0;
    },
  };
  return { api, sets, checks };
}

/** A heuristic answer as the fake reads it. */
function algoOf(c: {
  id: number;
  tile: number;
  stages?: number;
  splitK?: number;
  scheme?: number;
}): Uint8Array {
  const algo = new Uint8Array(HEURISTIC_RESULT.algoBytes);
  const v = new DataView(algo.buffer);
  v.setUint32(at(ALGO_CONFIG.ID), c.id, true);
  v.setUint32(at(ALGO_CONFIG.TILE_ID), c.tile, true);
  v.setUint32(at(ALGO_CONFIG.STAGES_ID), c.stages ?? 8, true);
  v.setUint32(at(ALGO_CONFIG.SPLITK_NUM), c.splitK ?? 1, true);
  v.setUint32(at(ALGO_CONFIG.REDUCTION_SCHEME), c.scheme ?? 0, true);
  return algo;
}

describe("attributes through the cuBLASLt calls", () => {
  it("setting SPLITK_NUM and REDUCTION_SCHEME passes attribute 2 and 3 as 4 little-endian bytes, on a copy", () => {
    const fake = fakeLt({ caps: {} });
    const base = algoOf({ id: 21, tile: 20 });
    const before = base.slice();
    const variant = withLtAlgoConfig(base, { SPLITK_NUM: 8, REDUCTION_SCHEME: INPLACE }, fake.api);
    expect(fake.sets).toEqual([
      { attr: 2, bytes: [8, 0, 0, 0], size: 4 },
      { attr: 3, bytes: [1, 0, 0, 0], size: 4 },
    ]);
    expect(base).toEqual(before);
    expect(readLtAlgoConfig(variant, fake.api)).toMatchObject({
      ID: 21,
      TILE_ID: 20,
      SPLITK_NUM: 8,
      REDUCTION_SCHEME: 1,
    });
    expect(describeLtAlgoConfig(readLtAlgoConfig(variant, fake.api))).toBe(
      "algo 21 tile 20 stages 8 splitK 8 inplace",
    );
    // a 2-byte attribute goes as 2 bytes
    withLtAlgoConfig(base, { CLUSTER_SHAPE_ID: 0x0102 }, fake.api);
    expect(fake.sets.at(-1)).toEqual({ attr: 8, bytes: [2, 1], size: 2 });
  });

  it("a refused attribute throws CublasError naming it; an out-of-range value never reaches C", () => {
    const fake = fakeLt({ caps: {}, refuseSet: [ALGO_CONFIG.REDUCTION_SCHEME] });
    const base = algoOf({ id: 21, tile: 20 });
    expect(() => withLtAlgoConfig(base, { REDUCTION_SCHEME: 1 }, fake.api)).toThrow(
      /cublasLtMatmulAlgoConfigSetAttribute\(REDUCTION_SCHEME\) failed: CUBLAS_STATUS_INVALID_VALUE/,
    );
    expect(() => withLtAlgoConfig(base, { SPLITK_NUM: -1 }, fake.api)).toThrow(DeviceArgumentError);
    expect(() => withLtAlgoConfig(base, { INNER_SHAPE_ID: 70000 }, fake.api)).toThrow(DeviceArgumentError);
    expect(fake.sets).toHaveLength(1);
  });

  it("reads capabilities; refuses an algorithm that is not 64 bytes and a null handle before any call", () => {
    const fake = fakeLt({ caps: { 21: [1, 7] } });
    expect(ltSplitKCaps(algoOf({ id: 21, tile: 20 }), fake.api)).toEqual({ splitK: true, schemes: 7 });
    expect(ltSplitKCaps(algoOf({ id: 66, tile: 0 }), fake.api)).toEqual({ splitK: false, schemes: 0 });
    expect(() => readLtAlgoConfig(new Uint8Array(32), fake.api)).toThrow(DeviceArgumentError);
    const plan = { desc: 2n, layouts: [3n, 4n, 5n] as const };
    expect(() => checkLtAlgo(null, plan, algoOf({ id: 21, tile: 20 }), fake.api)).toThrow(
      DeviceArgumentError,
    );
    expect(fake.checks).toHaveLength(0);
    const r = checkLtAlgo(1n, plan, algoOf({ id: 21, tile: 20 }), fake.api);
    expect(r).toEqual({ status: 0, workspaceBytes: 0, waves: 0.25 });
    // C takes D's layout
    expect(fake.checks[0]).toEqual([1n, 2n, 3n, 4n, 5n, 5n]);
  });
});

describe("split-K candidates", () => {
  const plan = { desc: 2n, layouts: [3n, 4n, 5n] as const };
  const vitFc2 = { m: 197, n: 768, k: 3072, batch: 1, sms: H100_SMS };
  const MiB = 1 << 20;
  const heuristic = [
    { algo: algoOf({ id: 21, tile: 20 }), workspaceBytes: 0 }, // 128×128, any scheme
    { algo: algoOf({ id: 21, tile: 20, splitK: 8, scheme: INPLACE }), workspaceBytes: 4096 }, // its own split
    { algo: algoOf({ id: 66, tile: 18 }), workspaceBytes: 0 }, // no split-K
    { algo: algoOf({ id: 31, tile: 15 }), workspaceBytes: 0 }, // 64×64, partials in D's type only
    { algo: algoOf({ id: 40, tile: 20 }), workspaceBytes: 0 }, // a third base: beyond ENGINE_SPLITK.bases
  ];
  const fake = () =>
    fakeLt({
      caps: { 21: [1, REDUCTION_SCHEME.MASK], 66: [0, 0], 31: [1, OUTPUT_TYPE], 40: [1, 7] },
      check: (split) => (split === 12 ? 15 : 0),
      workspace: (split, scheme) => (scheme === OUTPUT_TYPE ? split * MiB : 0),
    });

  it("makes the engine's variants of the first two bases, dropping what AlgoCheck or the workspace refuse", () => {
    const f = fake();
    const r = ltSplitKCandidates(1n, plan, heuristic, vitFc2, 3.5 * MiB, ENGINE_SPLITK, f.api);
    const made = r.candidates.map((c) => [
      c.base,
      c.config.ID,
      c.config.SPLITK_NUM,
      c.config.REDUCTION_SCHEME,
    ]);
    // algo 21 (12 tiles): 6, 8 (the heuristic's own: skipped), 12 (refused); algo 31 (48 tiles): 2, 3, 4 (workspace)
    expect(made).toEqual([
      [0, 21, 6, INPLACE],
      [3, 31, 2, OUTPUT_TYPE],
      [3, 31, 3, OUTPUT_TYPE],
    ]);
    expect(r.candidates.map((c) => c.workspaceBytes)).toEqual([0, 2 * MiB, 3 * MiB]);
    expect(r.dropped).toEqual([
      "algo 21 tile 20 stages 8 cut 12, scheme 1: cublasLtMatmulAlgoCheck CUBLAS_STATUS_NOT_SUPPORTED",
      `algo 31 tile 15 stages 8 cut 4, scheme 4: needs ${4 * MiB} bytes of workspace, over ${3.5 * MiB}`,
    ]);
    // each variant is its own bytes; the heuristic's answers are untouched
    expect(readLtAlgoConfig(heuristic[0].algo, f.api).SPLITK_NUM).toBe(1);
    expect(r.candidates.length).toBeLessThanOrEqual(ENGINE_SPLITK.max);
  });

  it("more bases and schemes when asked (the sweep), never more than `max`", () => {
    const wide = { bases: 4, splits: 6, schemes: 3, max: 32 };
    const r = ltSplitKCandidates(1n, plan, heuristic, vitFc2, 64 * MiB, wide, fake().api);
    expect(new Set(r.candidates.map((c) => c.config.ID))).toEqual(new Set([21, 31, 40]));
    expect(r.candidates.filter((c) => c.config.ID === 21).map((c) => c.config.REDUCTION_SCHEME)).toContain(
      COMPUTE_TYPE,
    );
    const few = ltSplitKCandidates(1n, plan, heuristic, vitFc2, 64 * MiB, { ...wide, max: 2 }, fake().api);
    expect(few.candidates).toHaveLength(2);
  });

  it("none for a problem whose tiles fill the SMs (ViT-B/16 batch 64)", () => {
    const f = fake();
    const r = ltSplitKCandidates(
      1n,
      plan,
      heuristic,
      { ...vitFc2, m: 197 * 64 },
      32 * MiB,
      ENGINE_SPLITK,
      f.api,
    );
    expect(r).toEqual({ candidates: [], dropped: [] });
  });

  it("refuses a problem with a zero size before any call", () => {
    const f = fake();
    expect(() =>
      ltSplitKCandidates(1n, plan, heuristic, { ...vitFc2, sms: 0 }, 32 * MiB, ENGINE_SPLITK, f.api),
    ).toThrow(DeviceArgumentError);
    expect(f.checks).toHaveLength(0);
  });
});

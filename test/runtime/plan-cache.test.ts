// The CUDA backend's persistent plan cache (issue 12): choices by problem kept across processes, one file per
// GPU architecture and library versions, bounded (least recently used dropped), timed choices kept apart, merged
// with what another process wrote, off with TORCHC_PLAN_CACHE=0. No GPU needed: the cache is plain JSON.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bound, defaultPlanCacheDir, PlanCache } from "../../src/backends/cuda/artifacts-cache.js";
import { cachedTimings } from "../../src/backends/cuda/int8-conv-timing.js";
import { tempDir } from "../helpers.js";

const target = { arch: "sm_90", cudnn: 91900, cublasLt: 130100 };
const conv = (engine: number, tuned = false) => ({
  engine,
  knobs: [[1, 2]] as [number, number][],
  workspaceBytes: 0,
  tuned,
});

describe("the persistent plan cache", () => {
  it("lives under TORCHC_CACHE_DIR/plans, one file per architecture and library versions", () => {
    const env = { TORCHC_CACHE_DIR: "/c" };
    expect(defaultPlanCacheDir(env)).toBe("/c/plans");
    expect(defaultPlanCacheDir({ XDG_CACHE_HOME: "/x" })).toBe("/x/torchc/plans");
    const dir = tempDir();
    const a = PlanCache.forTarget(target, { TORCHC_CACHE_DIR: dir });
    a.putMatmul("m", { algo: "AAAA", workspaceBytes: 0 });
    a.flush();
    const b = PlanCache.forTarget({ ...target, cudnn: 91000 }, { TORCHC_CACHE_DIR: dir });
    expect(b.matmul("m")).toBeUndefined();
    expect(PlanCache.forTarget(target, { TORCHC_CACHE_DIR: dir }).matmul("m")?.algo).toBe("AAAA");
  });

  it("gives a timed matmul compile only timed entries, and never replaces a timed entry with an untimed one", () => {
    const env = { TORCHC_CACHE_DIR: tempDir() };
    const a = PlanCache.forTarget(target, env);
    a.putMatmul("m", { algo: "HEUR", workspaceBytes: 0 });
    expect(a.matmul("m", true)).toBeUndefined();
    expect(a.matmul("m")?.algo).toBe("HEUR");
    a.putMatmul("m", { algo: "TIMED", workspaceBytes: 0, timed: true });
    a.putMatmul("m", { algo: "HEUR", workspaceBytes: 0 });
    a.flush();
    const b = PlanCache.forTarget(target, env);
    expect(b.matmul("m", true)?.algo).toBe("TIMED");
    expect(b.matmul("m")?.algo).toBe("TIMED");
  });

  it("gives a later process the choices of an earlier one; a compile with tune only timed convs", () => {
    const env = { TORCHC_CACHE_DIR: tempDir() };
    const first = PlanCache.forTarget(target, env);
    first.putConv("c1", conv(3));
    first.putConv("c2", conv(4, true));
    first.flush();
    const later = PlanCache.forTarget(target, env);
    expect(later.conv("c1", false)?.engine).toBe(3);
    expect(later.conv("c1", true)).toBeUndefined();
    expect(later.conv("c2", true)?.engine).toBe(4);
    later.putConv("c2", conv(9, false));
    expect(later.conv("c2", true)?.engine, "an untimed choice never replaces a timed one").toBe(4);
  });

  it("keeps no conv choice it could not rebuild exactly (no engine index, or knobs cuDNN did not report)", () => {
    const env = { TORCHC_CACHE_DIR: tempDir() };
    const a = PlanCache.forTarget(target, env);
    a.putConv("no-knobs", { engine: 5, workspaceBytes: 0, tuned: false });
    a.putConv("no-engine", { knobs: [[1, 2]], workspaceBytes: 0, tuned: false });
    a.putConv("no-knobs-at-all", { engine: 6, knobs: [], workspaceBytes: 0, tuned: false });
    a.flush();
    const b = PlanCache.forTarget(target, env);
    expect(b.conv("no-knobs", false)).toBeUndefined();
    expect(b.conv("no-engine", false)).toBeUndefined();
    expect(b.conv("no-knobs-at-all", false)?.engine, "an engine with no knobs is exact").toBe(6);
  });

  it("merges with entries another process wrote meanwhile", () => {
    const env = { TORCHC_CACHE_DIR: tempDir() };
    const a = PlanCache.forTarget(target, env);
    const b = PlanCache.forTarget(target, env);
    a.putConv("from-a", conv(1));
    b.putConv("from-b", conv(2));
    a.flush();
    b.flush();
    const c = PlanCache.forTarget(target, env);
    expect(c.conv("from-a", false)?.engine).toBe(1);
    expect(c.conv("from-b", false)?.engine).toBe(2);
  });

  it("keeps at most its bound, the most recently used", () => {
    const t = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`k${i}`, { used: i }]));
    expect(Object.keys(bound(t, 3)).sort()).toEqual(["k7", "k8", "k9"]);
    const env = { TORCHC_CACHE_DIR: tempDir() };
    const file = join(env.TORCHC_CACHE_DIR, "plans");
    const small = new PlanCache(join(file, "x.json"), 2);
    for (let i = 0; i < 5; i++) small.putMatmul(`m${i}`, { algo: "A", workspaceBytes: 0 });
    small.flush();
    const saved = JSON.parse(readFileSync(join(file, "x.json"), "utf8"));
    expect(Object.keys(saved.matmuls).sort()).toEqual(["m3", "m4"]);
  });

  it("is off with TORCHC_PLAN_CACHE=0, and an unreadable file only means an empty cache", () => {
    const dir = tempDir();
    const off = PlanCache.forTarget(target, { TORCHC_CACHE_DIR: dir, TORCHC_PLAN_CACHE: "0" });
    off.putConv("c", conv(1));
    off.flush();
    expect(existsSync(join(dir, "plans"))).toBe(false);
    const broken = new PlanCache(join(dir, "not-json.txt"));
    expect(broken.conv("c", false)).toBeUndefined();
  });
  it("keeps cuDNN's JSON form of a conv plan in a side file and gives it back, unless TORCHC_PLAN_CACHE_JSON=0", () => {
    const env = { TORCHC_CACHE_DIR: tempDir() };
    const a = PlanCache.forTarget(target, env);
    a.putConv("with-json", conv(7), '{"engine":7,"kernels":"..."}');
    a.putConv("no-json", conv(8));
    expect(a.conv("with-json", false)?.plan, "before the flush, from memory").toBe(
      '{"engine":7,"kernels":"..."}',
    );
    a.flush();
    const main = readFileSync(
      join(
        env.TORCHC_CACHE_DIR,
        "plans",
        readdirSync(join(env.TORCHC_CACHE_DIR, "plans")).find((f) => f.endsWith(".json"))!,
      ),
      "utf8",
    );
    expect(main, "the plan text is not inlined in the table").not.toContain("kernels");
    const b = PlanCache.forTarget(target, env);
    expect(b.conv("with-json", false)?.plan).toBe('{"engine":7,"kernels":"..."}');
    expect(b.conv("with-json", false)?.engine).toBe(7);
    expect(b.conv("no-json", false)?.plan).toBeUndefined();
    const off = PlanCache.forTarget(target, { ...env, TORCHC_PLAN_CACHE_JSON: "0" });
    expect(off.conv("with-json", false)?.plan).toBeUndefined();
    expect(off.conv("with-json", false)?.engine, "the engine and knobs still restore").toBe(7);
  });

  it("deletes the side files of entries the bound dropped", () => {
    const dir = join(tempDir(), "plans");
    const small = new PlanCache(join(dir, "x.json"), 2);
    for (let i = 0; i < 4; i++) small.putConv(`c${i}`, conv(i), `{"plan":${i}}`);
    small.flush();
    expect(readdirSync(join(dir, "x.json.d")).length).toBe(2);
    const again = new PlanCache(join(dir, "x.json"), 2);
    expect(again.conv("c3", false)?.plan).toBe('{"plan":3}');
    expect(again.conv("c0", false)).toBeUndefined();
  });
});

describe("int8-against-float timings in the plan cache", () => {
  const problem = (c: number) => ({
    n: 128,
    c,
    h: 56,
    w: 56,
    k: 64,
    r: 3,
    s: 3,
    stride: [1, 1] as const,
    padding: [1, 1] as const,
    dilation: [1, 1] as const,
    groups: 1,
    bias: true,
    relu: true,
  });
  const keyOf = (gpu: string) => (p: { c: number }) => `${gpu}|fp16|${JSON.stringify(p)}`;

  it("a second compile times only the problems no earlier one timed, on the same GPU; untimed answers are not kept", () => {
    const env = { TORCHC_CACHE_DIR: tempDir() };
    const timedNow: number[][] = [];
    const time = (ps: readonly { c: number }[]) => {
      timedNow.push(ps.map((p) => p.c));
      return ps.map((p) =>
        p.c === 32
          ? { refused: "no int8 engine" }
          : p.c === 48
            ? { untimed: "a fault" }
            : { int8Ms: p.c / 100, floatMs: 1 },
      );
    };
    const first = PlanCache.forTarget(target, env);
    const a = cachedTimings([problem(16), problem(32), problem(48)], keyOf("H100"), first, time);
    first.flush();
    expect(a).toEqual([{ int8Ms: 0.16, floatMs: 1 }, { refused: "no int8 engine" }, { untimed: "a fault" }]);
    // another process: the refusal and the times come from the file, the untimed problem and the new one are timed
    const second = PlanCache.forTarget(target, env);
    const b = cachedTimings(
      [problem(64), problem(16), problem(48), problem(32)],
      keyOf("H100"),
      second,
      time,
    );
    expect(timedNow).toEqual([
      [16, 32, 48],
      [64, 48],
    ]);
    expect(b[1]).toEqual({ int8Ms: 0.16, floatMs: 1, detail: "timed by an earlier compile (plan cache)" });
    expect(b[3]).toEqual({ refused: "no int8 engine" });
    expect(b[0]).toEqual({ int8Ms: 0.64, floatMs: 1 });
    second.flush();
    // another GPU of the same architecture times everything again
    cachedTimings([problem(16)], keyOf("H200"), PlanCache.forTarget(target, env), time);
    expect(timedNow[2]).toEqual([16]);
    // off with the rest of the cache
    const off = PlanCache.forTarget(target, { ...env, TORCHC_PLAN_CACHE: "0" });
    cachedTimings([problem(16)], keyOf("H100"), off, time);
    expect(timedNow[3]).toEqual([16]);
  });

  it("keeps no timing with a caveat or a time that is not finite: those are timed again", () => {
    const env = { TORCHC_CACHE_DIR: tempDir() };
    const timedNow: number[][] = [];
    const time = (ps: readonly { c: number }[]) => {
      timedNow.push(ps.map((p) => p.c));
      return ps.map((p) =>
        p.c === 16
          ? { int8Ms: 0.1, floatMs: 0.2, detail: "eager timing: capture failed" }
          : p.c === 24
            ? { int8Ms: Number.NaN, floatMs: 0.2 }
            : { int8Ms: 0.1, floatMs: 0.2 },
      );
    };
    for (let round = 0; round < 2; round++) {
      const cache = PlanCache.forTarget(target, env);
      cachedTimings([problem(16), problem(24), problem(40)], keyOf("H100"), cache, time);
      cache.flush();
    }
    expect(timedNow).toEqual([
      [16, 24, 40],
      [16, 24],
    ]);
  });

  it("keeps the other tables of a file written before int8 timings existed", () => {
    const env = { TORCHC_CACHE_DIR: tempDir() };
    const a = PlanCache.forTarget(target, env);
    a.putMatmul("m", { algo: "AAAA", workspaceBytes: 0 });
    a.flush();
    const b = PlanCache.forTarget(target, env);
    expect(b.int8Timing("x")).toBeUndefined();
    b.putInt8Timing("x", { int8Ms: 1, floatMs: 2 });
    b.flush();
    const c = PlanCache.forTarget(target, env);
    expect(c.matmul("m")?.algo).toBe("AAAA");
    expect(c.int8Timing("x")).toMatchObject({ int8Ms: 1, floatMs: 2 });
  });
});

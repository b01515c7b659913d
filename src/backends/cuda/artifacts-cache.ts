/**
 * The persistent plan cache: library choices by problem, kept across processes so that a later compile of any
 * model with the same conv or matmul problems skips cuDNN's heuristics and candidate plans (and, with `tune`,
 * the timing) and cuBLASLt's heuristic. One JSON file per target (GPU architecture, cuDNN and cuBLASLt versions)
 * under `$TORCHC_CACHE_DIR/plans` (else `$XDG_CACHE_HOME/torchc/plans`, else `~/.cache/torchc/plans`);
 * `TORCHC_PLAN_CACHE=0` turns it off. Size bound: at most MAX_ENTRIES (4096) conv, 4096 matmul and 4096 int8 timing
 * entries per target file, least recently used dropped first; an entry is a few hundred bytes (an engine index, its
 * knob choices, a 64-byte algorithm, two times), so a file stays under ~3 MiB. Writes are atomic (temporary file +
 * rename); a file that cannot be read or written only makes compiles slower.
 *
 * A conv entry also keeps cuDNN's own serialization of the execution plan (the form a package keeps), in a side
 * file `<target file>.d/<sha256 of the problem key>.json`, and a later compile restores that first. Why: a
 * ResNet-50 compiled second in a process, its convolutions rebuilt from the engine index and knobs this cache
 * then kept, spent 1.58× the first one's time in cuDNN with the same engine otherwise (H200, session 10, the
 * sparsity test's dense/sparse pair, no layer sparse). Restored from the serialized plans, the same pair ran
 * 1.204 vs 1.206 ms (H100, session 11).
 * `TORCHC_PLAN_CACHE_JSON=0` ignores the side files (for A/B timing). Side files of entries dropped by the bound
 * are deleted at the next write.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { ConvChoice } from "./artifacts-cudnn.js";

export const MAX_ENTRIES = 4096;

export interface CachedConv extends Omit<ConvChoice, "plan"> {
  /** Whether the choice won a timing run (a compile with `tune` uses only such entries). */
  readonly tuned: boolean;
  /** The side file holding cuDNN's JSON form of the plan, when cuDNN gave one. */
  readonly planFile?: string;
  used: number;
}

/** A cached conv choice as restoreConv takes it: with the plan's JSON when its side file could be read. */
export type RestorableConv = CachedConv & { readonly plan?: string };

export interface CachedMatmul {
  readonly algo: string;
  readonly workspaceBytes: number;
  /** Whether the algorithm won a timing run (timed compiles, the default, use only such entries). */
  readonly timed?: boolean;
  used: number;
}

/**
 * What timing one convolution problem in int8 against float found (int8-conv-timing.ts), kept so that a later
 * compile of a model with the same problems on the same GPU does not time them again: both times, or cuDNN's
 * refusal. An answer that could not be timed is not kept.
 */
export type CachedInt8Timing = (
  | { readonly int8Ms: number; readonly floatMs: number }
  | { readonly refused: string }
) & { used: number };

interface CacheFile {
  version: 1;
  convs: Record<string, CachedConv>;
  matmuls: Record<string, CachedMatmul>;
  /** Absent in files written before it existed. */
  int8?: Record<string, CachedInt8Timing>;
}

export function defaultPlanCacheDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.TORCHC_CACHE_DIR) return join(env.TORCHC_CACHE_DIR, "plans");
  return join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "torchc", "plans");
}

/** Keeps the `max` most recently used entries. */
export function bound<T extends { used: number }>(table: Record<string, T>, max: number): Record<string, T> {
  const entries = Object.entries(table);
  if (entries.length <= max) return table;
  entries.sort((a, b) => b[1].used - a[1].used);
  return Object.fromEntries(entries.slice(0, max));
}

/**
 * Whether a conv choice names one exact plan: the engine and its knob choices (an empty list when the engine has
 * none). Without the knobs cuDNN would rebuild the engine with its default knobs, possibly a slower kernel than the
 * heuristic's (the suspected cause of a warm compile of ResNet-50 timing 0.61× the cold one, session 6); asking the
 * heuristics again is the safer miss.
 */
function rebuildable(c: { readonly engine?: number; readonly knobs?: readonly unknown[] }): boolean {
  return c.engine !== undefined && Array.isArray(c.knobs);
}

const sideName = (key: string) => `${createHash("sha256").update(key).digest("hex").slice(0, 32)}.json`;

export class PlanCache {
  private data: CacheFile | undefined;
  private dirty = false;
  private clock = Date.now();
  /** Plan JSON to write as side files at the next flush, by side file name. */
  private readonly pendingPlans = new Map<string, string>();

  constructor(
    /** The file for one target; undefined keeps the cache off. */
    private readonly file: string | undefined,
    private readonly max = MAX_ENTRIES,
    /** Whether to restore plans from their JSON side files (TORCHC_PLAN_CACHE_JSON=0: no). */
    private readonly useJson = true,
  ) {}

  private get sideDir(): string | undefined {
    return this.file ? `${this.file}.d` : undefined;
  }

  /** The cache file of a target (architecture and library versions) in `dir`, or none when turned off. */
  static forTarget(
    target: { arch: string; cudnn: number; cublasLt: number },
    env: Readonly<Record<string, string | undefined>> = process.env,
  ): PlanCache {
    if (env.TORCHC_PLAN_CACHE === "0") return new PlanCache(undefined);
    const id = createHash("sha256").update(JSON.stringify(target)).digest("hex").slice(0, 16);
    return new PlanCache(
      join(defaultPlanCacheDir(env), `${target.arch}-${id}.json`),
      MAX_ENTRIES,
      env.TORCHC_PLAN_CACHE_JSON !== "0",
    );
  }

  private load(): CacheFile {
    if (this.data) return this.data;
    this.data = { version: 1, convs: {}, matmuls: {} };
    if (!this.file) return this.data;
    try {
      const d = JSON.parse(readFileSync(this.file, "utf8")) as CacheFile;
      if (d?.version === 1 && typeof d.convs === "object" && typeof d.matmuls === "object") this.data = d;
    } catch {
      // absent or unreadable: start empty
    }
    return this.data;
  }

  conv(key: string, tuned: boolean): RestorableConv | undefined {
    const c = this.load().convs[key];
    if (!c || (tuned && !c.tuned) || !rebuildable(c)) return undefined;
    c.used = ++this.clock;
    this.dirty = true;
    const plan = this.useJson && c.planFile ? this.readPlan(c.planFile) : undefined;
    return plan ? { ...c, plan } : c;
  }

  private readPlan(name: string): string | undefined {
    const pending = this.pendingPlans.get(name);
    if (pending !== undefined || !this.sideDir) return pending;
    try {
      return readFileSync(join(this.sideDir, name), "utf8");
    } catch {
      return undefined;
    }
  }

  int8Timing(key: string): CachedInt8Timing | undefined {
    const t = this.load().int8?.[key];
    if (!t) return undefined;
    t.used = ++this.clock;
    this.dirty = true;
    return t;
  }

  putInt8Timing(
    key: string,
    timing: { readonly int8Ms: number; readonly floatMs: number } | { readonly refused: string },
  ): void {
    const d = this.load();
    const kept =
      "refused" in timing ? { refused: timing.refused } : { int8Ms: timing.int8Ms, floatMs: timing.floatMs };
    d.int8 = { ...d.int8, [key]: { ...kept, used: ++this.clock } };
    this.dirty = true;
  }

  matmul(key: string, timed = false): CachedMatmul | undefined {
    const m = this.load().matmuls[key];
    if (!m || (timed && !m.timed)) return undefined;
    m.used = ++this.clock;
    this.dirty = true;
    return m;
  }

  /** Records a conv choice; `plan` is cuDNN's JSON form of its execution plan, when cuDNN gave one. */
  putConv(key: string, choice: Omit<CachedConv, "used" | "planFile">, plan?: string): void {
    if (!rebuildable(choice)) return;
    const d = this.load();
    if (d.convs[key]?.tuned && !choice.tuned) return;
    const planFile = plan && this.file ? sideName(key) : undefined;
    if (planFile) this.pendingPlans.set(planFile, plan as string);
    d.convs[key] = { ...choice, ...(planFile ? { planFile } : {}), used: ++this.clock };
    this.dirty = true;
  }

  putMatmul(key: string, choice: Omit<CachedMatmul, "used">): void {
    const d = this.load();
    if (d.matmuls[key]?.timed && !choice.timed) return;
    d.matmuls[key] = { ...choice, used: ++this.clock };
    this.dirty = true;
  }

  /** Writes the cache (bounded) when it changed; merges with what other processes wrote meanwhile. */
  flush(): void {
    if (!this.file || !this.dirty || !this.data) return;
    this.dirty = false;
    const mine = this.data;
    this.data = undefined;
    const disk = this.load();
    const all = { ...disk.convs, ...mine.convs };
    const merged: CacheFile = {
      version: 1,
      convs: bound(all, this.max),
      matmuls: bound({ ...disk.matmuls, ...mine.matmuls }, this.max),
      int8: bound({ ...disk.int8, ...mine.int8 }, this.max),
    };
    this.data = merged;
    try {
      mkdirSync(join(this.file, ".."), { recursive: true });
      this.writePlans(merged, all);
      const tmp = `${this.file}.${process.pid}.${Date.now()}`;
      writeFileSync(tmp, JSON.stringify(merged));
      renameSync(tmp, this.file);
    } catch {
      // a cache that cannot be written is only slower
    }
  }

  /**
   * Writes the pending side files of kept entries, each on its own (one that fails only loses its plan), and
   * deletes those of the entries this flush's bound dropped. Only those: a side file no entry on disk names yet may
   * be another process's, written just before its own table.
   */
  private writePlans(kept: CacheFile, before: Record<string, CachedConv>): void {
    const dir = this.sideDir as string;
    const named = new Set(Object.values(kept.convs).flatMap((c) => (c.planFile ? [c.planFile] : [])));
    if (this.pendingPlans.size > 0) mkdirSync(dir, { recursive: true });
    for (const [name, text] of this.pendingPlans) {
      if (!named.has(name)) continue;
      const tmp = join(dir, `${name}.${process.pid}.tmp`);
      try {
        writeFileSync(tmp, text);
        renameSync(tmp, join(dir, name));
      } catch {
        rmSync(tmp, { force: true });
      }
    }
    this.pendingPlans.clear();
    for (const [key, c] of Object.entries(before))
      if (c.planFile && !(key in kept.convs) && !named.has(c.planFile))
        rmSync(join(dir, c.planFile), { force: true });
  }
}

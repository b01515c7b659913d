/**
 * The persistent plan cache: library choices by problem, kept across processes so that a later compile of any
 * model with the same conv or matmul problems skips cuDNN's heuristics and candidate plans (and, with `tune`,
 * the timing) and cuBLASLt's heuristic. One JSON file per target (GPU architecture, cuDNN and cuBLASLt versions)
 * under `$TORCHC_CACHE_DIR/plans` (else `$XDG_CACHE_HOME/torchc/plans`, else `~/.cache/torchc/plans`);
 * `TORCHC_PLAN_CACHE=0` turns it off. Size bound: at most MAX_ENTRIES (4096) conv and 4096 matmul entries per
 * target file, least recently used dropped first; an entry is a few hundred bytes (an engine index, its knob
 * choices, a 64-byte algorithm), so a file stays under ~2 MiB. Writes are atomic (temporary file + rename); a
 * file that cannot be read or written only makes compiles slower.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { ConvChoice } from "./artifacts-cudnn.js";

export const MAX_ENTRIES = 4096;

export interface CachedConv extends Omit<ConvChoice, "plan"> {
  /** Whether the choice won a timing run (a compile with `tune` uses only such entries). */
  readonly tuned: boolean;
  used: number;
}

export interface CachedMatmul {
  readonly algo: string;
  readonly workspaceBytes: number;
  used: number;
}

interface CacheFile {
  version: 1;
  convs: Record<string, CachedConv>;
  matmuls: Record<string, CachedMatmul>;
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

export class PlanCache {
  private data: CacheFile | undefined;
  private dirty = false;
  private clock = Date.now();

  constructor(
    /** The file for one target; undefined keeps the cache off. */
    private readonly file: string | undefined,
    private readonly max = MAX_ENTRIES,
  ) {}

  /** The cache file of a target (architecture and library versions) in `dir`, or none when turned off. */
  static forTarget(
    target: { arch: string; cudnn: number; cublasLt: number },
    env: Readonly<Record<string, string | undefined>> = process.env,
  ): PlanCache {
    if (env.TORCHC_PLAN_CACHE === "0") return new PlanCache(undefined);
    const id = createHash("sha256").update(JSON.stringify(target)).digest("hex").slice(0, 16);
    return new PlanCache(join(defaultPlanCacheDir(env), `${target.arch}-${id}.json`));
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

  conv(key: string, tuned: boolean): CachedConv | undefined {
    const c = this.load().convs[key];
    if (!c || (tuned && !c.tuned) || !rebuildable(c)) return undefined;
    c.used = ++this.clock;
    this.dirty = true;
    return c;
  }

  matmul(key: string): CachedMatmul | undefined {
    const m = this.load().matmuls[key];
    if (!m) return undefined;
    m.used = ++this.clock;
    this.dirty = true;
    return m;
  }

  putConv(key: string, choice: Omit<CachedConv, "used">): void {
    if (!rebuildable(choice)) return;
    const d = this.load();
    if (d.convs[key]?.tuned && !choice.tuned) return;
    d.convs[key] = { ...choice, used: ++this.clock };
    this.dirty = true;
  }

  putMatmul(key: string, choice: Omit<CachedMatmul, "used">): void {
    this.load().matmuls[key] = { ...choice, used: ++this.clock };
    this.dirty = true;
  }

  /** Writes the cache (bounded) when it changed; merges with what other processes wrote meanwhile. */
  flush(): void {
    if (!this.file || !this.dirty || !this.data) return;
    this.dirty = false;
    const mine = this.data;
    this.data = undefined;
    const disk = this.load();
    const merged: CacheFile = {
      version: 1,
      convs: bound({ ...disk.convs, ...mine.convs }, this.max),
      matmuls: bound({ ...disk.matmuls, ...mine.matmuls }, this.max),
    };
    this.data = merged;
    try {
      mkdirSync(join(this.file, ".."), { recursive: true });
      const tmp = `${this.file}.${process.pid}.${Date.now()}`;
      writeFileSync(tmp, JSON.stringify(merged));
      renameSync(tmp, this.file);
    } catch {
      // a cache that cannot be written is only slower
    }
  }
}

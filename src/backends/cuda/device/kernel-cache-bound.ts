/**
 * The size bound of the on-disk kernel cache (device/kernel-cache.ts): after each new entry the folder is cut
 * back to `TORCHC_KERNEL_CACHE_MB` (default 1024; 0 means no bound), least recently used entries first. An entry
 * is `<key>.bin` plus `<key>.json`; its recency is the .bin's modification time, which a disk hit refreshes.
 * Temporary files left by a writer that died are removed once they are an hour old. Best effort: a file another
 * process removed first, or one that cannot be removed, is skipped.
 */
import { readdirSync, rmSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";

export const DEFAULT_KERNEL_CACHE_MB = 1024;
const STALE_TEMP_MS = 3_600_000;
const ENTRY = /^([0-9a-f]{64})\.(bin|json)$/;

/** The bound in bytes (Infinity when turned off); a value that is not a number ≥ 0 is the default. */
export function kernelCacheBoundBytes(
  env: Readonly<Record<string, string | undefined>> = process.env,
): number {
  const raw = env.TORCHC_KERNEL_CACHE_MB;
  const mb = raw === undefined || raw.trim() === "" ? Number.NaN : Number(raw);
  if (!(mb >= 0)) return DEFAULT_KERNEL_CACHE_MB * 2 ** 20;
  return mb === 0 ? Number.POSITIVE_INFINITY : mb * 2 ** 20;
}

interface Entry {
  readonly key: string;
  bytes: number;
  /** The .bin's mtime (0 when only the .json is there: a half-written entry goes first). */
  used: number;
}

function entriesOf(dir: string, now: number): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  for (const name of readdirSync(dir)) {
    try {
      const st = statSync(join(dir, name));
      const m = ENTRY.exec(name);
      if (!m) {
        // `<key>.bin.<pid>.<time>`: a writer's temporary file (kernel-cache.ts)
        if (/\.\d+\.\d+$/.test(name) && now - st.mtimeMs > STALE_TEMP_MS)
          rmSync(join(dir, name), { force: true });
        continue;
      }
      const e = entries.get(m[1]) ?? { key: m[1], bytes: 0, used: 0 };
      e.bytes += st.size;
      if (m[2] === "bin") e.used = st.mtimeMs;
      entries.set(m[1], e);
    } catch {
      // removed meanwhile
    }
  }
  return entries;
}

/**
 * Removes the least recently used entries of `dir` until they take at most `maxBytes`, never `keep` (the entry
 * just written). Returns the removed keys, oldest first.
 */
export function pruneKernelCache(dir: string, maxBytes: number, keep?: string, now = Date.now()): string[] {
  if (!Number.isFinite(maxBytes)) return [];
  let entries: Map<string, Entry>;
  try {
    entries = entriesOf(dir, now);
  } catch {
    return [];
  }
  let total = 0;
  for (const e of entries.values()) total += e.bytes;
  const removed: string[] = [];
  for (const e of [...entries.values()].sort((a, b) => a.used - b.used)) {
    if (total <= maxBytes) break;
    if (e.key === keep) continue;
    rmSync(join(dir, `${e.key}.bin`), { force: true });
    rmSync(join(dir, `${e.key}.json`), { force: true });
    total -= e.bytes;
    removed.push(e.key);
  }
  return removed;
}

/** Marks an entry as just used (a disk hit), so the bound removes it last. */
export function touchKernelCacheEntry(dir: string, key: string, now = new Date()): void {
  try {
    utimesSync(join(dir, `${key}.bin`), now, now);
  } catch {
    // read-only cache folder: recency then follows the write time
  }
}

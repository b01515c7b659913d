// The kernel cache's size bound: entries (a .bin and a .json) go least recently used first until the folder fits,
// the entry just written stays, a disk hit makes an entry recent again, and stale temporary files go.
import { existsSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_KERNEL_CACHE_MB,
  kernelCacheBoundBytes,
  pruneKernelCache,
  touchKernelCacheEntry,
} from "../../../src/backends/cuda/device/kernel-cache-bound.js";

const key = (i: number) => i.toString(16).padStart(64, "0");
const T0 = Date.parse("2026-12-01T00:00:00Z");

/** `n` entries of `binBytes` + a small .json, entry i last used at T0 + i minutes. */
function cacheWith(n: number, binBytes: number): string {
  const dir = mkdtempSync(join(tmpdir(), "torchc-kcache-"));
  for (let i = 0; i < n; i++) {
    writeFileSync(join(dir, `${key(i)}.bin`), new Uint8Array(binBytes));
    writeFileSync(join(dir, `${key(i)}.json`), "{}");
    const t = new Date(T0 + i * 60_000);
    utimesSync(join(dir, `${key(i)}.bin`), t, t);
  }
  return dir;
}

const keysIn = (dir: string) =>
  [...new Set(readdirSync(dir).map((f) => f.split(".")[0]))].filter((k) => k.length === 64).sort();

describe("kernel cache size bound", () => {
  it("removes the least recently used entries, both files, until the folder fits", () => {
    const dir = cacheWith(10, 1000);
    // 10 × 1,002 bytes; a 5,000-byte bound keeps the 4 most recent
    const removed = pruneKernelCache(dir, 5000, undefined, T0 + 3_600_000);
    expect(removed).toEqual([0, 1, 2, 3, 4, 5].map(key));
    expect(keysIn(dir)).toEqual([6, 7, 8, 9].map(key));
    expect(existsSync(join(dir, `${key(0)}.json`))).toBe(false);
  });

  it("never removes the entry just written, even when it is the oldest", () => {
    const dir = cacheWith(4, 1000);
    pruneKernelCache(dir, 1500, key(0), T0);
    expect(keysIn(dir)).toEqual([key(0)]);
  });

  it("a disk hit makes an entry the most recent", () => {
    const dir = cacheWith(4, 1000);
    touchKernelCacheEntry(dir, key(0), new Date(T0 + 3_600_000));
    pruneKernelCache(dir, 2100, undefined, T0 + 3_600_000);
    expect(keysIn(dir)).toEqual([key(0), key(3)]);
  });

  it("removes a writer's temporary files once they are an hour old, and leaves other files alone", () => {
    const dir = cacheWith(1, 10);
    const old = join(dir, `${key(7)}.bin.123.456`);
    const fresh = join(dir, `${key(8)}.bin.123.789`);
    writeFileSync(old, "x");
    writeFileSync(fresh, "x");
    writeFileSync(join(dir, "README"), "mine");
    const t = new Date(T0);
    utimesSync(old, t, t);
    utimesSync(fresh, new Date(T0 + 3_500_000), new Date(T0 + 3_500_000));
    pruneKernelCache(dir, 1e9, undefined, T0 + 3_700_000);
    expect(existsSync(old)).toBe(false);
    expect(existsSync(fresh)).toBe(true);
    expect(existsSync(join(dir, "README"))).toBe(true);
  });

  it("reads TORCHC_KERNEL_CACHE_MB: a size, 0 for no bound, anything else the default", () => {
    expect(kernelCacheBoundBytes({ TORCHC_KERNEL_CACHE_MB: "64" })).toBe(64 * 2 ** 20);
    expect(kernelCacheBoundBytes({ TORCHC_KERNEL_CACHE_MB: "0" })).toBe(Number.POSITIVE_INFINITY);
    for (const v of [undefined, "", "lots", "-3"])
      expect(kernelCacheBoundBytes({ TORCHC_KERNEL_CACHE_MB: v })).toBe(DEFAULT_KERNEL_CACHE_MB * 2 ** 20);
    const dir = cacheWith(3, 100);
    expect(pruneKernelCache(dir, Number.POSITIVE_INFINITY)).toEqual([]);
    expect(keysIn(dir)).toHaveLength(3);
  });
});

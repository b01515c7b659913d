/**
 * A cache of compiled programs keyed by a SHA-256 of (source, resolved NVRTC options, name expressions,
 * output kind, NVRTC version). Always in memory; optionally on disk (one `<key>.bin` image plus `<key>.json`
 * metadata per entry, written atomically), by default under `~/.cache/torchc/kernels`, bounded in size
 * (TORCHC_KERNEL_CACHE_MB, default 1024: kernel-cache-bound.ts), least recently used entries removed first.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import {
  type CompiledProgram,
  type CompileOptions,
  compileWithOptions,
  compileWithOptionsAsync,
  nvrtcVersion,
  resolveOptions,
} from "./compile.js";
import { kernelCacheBoundBytes, pruneKernelCache, touchKernelCacheEntry } from "./kernel-cache-bound.js";

export interface CacheKeyParts {
  readonly source: string;
  readonly options: readonly string[];
  readonly nameExpressions: readonly string[];
  readonly output: "cubin" | "ptx";
  readonly nvrtcVersion: readonly [number, number];
}

/** The cache key: hex SHA-256 over every input that changes the compiled image. */
export function kernelCacheKey(parts: CacheKeyParts): string {
  const h = createHash("sha256");
  h.update(JSON.stringify([parts.output, parts.nvrtcVersion, parts.options, parts.nameExpressions]));
  h.update("\0");
  h.update(parts.source);
  return h.digest("hex");
}

/** `$TORCHC_CACHE_DIR/kernels`, else `$XDG_CACHE_HOME/torchc/kernels`, else `~/.cache/torchc/kernels`. */
export function defaultKernelCacheDir(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  if (env.TORCHC_CACHE_DIR) return join(env.TORCHC_CACHE_DIR, "kernels");
  const base = env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "torchc", "kernels");
}

/** "package": the image came with a saved .torchc package (backends/cuda/artifacts-kernels.ts). */
export type CacheHit = "memory" | "disk" | "miss" | "package";

export interface CachedProgram extends CompiledProgram {
  readonly key: string;
  readonly hit: CacheHit;
}

export class KernelCache {
  private readonly memory = new Map<string, CompiledProgram>();
  private version: [number, number] | undefined;
  readonly diskDir: string | null;

  /** `disk: true` uses defaultKernelCacheDir(); a string names the folder; false/undefined keeps it in memory. */
  constructor(opts: { disk?: boolean | string } = {}) {
    this.diskDir =
      opts.disk === true ? defaultKernelCacheDir() : typeof opts.disk === "string" ? opts.disk : null;
  }

  get size(): number {
    return this.memory.size;
  }

  clear(): void {
    this.memory.clear();
  }

  /** Compiles `source`, or returns the cached image for the same inputs. */
  compile(source: string, opts: CompileOptions = {}, defaultArch = "sm_90"): CachedProgram {
    const r = this.lookup(source, opts, defaultArch);
    if ("hit" in r) return r;
    return this.store(r.key, compileWithOptions(source, r.options, r.program));
  }

  /** compile() with NVRTC on a worker thread: separate programs compile at once (builder.ts, TORCHC_NVRTC_PROGRAMS). */
  async compileAsync(
    source: string,
    opts: CompileOptions = {},
    defaultArch = "sm_90",
  ): Promise<CachedProgram> {
    const r = this.lookup(source, opts, defaultArch);
    if ("hit" in r) return r;
    return this.store(r.key, await compileWithOptionsAsync(source, r.options, r.program));
  }

  /** The cached program for these inputs, or what compiling it takes (its key and resolved options). */
  private lookup(
    source: string,
    opts: CompileOptions,
    defaultArch: string,
  ):
    | CachedProgram
    | {
        key: string;
        options: string[];
        program: { name?: string; output: "cubin" | "ptx"; nameExpressions: string[] };
      } {
    const options = resolveOptions(opts, defaultArch);
    const output = opts.output ?? "cubin";
    const nameExpressions = [...(opts.nameExpressions ?? [])];
    this.version ??= nvrtcVersion();
    const key = kernelCacheKey({ source, options, nameExpressions, output, nvrtcVersion: this.version });
    const inMemory = this.memory.get(key);
    if (inMemory) return { ...inMemory, key, hit: "memory" };
    const onDisk = this.readDisk(key);
    if (onDisk) {
      this.memory.set(key, onDisk);
      return { ...onDisk, key, hit: "disk" };
    }
    return { key, options, program: { name: opts.name, output, nameExpressions } };
  }

  private store(key: string, compiled: CompiledProgram): CachedProgram {
    this.memory.set(key, compiled);
    this.writeDisk(key, compiled);
    return { ...compiled, key, hit: "miss" };
  }

  private readDisk(key: string): CompiledProgram | undefined {
    if (this.diskDir === null) return undefined;
    try {
      const meta = JSON.parse(readFileSync(join(this.diskDir, `${key}.json`), "utf8")) as {
        kind: "cubin" | "ptx";
        loweredNames: Record<string, string>;
        log: string;
        bytes: number;
      };
      const image = new Uint8Array(readFileSync(join(this.diskDir, `${key}.bin`)));
      if (image.byteLength !== meta.bytes) return undefined;
      touchKernelCacheEntry(this.diskDir, key);
      return { kind: meta.kind, image, log: meta.log, loweredNames: meta.loweredNames, compileMs: 0 };
    } catch {
      return undefined;
    }
  }

  private writeDisk(key: string, p: CompiledProgram): void {
    if (this.diskDir === null) return;
    try {
      mkdirSync(this.diskDir, { recursive: true });
      const tmp = `.${process.pid}.${Date.now()}`;
      const bin = join(this.diskDir, `${key}.bin`);
      const json = join(this.diskDir, `${key}.json`);
      writeFileSync(bin + tmp, p.image);
      renameSync(bin + tmp, bin);
      const meta = { kind: p.kind, loweredNames: p.loweredNames, log: p.log, bytes: p.image.byteLength };
      writeFileSync(json + tmp, JSON.stringify(meta));
      renameSync(json + tmp, json);
      pruneKernelCache(this.diskDir, kernelCacheBoundBytes(), key);
    } catch {
      // A cache that cannot be written is only slower.
    }
  }
}

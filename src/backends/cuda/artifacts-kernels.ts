/**
 * The NVRTC cache of one engine build, with the compiled images a package saved: a program whose source and
 * target match a saved one is not compiled at all, and every program the build uses is kept for the next save.
 * Packages key images by what NVRTC compiles (architecture, output kind, name expressions, options, source),
 * not by the kernel cache's key, which also holds the CUDA include folder's path on the machine that built it.
 */
import { createHash } from "node:crypto";
import type { CompileOptions } from "./device/compile.js";
import { type CachedProgram, KernelCache } from "./device/kernel-cache.js";

export interface SavedKernel {
  readonly kind: "cubin" | "ptx";
  readonly image: Uint8Array;
  readonly loweredNames: Readonly<Record<string, string>>;
}

export function programId(source: string, opts: CompileOptions, defaultArch: string): string {
  const h = createHash("sha256");
  h.update(
    JSON.stringify([
      opts.arch ?? defaultArch,
      opts.output ?? "cubin",
      opts.nameExpressions ?? [],
      opts.options ?? [],
    ]),
  );
  h.update("\0");
  h.update(source);
  return h.digest("hex");
}

export class PackageKernelCache extends KernelCache {
  /** Programs this build used, by program id. */
  readonly used = new Map<string, SavedKernel>();
  /** How many programs came from the package (not compiled). */
  restored = 0;

  constructor(
    disk: boolean | string,
    private readonly saved: ReadonlyMap<string, SavedKernel>,
  ) {
    super({ disk });
  }

  override compile(source: string, opts: CompileOptions = {}, defaultArch = "sm_90"): CachedProgram {
    const id = programId(source, opts, defaultArch);
    return this.restore(id) ?? this.keep(id, super.compile(source, opts, defaultArch));
  }

  override async compileAsync(
    source: string,
    opts: CompileOptions = {},
    defaultArch = "sm_90",
  ): Promise<CachedProgram> {
    const id = programId(source, opts, defaultArch);
    return this.restore(id) ?? this.keep(id, await super.compileAsync(source, opts, defaultArch));
  }

  private restore(id: string): CachedProgram | undefined {
    const s = this.saved.get(id);
    if (!s) return undefined;
    this.used.set(id, s);
    this.restored++;
    return { ...s, log: "", compileMs: 0, key: id, hit: "package" };
  }

  private keep(id: string, p: CachedProgram): CachedProgram {
    this.used.set(id, { kind: p.kind, image: p.image, loweredNames: p.loweredNames });
    return p;
  }
}

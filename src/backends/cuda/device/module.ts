/** Loaded CUDA modules and their kernels, and the one-call path from source to launchable kernels. */
import { CU_FUNC_ATTRIBUTE, CUDA } from "../../../ffi/cuda.js";
import { checkCuda } from "../../../ffi/status.js";
import type { OutNum, OutPtr } from "../../../ffi/types.js";
import type { CompiledProgram, CompileOptions } from "./compile.js";
import { CudaContext } from "./context.js";
import { type CachedProgram, type CacheHit, KernelCache } from "./kernel-cache.js";
import { checkInt, fail } from "./validate.js";

export class Kernel {
  constructor(
    /** The CUfunction. */
    readonly handle: bigint,
    /** The symbol it was looked up by. */
    readonly symbol: string,
    readonly module: CudaModule,
  ) {}

  /** Allows up to `bytes` of dynamic shared memory per block (needed above 48 KiB). */
  setMaxDynamicSharedBytes(bytes: number): this {
    checkInt("bytes", bytes, 0, 1 << 30);
    checkCuda(
      "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)",
      CUDA.fn.cuFuncSetAttribute(this.handle, CU_FUNC_ATTRIBUTE.MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
    );
    return this;
  }

  attribute(attribute: number): number {
    const v: OutNum = [0];
    checkCuda("cuFuncGetAttribute", CUDA.fn.cuFuncGetAttribute(v, attribute, this.handle));
    return v[0];
  }

  get registers(): number {
    return this.attribute(CU_FUNC_ATTRIBUTE.NUM_REGS);
  }

  get maxThreadsPerBlock(): number {
    return this.attribute(CU_FUNC_ATTRIBUTE.MAX_THREADS_PER_BLOCK);
  }
}

export class CudaModule {
  private unloaded = false;
  private readonly kernels = new Map<string, Kernel>();

  private constructor(private readonly raw: bigint) {}

  /** Loads a CUBIN, fatbin or NUL-terminated PTX image into the current context. */
  static load(image: Uint8Array): CudaModule {
    if (!(image instanceof Uint8Array) || image.byteLength === 0)
      fail("image must be a non-empty Uint8Array");
    CudaContext.current();
    const out: OutPtr = [null];
    checkCuda("cuModuleLoadData", CUDA.fn.cuModuleLoadData(out, image));
    if (out[0] === null) throw new Error("cuModuleLoadData returned a NULL module");
    return new CudaModule(out[0]);
  }

  get handle(): bigint {
    if (this.unloaded) fail("the module has been unloaded");
    return this.raw;
  }

  /** The kernel exported as `symbol` (a plain extern "C" name or a lowered C++ name). */
  kernel(symbol: string): Kernel {
    if (typeof symbol !== "string" || symbol.length === 0) fail("symbol must be a non-empty string");
    const known = this.kernels.get(symbol);
    if (known) return known;
    const out: OutPtr = [null];
    checkCuda(`cuModuleGetFunction(${symbol})`, CUDA.fn.cuModuleGetFunction(out, this.handle, symbol));
    if (out[0] === null) throw new Error(`cuModuleGetFunction(${symbol}) returned NULL`);
    const k = new Kernel(out[0], symbol, this);
    this.kernels.set(symbol, k);
    return k;
  }

  unload(): void {
    if (this.unloaded) return;
    this.unloaded = true;
    this.kernels.clear();
    checkCuda("cuModuleUnload", CUDA.fn.cuModuleUnload(this.raw));
  }
}

export interface BuiltKernels<N extends string> {
  readonly module: CudaModule;
  readonly kernels: Readonly<Record<N, Kernel>>;
  readonly program: CompiledProgram;
  readonly cacheHit: CacheHit;
}

const defaultCache = new KernelCache();

/** A C++ name (template instance, namespace) that needs NVRTC's lowered name, as opposed to an extern "C" one. */
export function isNameExpression(name: string): boolean {
  return /[<>:(]/.test(name);
}

/**
 * Compiles `source` (through `cache`, by default a process-wide in-memory one) for the current device, loads
 * it and looks up `names`: plain names for extern "C" kernels, C++ expressions like "scale<__half>" otherwise.
 */
export function buildKernels<N extends string>(
  source: string,
  names: readonly N[],
  opts: CompileOptions & { cache?: KernelCache } = {},
): BuiltKernels<N> {
  const { cache, arch, compileOpts } = prepareBuild(names, opts);
  return loadBuilt(cache.compile(source, compileOpts, arch), names);
}

/** buildKernels with NVRTC on a worker thread (KernelCache.compileAsync); the module loads on this thread. */
export async function buildKernelsAsync<N extends string>(
  source: string,
  names: readonly N[],
  opts: CompileOptions & { cache?: KernelCache } = {},
): Promise<BuiltKernels<N>> {
  const ctx = CudaContext.current();
  const { cache, arch, compileOpts } = prepareBuild(names, opts);
  const program = await cache.compileAsync(source, compileOpts, arch);
  // another device's build may have made its context current meanwhile: load on the one this build is for
  ctx.makeCurrent();
  return loadBuilt(program, names);
}

function prepareBuild(names: readonly string[], opts: CompileOptions & { cache?: KernelCache }) {
  if (!Array.isArray(names as unknown) || names.length === 0) fail("names must list at least one kernel");
  const arch = CudaContext.current().arch;
  const expressions = names.filter(isNameExpression);
  const nameExpressions = [...new Set([...(opts.nameExpressions ?? []), ...expressions])];
  return { cache: opts.cache ?? defaultCache, arch, compileOpts: { ...opts, nameExpressions } };
}

/** Loads `program` on the current context (prepareBuild made one current) and looks up `names`. */
function loadBuilt<N extends string>(program: CachedProgram, names: readonly N[]): BuiltKernels<N> {
  const module = CudaModule.load(program.image);
  const kernels = {} as Record<N, Kernel>;
  for (const n of names) kernels[n] = module.kernel(program.loweredNames[n] ?? n);
  return { module, kernels, program, cacheHit: program.hit };
}

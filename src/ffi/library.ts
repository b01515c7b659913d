/**
 * A native library declared as a table of C prototypes and loaded lazily: nothing is searched or loaded until
 * the first function is used, and each function is bound on its first use (so a symbol missing from an older
 * library only fails the call that needs it).
 */
import { NativeError } from "../errors.js";
import { type LibraryTarget, type Loaded, loadLibrary } from "./discover.js";
import { type KoffiLibrary, koffi } from "./koffi.js";

export interface LibraryDefinition<Api> extends LibraryTarget {
  /** Short id: "cuda", "nvrtc", "cublaslt", "cudnn", "torch_cpu", "torch_cuda". */
  readonly id: string;
  /** One C prototype per function, in koffi's syntax, keyed by the exported symbol name. */
  readonly prototypes: { readonly [K in keyof Api]: string };
}

export class NativeLibrary<Api extends object> {
  private loaded: Loaded<KoffiLibrary> | undefined;
  private functions: Api | undefined;

  constructor(readonly def: LibraryDefinition<Api>) {}

  get id(): string {
    return this.def.id;
  }

  get isLoaded(): boolean {
    return this.loaded !== undefined;
  }

  /** The absolute path (or soname) it was loaded from, once loaded. */
  get path(): string | undefined {
    return this.loaded?.path;
  }

  /** Finds and loads the library (once); throws NativeError naming every place searched. */
  load(): Loaded<KoffiLibrary> {
    if (this.loaded === undefined) {
      const k = koffi();
      this.loaded = loadLibrary(this.def, (path) => k.load(path));
    }
    return this.loaded;
  }

  /** The functions; the library loads on the first access and each function binds on its first use. */
  get fn(): Api {
    if (this.functions === undefined) this.functions = this.makeFunctions();
    return this.functions;
  }

  /** Whether the loaded library exports `name` (loads the library). */
  has(name: keyof Api & string): boolean {
    try {
      this.bind(name);
      return true;
    } catch {
      return false;
    }
  }

  /** Drops the handle and bound functions without unloading (tests that swap library folders). */
  forget(): void {
    this.loaded = undefined;
    this.functions = undefined;
  }

  private bind(name: keyof Api & string): unknown {
    const { handle, path } = this.load();
    const proto = this.def.prototypes[name as keyof Api];
    try {
      return handle.func(proto);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new NativeError(
        `${this.def.title} at ${path} cannot provide ${name} (${proto}): ${why}`,
        "native.symbol-missing",
      );
    }
  }

  private makeFunctions(): Api {
    const target = Object.create(null) as Record<string, unknown>;
    for (const name of Object.keys(this.def.prototypes)) {
      Object.defineProperty(target, name, {
        configurable: true,
        enumerable: true,
        get: () => {
          const f = this.bind(name as keyof Api & string);
          Object.defineProperty(target, name, { value: f, enumerable: true, writable: false });
          return f;
        },
      });
    }
    return target as Api;
  }
}

export function defineLibrary<Api extends object>(def: LibraryDefinition<Api>): NativeLibrary<Api> {
  return new NativeLibrary(def);
}

/**
 * Runs a bound function on koffi's worker pool and resolves with its result. Only for calls that need no
 * current CUDA context (stream/event synchronization): context-bound driver calls fail on a worker.
 */
export function callAsync<A extends unknown[], R>(fn: (...args: A) => R, ...args: A): Promise<R> {
  const withAsync = fn as unknown as { async?: (...a: unknown[]) => void };
  if (typeof withAsync.async !== "function") return Promise.reject(new Error("not a koffi function"));
  return new Promise((resolve, reject) => {
    withAsync.async!(...args, (err: unknown, result: R) => (err ? reject(err) : resolve(result)));
  });
}

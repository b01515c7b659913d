/**
 * A fresh process's first CUDA work is two slow things that do not depend on each other: making the primary
 * context (cuInit, cuDevicePrimaryCtxRetain) and loading NVRTC, cuDNN (its shim and the engine libraries it
 * opens at the first handle) and cuBLASLt (hundreds of MB of shared objects). koffi.load is synchronous, so on the
 * JS thread they ran one after the other. Here the libraries are dlopen'ed on koffi's worker threads while the
 * JS thread makes the context; when the JS thread later loads the same path, the loader finds it loaded (or waits
 * for the worker's load to finish, never loads it twice). The handles are kept for the life of the process, as
 * koffi keeps its own. Best effort: a library not found or not loaded here is loaded on the JS thread as before.
 * TORCHC_PREWARM=0 turns it off (for A/B timing: test/gpu/package.gpu.test.ts).
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { CUBLASLT } from "../../../ffi/cublaslt.js";
import { CUDNN } from "../../../ffi/cudnn.js";
import { type LibraryTarget, loadLibrary } from "../../../ffi/discover.js";
import { LIBC } from "../../../ffi/libc.js";
import { callAsync } from "../../../ffi/library.js";
import { NVRTC } from "../../../ffi/nvrtc.js";

/** dlfcn.h: resolve every symbol now, as koffi.load does. */
const RTLD_NOW = 2;

/** cuDNN 9's engine libraries, next to libcudnn.so.9; the shim opens them at cudnnCreate and the first plan. */
export const CUDNN_ENGINE_LIBRARIES = [
  "libcudnn_graph.so.9",
  "libcudnn_engines_precompiled.so.9",
  "libcudnn_engines_runtime_compiled.so.9",
] as const;

/** The paths a prewarm started; `done` resolves when their loads have all ended, with how many loaded. */
export interface Prewarm {
  readonly paths: readonly string[];
  readonly done: Promise<number>;
}

let started: Prewarm | undefined;

/** Where discovery would load `target` from, without loading it. */
function pathOf(target: LibraryTarget): string | undefined {
  try {
    return loadLibrary(target, (path) => path).path;
  } catch {
    return undefined;
  }
}

/** The files to load ahead, in the order the build needs them (those the JS thread has loaded already left out). */
export function prewarmPaths(
  env: Readonly<Record<string, string | undefined>> = process.env,
  exists: (path: string) => boolean = existsSync,
): string[] {
  if (env.TORCHC_PREWARM === "0") return [];
  const out: string[] = [];
  for (const lib of [NVRTC, CUDNN, CUBLASLT]) {
    if (lib.isLoaded) continue;
    const path = pathOf(lib.def);
    if (path) out.push(path);
  }
  const cudnn = CUDNN.path ?? pathOf(CUDNN.def);
  if (cudnn?.startsWith("/"))
    for (const f of CUDNN_ENGINE_LIBRARIES) {
      const p = join(dirname(cudnn), f);
      if (exists(p)) out.push(p);
    }
  return out;
}

/**
 * Starts loading the CUDA libraries on worker threads (once per process; later calls get the first one's) and
 * returns at once; call it just before making the context.
 */
export function prewarmCudaLibraries(): Prewarm {
  if (started) return started;
  started = { paths: [], done: Promise.resolve(0) };
  let dlopen: typeof LIBC.fn.dlopen;
  try {
    dlopen = LIBC.fn.dlopen;
  } catch {
    return started;
  }
  const paths = prewarmPaths();
  const loads = paths.map((p) =>
    callAsync(dlopen, p, RTLD_NOW).then(
      (handle) => (Number(handle) !== 0 ? 1 : 0),
      () => 0,
    ),
  );
  started = { paths, done: Promise.all(loads).then((ok) => ok.reduce((a, b) => a + b, 0)) };
  return started;
}

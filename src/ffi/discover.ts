/**
 * Where native libraries are looked for, in this order (the first place that has a loadable file wins):
 *
 *  1. `TORCHC_LIBRARY_PATH`: colon-separated folders, searched left to right.
 *  2. The installed PyTorch: `$SP/torch/lib`, `$SP/nvidia/cu13/lib`, `$SP/nvidia/cudnn/lib` (then the CUDA 12
 *     wheel folders `$SP/nvidia/{cublas,cuda_nvrtc}/lib`, and cuSPARSELt's `$SP/nvidia/cusparselt/lib`), where `$SP` is what
 *     `$TORCHC_PYTHON -c "import site; print(site.getsitepackages()[0])"` prints (`TORCHC_PYTHON` defaults
 *     to `python3`; `TORCHC_PYTHON=none` skips this step).
 *  3. The CUDA toolkit: `$CUDA_HOME/lib64`, `$CUDA_PATH/lib64`, `/usr/local/cuda/lib64`,
 *     `/usr/local/cuda/targets/x86_64-linux/lib`.
 *  4. The loader path. Libraries that must be loaded by absolute path (cuDNN, cuBLASLt, NVRTC: a bare soname
 *     can resolve to a different copy than the one torch uses) are looked up in `LD_LIBRARY_PATH` and
 *     `ldconfig -p`; the others (the driver, `libcuda.so.1`) are handed to the loader by soname.
 *
 * A library found nowhere is one LibraryMissingError: a one-line message that names it, says how many places
 * were searched and what to do (the driver comes with the NVIDIA driver install; the others from their pip
 * package, PyTorch's CUDA 13 build, or TORCHC_LIBRARY_PATH), and
 * `searched`, every place in order, which the message lists too when TORCHC_VERBOSE=1.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { NativeError } from "../errors.js";

/** What to look for: one native library under one or more file names, preferred first. */
export interface LibraryTarget {
  /** Human name used in messages: "cuDNN", "CUDA driver". */
  readonly title: string;
  /** File names (sonames), preferred first: `["libnvrtc.so.13", "libnvrtc.so.12"]`. */
  readonly files: readonly string[];
  /** Load only by absolute path: the loader stage resolves through LD_LIBRARY_PATH and `ldconfig -p`. */
  readonly absolute: boolean;
}

/** One folder searched, and why it is on the list. */
export interface SearchPlace {
  readonly dir: string;
  readonly source: string;
}

/** The outside world discovery reads; tests replace it. */
export interface DiscoveryHost {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The site-packages folder of the Python that holds torch, or why there is none. */
  sitePackages(python: string): { dir: string } | { error: string };
  /** `ldconfig -p` as soname → absolute path (x86-64 entries first). */
  ldconfig(): ReadonlyMap<string, string>;
  exists(path: string): boolean;
}

/** A library that was found and loaded. */
export interface Loaded<H> {
  readonly handle: H;
  readonly path: string;
  readonly source: string;
}

const PYTORCH_SUBDIRS = [
  "torch/lib",
  "nvidia/cu13/lib",
  "nvidia/cudnn/lib",
  "nvidia/cublas/lib",
  "nvidia/cuda_nvrtc/lib",
  "nvidia/cusparselt/lib",
];
const TOOLKIT_DIRS = ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"];

function splitPath(value: string | undefined): string[] {
  return (value ?? "").split(":").filter((d) => d.length > 0);
}

/** The Python interpreter discovery asks for site-packages, or null when `TORCHC_PYTHON=none`. */
export function pythonFor(host: DiscoveryHost): string | null {
  const p = host.env.TORCHC_PYTHON;
  if (p === undefined || p === "") return "python3";
  return p === "none" ? null : p;
}

/** Folders searched before the loader path, in order, and notes on places that could not be asked. */
export function searchPlaces(host: DiscoveryHost): { places: SearchPlace[]; notes: string[] } {
  const places: SearchPlace[] = [];
  const notes: string[] = [];
  const seen = new Set<string>();
  const add = (dir: string, source: string) => {
    if (seen.has(dir)) return;
    seen.add(dir);
    places.push({ dir, source });
  };
  for (const dir of splitPath(host.env.TORCHC_LIBRARY_PATH)) add(dir, "TORCHC_LIBRARY_PATH");
  const python = pythonFor(host);
  if (python === null) {
    notes.push("PyTorch install: skipped (TORCHC_PYTHON=none)");
  } else {
    const sp = host.sitePackages(python);
    if ("dir" in sp) for (const sub of PYTORCH_SUBDIRS) add(join(sp.dir, sub), `PyTorch install (${python})`);
    else notes.push(`PyTorch install: ${python} gave no site-packages (${sp.error})`);
  }
  for (const name of ["CUDA_HOME", "CUDA_PATH"]) {
    const root = host.env[name];
    if (root) add(join(root, "lib64"), name);
  }
  for (const dir of TOOLKIT_DIRS) add(dir, "CUDA toolkit");
  return { places, notes };
}

/**
 * Finds and loads `target` with `load` (koffi.load in production), trying each place in order.
 * A file that exists but fails to load is recorded and the search goes on.
 */
export function loadLibrary<H>(
  target: LibraryTarget,
  load: (path: string) => H,
  host: DiscoveryHost = systemHost(),
): Loaded<H> {
  const tried: string[] = [];
  const attempt = (path: string, source: string): Loaded<H> | undefined => {
    try {
      return { handle: load(path), path, source };
    } catch (e) {
      tried.push(`${source}: ${path} (exists but failed to load: ${firstLine(e)})`);
      return undefined;
    }
  };
  const { places, notes } = searchPlaces(host);
  let notesPending = notes.length > 0;
  for (const { dir, source } of places) {
    if (notesPending && source !== "TORCHC_LIBRARY_PATH") {
      tried.push(...notes);
      notesPending = false;
    }
    for (const file of target.files) {
      const path = join(dir, file);
      if (!host.exists(path)) {
        tried.push(`${source}: ${path} (not there)`);
        continue;
      }
      const hit = attempt(path, source);
      if (hit) return hit;
    }
  }
  if (notesPending) tried.push(...notes);
  if (target.absolute) {
    for (const dir of splitPath(host.env.LD_LIBRARY_PATH)) {
      for (const file of target.files) {
        const path = join(dir, file);
        if (!host.exists(path)) {
          tried.push(`LD_LIBRARY_PATH: ${path} (not there)`);
          continue;
        }
        const hit = attempt(path, "LD_LIBRARY_PATH");
        if (hit) return hit;
      }
    }
    const cache = host.ldconfig();
    for (const file of target.files) {
      const path = cache.get(file);
      if (path === undefined) {
        tried.push(`loader cache (ldconfig -p): ${file} (not listed)`);
        continue;
      }
      const hit = attempt(path, "loader cache (ldconfig -p)");
      if (hit) return hit;
    }
  } else {
    for (const file of target.files) {
      try {
        return { handle: load(file), path: file, source: "loader path" };
      } catch (e) {
        tried.push(`loader path: dlopen("${file}") failed: ${firstLine(e)}`);
      }
    }
  }
  throw new LibraryMissingError(target, tried, host.env.TORCHC_VERBOSE === "1");
}

/** A native library found nowhere: one line for the user, every place searched in `searched`. */
export class LibraryMissingError extends NativeError {
  constructor(
    readonly target: LibraryTarget,
    /** Every place searched, in order, with what was found there. */
    readonly searched: readonly string[],
    verbose = false,
  ) {
    super(missingMessage(target, searched, verbose), "native.library-missing");
    this.name = "LibraryMissingError";
  }
}

/** The driver library ships with the NVIDIA driver, never with PyTorch or the CUDA toolkit's wheels. */
export function isDriverLibrary(target: LibraryTarget): boolean {
  return target.files.some((f) => f.startsWith("libcuda.so"));
}

/**
 * The pip package that installs a library where discovery looks (site-packages/nvidia/…), by file name. The
 * CUDA 13 wheels are unsuffixed except cuDNN's; PyTorch's CUDA 13 build depends on all of them.
 */
const PIP_PACKAGES: readonly (readonly [RegExp, string])[] = [
  [/^libcudnn/, "nvidia-cudnn-cu13"],
  [/^libcublas/, "nvidia-cublas"],
  [/^libnvrtc/, "nvidia-cuda-nvrtc"],
  [/^libcusparseLt/, "nvidia-cusparselt-cu13"],
  [/^libtorch/, "torch"],
];

/** What to do about a missing library, in a clause. */
function adviceFor(target: LibraryTarget): string {
  const file = target.files[0];
  if (isDriverLibrary(target))
    return (
      `${file} comes with the NVIDIA driver (≥ 580), not with PyTorch or pip: run on a machine with an NVIDIA GPU ` +
      "and its driver (check nvidia-smi), or use the reference backend (--backend reference) on the CPU"
    );
  const pip = PIP_PACKAGES.find(([re]) => re.test(file))?.[1];
  const install =
    pip === "torch"
      ? "install PyTorch built for CUDA 13 (pip install torch --index-url https://download.pytorch.org/whl/cu130)"
      : pip
        ? `pip install ${pip} (PyTorch's CUDA 13 build brings it too)`
        : "install PyTorch built for CUDA 13, which brings it";
  return `${install}, or set TORCHC_LIBRARY_PATH to the folder that holds ${file}`;
}

function missingMessage(target: LibraryTarget, tried: readonly string[], verbose: boolean): string {
  const file = target.files[0];
  const failed = tried.find((t) => t.includes("exists but failed to load"));
  // Notes on places that could not be asked ("PyTorch install: skipped …") are listed but are not places.
  const places = tried.filter((t) => !t.startsWith("PyTorch install: ")).length;
  const listed = verbose ? "listed below" : "TORCHC_VERBOSE=1 lists them";
  const where = failed
    ? `${failed.replace(/^[^:]*: /, "found ")}`
    : `not found in ${places} places (${listed})`;
  const line =
    isDriverLibrary(target) && !failed
      ? `no NVIDIA driver found: ${file} is not in ${places} places (${listed}); ${adviceFor(target)}`
      : `cannot load ${target.title} (${target.files.join(" or ")}): ${where}; ${adviceFor(target)}`;
  return verbose ? [line, ...tried.map((t, i) => `  ${i + 1}. ${t}`)].join("\n") : line;
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0] ?? msg;
}

/** Folders holding the CUDA headers NVRTC needs (`cuda_fp16.h`), best first. */
export function cudaIncludeDirs(host: DiscoveryHost = systemHost()): string[] {
  const dirs: string[] = [...splitPath(host.env.TORCHC_CUDA_INCLUDE_PATH)];
  const python = pythonFor(host);
  if (python !== null) {
    const sp = host.sitePackages(python);
    if ("dir" in sp) {
      dirs.push(join(sp.dir, "nvidia/cu13/include"), join(sp.dir, "nvidia/cuda_runtime/include"));
    }
  }
  for (const name of ["CUDA_HOME", "CUDA_PATH"]) {
    const root = host.env[name];
    if (root) dirs.push(join(root, "include"));
  }
  dirs.push("/usr/local/cuda/include");
  return [...new Set(dirs)].filter((d) => host.exists(join(d, "cuda_fp16.h")));
}

// ---------------------------------------------------------------- the real host, cached per process

const sitePackagesCache = new Map<string, { dir: string } | { error: string }>();
let ldconfigCache: Map<string, string> | undefined;

function querySitePackages(python: string): { dir: string } | { error: string } {
  const hit = sitePackagesCache.get(python);
  if (hit) return hit;
  let result: { dir: string } | { error: string };
  try {
    const out = execFileSync(python, ["-c", "import site; print(site.getsitepackages()[0])"], {
      encoding: "utf8",
      timeout: 20_000,
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
    result = out ? { dir: out } : { error: "printed nothing" };
  } catch (e) {
    result = { error: firstLine(e) };
  }
  sitePackagesCache.set(python, result);
  return result;
}

/** Parses `ldconfig -p` output into soname → path, preferring x86-64 entries. */
export function parseLdconfig(text: string): Map<string, string> {
  const map = new Map<string, string>();
  const re = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$/;
  const rows = text.split("\n").flatMap((line) => {
    const m = re.exec(line);
    return m ? [{ name: m[1]!, tags: m[2]!, path: m[3]! }] : [];
  });
  for (const r of rows) if (r.tags.includes("x86-64") && !map.has(r.name)) map.set(r.name, r.path);
  for (const r of rows) if (!map.has(r.name)) map.set(r.name, r.path);
  return map;
}

function queryLdconfig(): Map<string, string> {
  if (ldconfigCache) return ldconfigCache;
  ldconfigCache = new Map();
  for (const bin of ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"]) {
    try {
      const out = execFileSync(bin, ["-p"], {
        encoding: "utf8",
        timeout: 10_000,
        stdio: ["ignore", "pipe", "ignore"],
      });
      ldconfigCache = parseLdconfig(out);
      break;
    } catch {
      // try the next spelling
    }
  }
  return ldconfigCache;
}

/** Discovery against this process's environment, file system, Python and loader cache. */
export function systemHost(): DiscoveryHost {
  return {
    env: process.env,
    sitePackages: querySitePackages,
    ldconfig: queryLdconfig,
    exists: existsSync,
  };
}

/** Forgets cached Python and ldconfig answers (tests, or after the environment changed). */
export function clearDiscoveryCache(): void {
  sitePackagesCache.clear();
  ldconfigCache = undefined;
}

/**
 * NVRTC: CUDA C++ source → CUBIN (or PTX), with the lowered names of template kernels. The CUDA headers
 * folder (for `cuda_fp16.h`) is added automatically when discovery finds one.
 */
import { cudaIncludeDirs } from "../../../ffi/discover.js";
import { callAsync } from "../../../ffi/library.js";
import { NVRTC } from "../../../ffi/nvrtc.js";
import { checkNvrtc, NvrtcError } from "../../../ffi/status.js";
import type { OutNum, OutPtr, OutStr, Ptr } from "../../../ffi/types.js";
import { checkOneOf, fail } from "./validate.js";

export interface CompileOptions {
  /** Program name shown in the log. */
  name?: string;
  /** Target, e.g. "sm_90" or "sm_90a"; default: the current device's (see module.ts), else "sm_90". */
  arch?: string;
  /** "cubin" (default) or "ptx" (JIT-compiled by the driver at load). */
  output?: "cubin" | "ptx";
  /** Extra NVRTC options, e.g. "--use_fast_math", "-std=c++17", "-default-device". */
  options?: readonly string[];
  /** Extra include folders (-I). */
  includeDirs?: readonly string[];
  /** Add the discovered CUDA include folder (default true). */
  cudaIncludes?: boolean;
  /** C++ names to resolve, e.g. "scale<__half>"; extern "C" kernels need none. */
  nameExpressions?: readonly string[];
}

export interface CompiledProgram {
  readonly kind: "cubin" | "ptx";
  /** The CUBIN, or the NUL-terminated PTX, ready for cuModuleLoadData. */
  readonly image: Uint8Array;
  readonly log: string;
  /** name expression → mangled symbol. */
  readonly loweredNames: Readonly<Record<string, string>>;
  readonly compileMs: number;
}

/** The exact NVRTC option list compile() uses for `opts` (also part of the cache key). */
export function resolveOptions(
  opts: CompileOptions,
  defaultArch = "sm_90",
  cudaIncludes?: () => string[],
): string[] {
  const output = checkOneOf("output", opts.output ?? "cubin", ["cubin", "ptx"] as const);
  const arch = opts.arch ?? defaultArch;
  const m = /^(?:sm|compute)_(\d+[a-z]?)$/.exec(arch);
  if (!m) fail(`arch must look like "sm_90" or "sm_90a", got ${JSON.stringify(arch)}`);
  const target = output === "cubin" ? `sm_${m[1]}` : `compute_${m[1]}`;
  const includes = [...(opts.includeDirs ?? [])];
  if (opts.cudaIncludes !== false) includes.push(...(cudaIncludes ?? cudaIncludeDirs)().slice(0, 1));
  return [`--gpu-architecture=${target}`, ...includes.map((d) => `-I${d}`), ...(opts.options ?? [])];
}

/** NVRTC's version as [major, minor]. */
export function nvrtcVersion(): [number, number] {
  const major: OutNum = [0];
  const minor: OutNum = [0];
  checkNvrtc("nvrtcVersion", NVRTC.fn.nvrtcVersion(major, minor));
  return [major[0], minor[0]];
}

type ProgramOptions = { name?: string; output?: "cubin" | "ptx"; nameExpressions?: readonly string[] };

/** An NVRTC program for `source` with its name expressions added; the caller compiles and destroys it. */
function createProgram(source: string, opts: ProgramOptions): Ptr {
  if (typeof source !== "string" || source.length === 0) fail("source must be a non-empty string");
  if (source.includes("\0")) fail("source must not contain NUL characters");
  const f = NVRTC.fn;
  const progOut: OutPtr = [null];
  checkNvrtc(
    "nvrtcCreateProgram",
    f.nvrtcCreateProgram(progOut, source, opts.name ?? "torchc.cu", 0, null, null),
  );
  const prog: Ptr = progOut[0];
  try {
    for (const n of opts.nameExpressions ?? [])
      checkNvrtc(`nvrtcAddNameExpression(${n})`, f.nvrtcAddNameExpression(prog, n));
  } catch (e) {
    f.nvrtcDestroyProgram([prog]);
    throw e;
  }
  return prog;
}

/** The compiled image, log and lowered names of `prog` after nvrtcCompileProgram returned `rc`. */
function readProgram(prog: Ptr, rc: number, opts: ProgramOptions, started: number): CompiledProgram {
  const kind = opts.output ?? "cubin";
  const log = readLog(prog);
  if (rc !== 0) throw new NvrtcError("nvrtcCompileProgram", rc, log);
  const size: OutNum = [0];
  const image = kind === "cubin" ? readCubin(prog, size) : readPtx(prog, size);
  const loweredNames: Record<string, string> = {};
  for (const n of opts.nameExpressions ?? []) {
    const lowered: OutStr = [null];
    checkNvrtc(`nvrtcGetLoweredName(${n})`, NVRTC.fn.nvrtcGetLoweredName(prog, n, lowered));
    if (!lowered[0]) fail(`NVRTC gave no lowered name for ${n}`);
    loweredNames[n] = lowered[0];
  }
  return { kind, image, log, loweredNames, compileMs: performance.now() - started };
}

/** Compiles `source` with already-resolved NVRTC `options`. Throws NvrtcError with the log on failure. */
export function compileWithOptions(
  source: string,
  options: readonly string[],
  opts: ProgramOptions = {},
): CompiledProgram {
  const started = performance.now();
  const prog = createProgram(source, opts);
  try {
    return readProgram(prog, NVRTC.fn.nvrtcCompileProgram(prog, options.length, [...options]), opts, started);
  } finally {
    NVRTC.fn.nvrtcDestroyProgram([prog]);
  }
}

/**
 * compileWithOptions with nvrtcCompileProgram on one of libuv's worker threads, so several programs compile at
 * once (NVRTC compiles separate programs independently on separate threads).
 */
export async function compileWithOptionsAsync(
  source: string,
  options: readonly string[],
  opts: ProgramOptions = {},
): Promise<CompiledProgram> {
  const started = performance.now();
  const prog = createProgram(source, opts);
  try {
    const rc = await callAsync(NVRTC.fn.nvrtcCompileProgram, prog, options.length, [...options]);
    return readProgram(prog, rc, opts, started);
  } finally {
    NVRTC.fn.nvrtcDestroyProgram([prog]);
  }
}

/** Compiles CUDA C++ for the given (or default) architecture. */
export function compileCuda(
  source: string,
  opts: CompileOptions = {},
  defaultArch = "sm_90",
): CompiledProgram {
  return compileWithOptions(source, resolveOptions(opts, defaultArch), {
    name: opts.name,
    output: opts.output,
    nameExpressions: opts.nameExpressions,
  });
}

function readLog(prog: Ptr): string {
  const size: OutNum = [0];
  if (NVRTC.fn.nvrtcGetProgramLogSize(prog, size) !== 0 || size[0] <= 1) return "";
  const buf = new Uint8Array(size[0]);
  if (NVRTC.fn.nvrtcGetProgramLog(prog, buf) !== 0) return "";
  return new TextDecoder().decode(buf.subarray(0, size[0] - 1));
}

function readCubin(prog: Ptr, size: OutNum): Uint8Array {
  checkNvrtc("nvrtcGetCUBINSize", NVRTC.fn.nvrtcGetCUBINSize(prog, size));
  if (size[0] === 0) fail("NVRTC produced an empty CUBIN (was a compute_XX target used?)");
  const buf = new Uint8Array(size[0]);
  checkNvrtc("nvrtcGetCUBIN", NVRTC.fn.nvrtcGetCUBIN(prog, buf));
  return buf;
}

function readPtx(prog: Ptr, size: OutNum): Uint8Array {
  checkNvrtc("nvrtcGetPTXSize", NVRTC.fn.nvrtcGetPTXSize(prog, size));
  const buf = new Uint8Array(size[0]);
  checkNvrtc("nvrtcGetPTX", NVRTC.fn.nvrtcGetPTX(prog, buf));
  return buf;
}

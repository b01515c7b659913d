/**
 * What a backend saves about the engines it built, so that loading a package does no heuristics, no timing and no
 * NVRTC: per engine segment a JSON record (library plan choices, memory plan, kernel references) and binary blobs
 * (compiled kernels). The runtime stores them opaquely; the backend that wrote them reads them back. They are only
 * valid on the target they were built for (GPU architecture and library versions), which is recorded with them.
 */
import { TorchcError } from "../errors.js";

/** The machine and libraries an engine was built for. Every field is compared on load (see targetMismatch). */
export interface BuildTarget {
  /** The backend that built it ("cuda"). */
  readonly backend: string;
  /** GPU architecture, "sm_90". */
  readonly arch: string;
  /** Device name, for messages only (not compared). */
  readonly device: string;
  /** CUDA driver API version (cuDriverGetVersion, 13000 = 13.0); the loading driver must be at least this. */
  readonly driver: number;
  /** NVRTC version ("13.0"): the generated kernels' compiler. */
  readonly cuda: string;
  /** cudnnGetVersion(), 91900 = 9.19.0. */
  readonly cudnn: number;
  /** cublasLtGetVersion(). */
  readonly cublasLt: number;
}

/** How `loadCompiled` treats saved engines: use them (error on a mismatch), rebuild when they don't fit, or always rebuild. */
export type RebuildPolicy = "never" | "if-needed" | "always";

export interface SavedArtifacts {
  readonly builtFor: BuildTarget;
  /** Per engine segment (by segment index): the backend's own JSON record. */
  readonly engines: Readonly<Record<string, unknown>>;
  /** Binary entries (compiled kernels), by name; the package stores them under `engines/`. */
  readonly blobs: Readonly<Record<string, Uint8Array>>;
}

/** Saved artifacts as handed back to a backend on load: where they came from and what to do on a mismatch. */
export interface LoadedArtifacts extends SavedArtifacts {
  readonly origin: string;
  readonly rebuild: Exclude<RebuildPolicy, "always">;
}

const COMPARED = ["backend", "arch", "cuda", "cudnn", "cublasLt"] as const;

/** Each way `current` cannot run engines built for `built`, worded for a message; empty when it can. */
export function targetMismatch(built: BuildTarget, current: BuildTarget): string[] {
  const out: string[] = [];
  for (const k of COMPARED)
    if (built[k] !== current[k]) out.push(`${k} ${String(built[k])} (here ${String(current[k])})`);
  if (current.driver < built.driver) out.push(`driver ${built.driver} or newer (here ${current.driver})`);
  return out;
}

/**
 * Whether saved engines may be used on `current`: true when they fit; false (after `warn`) when they don't and
 * the policy is "if-needed"; a `package.mismatch` error otherwise.
 */
export function acceptArtifacts(
  saved: LoadedArtifacts,
  current: BuildTarget,
  warn: (message: string) => void = defaultWarn,
): boolean {
  const diff = targetMismatch(saved.builtFor, current);
  if (diff.length === 0) return true;
  const what = `${saved.origin}: its engines were built for ${diff.join(", ")}`;
  if (saved.rebuild === "if-needed") {
    warn(`${what}; rebuilding them (rebuild: "if-needed")`);
    return false;
  }
  throw new TorchcError(
    `${what}; recompile the model here, or load it with { rebuild: "if-needed" } to rebuild the engines`,
    "package.mismatch",
  );
}

function defaultWarn(message: string): void {
  process.emitWarning(message, { code: "TORCHC_REBUILD" });
}

export function formatTarget(t: BuildTarget): string {
  return `${t.backend} ${t.arch} (${t.device}), driver ${t.driver}, CUDA ${t.cuda}, cuDNN ${t.cudnn}, cuBLASLt ${t.cublasLt}`;
}

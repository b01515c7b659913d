import { InputError } from "../errors.js";

/**
 * Resource budgets for reading untrusted files. Every number has a default that fits real models with room to
 * spare, and can be changed with an environment variable or (memory) `torchc --max-memory 8g`.
 *
 * | budget | default | environment variable |
 * | --- | --- | --- |
 * | bytes read from files, inflated from zip entries and materialised from views, per load | 4 GiB | `TORCHC_MAX_MEMORY` (or `--max-memory`) |
 * | JSON nesting depth of a package manifest (fixed schemas are decoded no deeper than the schema) | 512 | `TORCHC_MAX_JSON_DEPTH` |
 * | TorchScript interpreter steps per model | 50,000,000 | `TORCHC_MAX_SCRIPT_STEPS` |
 * | TorchScript loop iterations in total | 1,000,000 | `TORCHC_MAX_LOOP_TRIPS` |
 * | TorchScript list length | 10,000,000 | `TORCHC_MAX_LIST_LENGTH` |
 * | TorchScript integer size (bits) | 64 (int64, as TorchScript) | — |
 * | TorchScript call depth and syntax nesting depth | 200 | `TORCHC_MAX_NESTING` |
 * | pickle integer size (bytes of a LONG4, or the digits of as many bytes in a LONG) | 256 (LONG1's most) | `TORCHC_MAX_PICKLE_INT_BYTES` |
 */
export interface Limits {
  maxMemory: number;
  maxJsonDepth: number;
  maxScriptSteps: number;
  maxLoopTrips: number;
  maxListLength: number;
  maxNesting: number;
  maxPickleIntBytes: number;
}

const GiB = 1024 ** 3;

const DEFAULTS: Limits = {
  maxMemory: 4 * GiB,
  maxJsonDepth: 512,
  maxScriptSteps: 50_000_000,
  maxLoopTrips: 1_000_000,
  maxListLength: 10_000_000,
  maxNesting: 200,
  maxPickleIntBytes: 256,
};

const ENV: Record<keyof Limits, string> = {
  maxMemory: "TORCHC_MAX_MEMORY",
  maxJsonDepth: "TORCHC_MAX_JSON_DEPTH",
  maxScriptSteps: "TORCHC_MAX_SCRIPT_STEPS",
  maxLoopTrips: "TORCHC_MAX_LOOP_TRIPS",
  maxListLength: "TORCHC_MAX_LIST_LENGTH",
  maxNesting: "TORCHC_MAX_NESTING",
  maxPickleIntBytes: "TORCHC_MAX_PICKLE_INT_BYTES",
};

const overrides: Partial<Limits> = {};

/** `4g`, `512m`, `100k`, `1048576` (bytes) → bytes; a user error for anything else. */
export function parseByteSize(text: string, what = "--max-memory"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(text);
  const scale: Record<string, number> = { "": 1, k: 1024, m: 1024 ** 2, g: GiB, t: 1024 ** 4 };
  const bytes = m ? Math.floor(Number(m[1]) * scale[m[2].toLowerCase()]) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0)
    throw new InputError(
      `${what} ${JSON.stringify(text)}: expected a size like 4g, 512m or 1048576`,
      "limits.invalid",
    );
  return bytes;
}

/** The budgets in force: `setLimits` overrides, then environment variables, then defaults. */
export function limits(): Limits {
  const out = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof Limits)[]) {
    const o = overrides[key];
    if (o !== undefined) {
      out[key] = o;
      continue;
    }
    const env = process.env[ENV[key]];
    if (env !== undefined && env !== "")
      out[key] = key === "maxMemory" ? parseByteSize(env, ENV[key]) : parsePositive(env, ENV[key]);
  }
  return out;
}

function parsePositive(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0)
    throw new InputError(`${what}=${JSON.stringify(text)}: expected a positive integer`, "limits.invalid");
  return n;
}

/** Overrides budgets for this process (the CLI's `--max-memory`); `undefined` restores the default. */
export function setLimits(changes: Partial<Limits>): void {
  for (const [k, v] of Object.entries(changes) as [keyof Limits, number | undefined][]) {
    if (v === undefined) delete overrides[k];
    else overrides[k] = v;
  }
}

export function formatBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(n % GiB === 0 ? 0 : 1)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}

/**
 * Bytes charged against the memory budget while one file is loaded. Each reader of untrusted data charges
 * what it is about to allocate before it allocates it, so an oversized request fails before memory is spent.
 */
export class MemoryBudget {
  private used = 0;
  readonly limit: number;

  constructor(
    private readonly fail: (detail: string) => never,
    limit = limits().maxMemory,
  ) {
    this.limit = limit;
  }

  charge(bytes: number, what: string): void {
    if (!Number.isFinite(bytes) || bytes < 0) this.fail(`${what} has an impossible size (${bytes} bytes)`);
    if (this.used + bytes > this.limit)
      this.fail(
        `${what} needs ${formatBytes(bytes)}, over the memory budget of ${formatBytes(this.limit)} (${formatBytes(this.used)} already used; raise it with --max-memory or TORCHC_MAX_MEMORY)`,
      );
    this.used += bytes;
  }

  get bytesUsed(): number {
    return this.used;
  }

  /** Back to an earlier `bytesUsed`, for work that is repeated (a decode rerun to name a JSON path). */
  resetTo(used: number): void {
    this.used = Math.min(this.used, used);
  }
}

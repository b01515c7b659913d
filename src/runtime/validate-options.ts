/**
 * Checks compile options a person typed, before anything is built: op names against the catalogue (and the
 * model's own ops), with a "did you mean" when one is close; numbers in range.
 */
import { TorchcError } from "../errors.js";
import type { Graph } from "../ir/graph.js";
import { OP_NAMES } from "../ops/index.js";
import { FP16_OVERFLOW_MODES } from "../passes/fp16-overflow.js";
import { quantPrecisionOf } from "./calibration.js";
import { checkSensitivityOptions } from "./calibration-sensitivity.js";
import { type CompileOptions, normalizePrecisions } from "./options.js";

/** Edit distance (insertions, deletions, substitutions), for suggestions. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The closest known name, when it is close enough to be what was meant. */
export function closest(name: string, known: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 5)) ? best : undefined;
}

/** torchExecutedOps must name aten overloads the catalogue knows or the model uses. */
export function checkOpNames(
  names: readonly string[] | undefined,
  graph: Graph,
  option = "torchExecutedOps",
): void {
  if (names === undefined) return;
  if (!Array.isArray(names)) throw new TorchcError(`${option} must be a list of op names`, "options.invalid");
  const known = new Set<string>([...OP_NAMES, ...graph.nodes.map((n) => n.op)]);
  for (const name of names) {
    if (typeof name !== "string")
      throw new TorchcError(`${option}: ${String(name)} is not an op name`, "options.invalid");
    if (known.has(name)) continue;
    const hint = closest(name, known);
    throw new TorchcError(
      `${option}: unknown op '${name}'${hint ? ` (did you mean '${hint}'?)` : ""}; names look like aten.silu.default`,
      "options.unknown-op",
    );
  }
}

function checkCount(name: string, v: number | undefined, min: number, max: number): void {
  if (v === undefined) return;
  if (!Number.isInteger(v) || v < min || v > max)
    throw new TorchcError(
      `${name} must be an integer from ${min} to ${max}, got ${String(v)}`,
      "options.invalid",
    );
}

/** Every option compile() reads; listing a new option here is a type error until it is added (and checked below). */
const OPTION_NAMES: Readonly<Record<keyof CompileOptions, true>> = {
  inputs: true,
  dynamic: true,
  enabledPrecisions: true,
  calibration: true,
  minBlockSize: true,
  torchExecutedOps: true,
  requireFullCompilation: true,
  backend: true,
  passes: true,
  tf32: true,
  tune: true,
  contexts: true,
  completion: true,
  device: true,
  workspaceBytes: true,
  converters: true,
  verify: true,
  truncateDouble: true,
  sparseWeights: true,
  fp16Overflow: true,
  artifacts: true,
};

function invalid(detail: string): never {
  throw new TorchcError(detail, "options.invalid");
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null;

/** Option names compile() does not know (a typo from JavaScript), with a "did you mean". */
function checkNames(options: object): void {
  const known = Object.keys(OPTION_NAMES);
  for (const k of Object.keys(options)) {
    if (Object.hasOwn(OPTION_NAMES, k)) continue;
    const hint = closest(k, known);
    throw new TorchcError(
      `unknown option '${k}'${hint ? ` (did you mean '${hint}'?)` : ""}`,
      "options.unknown",
    );
  }
}

function checkBoolean(name: string, v: unknown): void {
  if (v !== undefined && typeof v !== "boolean") invalid(`${name} must be true or false, got ${String(v)}`);
}

/** The options whose values are objects or functions: their shape, before anything is built. */
function checkShapes(o: CompileOptions): void {
  const b = o.backend as unknown;
  if (b !== undefined && b !== "reference" && b !== "cuda") {
    if (!isObject(b) || typeof b.engine !== "function" || typeof b.fallback !== "function")
      invalid(
        `backend must be "reference", "cuda" or an object with engine() and fallback(), got ${String(b)}`,
      );
  }
  const p = o.passes as unknown;
  if (p !== undefined && typeof p !== "function") {
    if (!Array.isArray(p)) invalid("passes must be a list of passes or a function of the default list");
    for (const x of p)
      if (!isObject(x) || typeof x.name !== "string" || typeof x.run !== "function")
        invalid(`passes: ${String(x)} is not a pass (an object with a name and run())`);
  }
  const c = o.converters as unknown;
  if (c !== undefined && (!Array.isArray(c) || !c.every(Array.isArray)))
    invalid("converters must be a list of converter tables (lists of candidates made with converter())");
  const v = o.verify as unknown;
  if (v !== undefined && typeof v !== "boolean") {
    if (!isObject(v)) invalid(`verify must be true, false or { inputs?, tolerance? }, got ${String(v)}`);
    if (v.inputs !== undefined && !Array.isArray(v.inputs))
      invalid("verify.inputs must be a list of tensors");
    const t = v.tolerance;
    if (t !== undefined && !(typeof t === "number" && t > 0 && Number.isFinite(t)))
      invalid(`verify.tolerance must be a positive number, got ${String(t)}`);
  }
  const e = o.enabledPrecisions as unknown;
  if (e !== undefined && !Array.isArray(e)) invalid('enabledPrecisions must be a list, e.g. ["fp16"]');
  for (const k of ["inputs"] as const)
    if (o[k] !== undefined && !Array.isArray(o[k])) invalid(`${k} must be a list of input specs`);
  for (const k of ["dynamic", "calibration", "artifacts"] as const)
    if (o[k] !== undefined && !isObject(o[k])) invalid(`${k} must be an object`);
}

/** Every option check that needs no device. */
export function checkCompileOptions(options: CompileOptions, graph: Graph): void {
  if (!isObject(options as unknown)) invalid("compile options must be an object");
  checkNames(options);
  checkShapes(options);
  for (const k of ["requireFullCompilation", "tf32", "tune", "truncateDouble"] as const)
    checkBoolean(k, options[k]);
  if (options.enabledPrecisions) normalizePrecisions(options.enabledPrecisions);
  checkOpNames(options.torchExecutedOps, graph);
  checkCount("contexts", options.contexts, 1, 64);
  checkCount("device", options.device, 0, 1023);
  checkCount("minBlockSize", options.minBlockSize, 1, 1 << 20);
  checkCount("workspaceBytes", options.workspaceBytes, 0, 2 ** 40);
  checkSparseWeights(options);
  checkCalibration(options);
  const f = options.fp16Overflow as unknown;
  if (f !== undefined && !FP16_OVERFLOW_MODES.includes(f as never))
    invalid(`fp16Overflow must be ${FP16_OVERFLOW_MODES.join(", ")}, got ${JSON.stringify(f)}`);
  if (options.completion !== undefined && !["poll", "worker", "hostfn"].includes(options.completion))
    throw new TorchcError(
      `completion must be poll, worker or hostfn, got '${String(options.completion)}'`,
      "options.invalid",
    );
}

/** calibration's callbacks, and its sensitivity option (which needs int8 or fp8 enabled). */
function checkCalibration(o: CompileOptions): void {
  const c = o.calibration as Record<string, unknown> | undefined;
  if (c === undefined) return;
  for (const k of ["onProgress", "onSensitivity"])
    if (c[k] !== undefined && typeof c[k] !== "function") invalid(`calibration.${k} must be a function`);
  checkSensitivityOptions(c.sensitivity, quantPrecisionOf(o.enabledPrecisions) !== undefined);
}

/** sparseWeights is true, false or "prefer"; true needs the cuda backend (a custom backend decides for itself). */
function checkSparseWeights(o: CompileOptions): void {
  const v = o.sparseWeights as unknown;
  if (v !== undefined && v !== true && v !== false && v !== "prefer")
    invalid(`sparseWeights must be true, false or "prefer", got ${JSON.stringify(v)}`);
  if (v === true && (o.backend === undefined || o.backend === "reference"))
    throw new TorchcError(
      `sparseWeights: the reference backend runs every layer dense; use backend "cuda", or sparseWeights: "prefer"`,
      "sparse.unavailable",
    );
}

/** loadCompiled's `rebuild`. */
export function checkRebuild(v: unknown): void {
  if (v !== "never" && v !== "if-needed" && v !== "always")
    throw new TorchcError(
      `rebuild must be never, if-needed or always, got '${String(v)}'`,
      "options.invalid",
    );
}

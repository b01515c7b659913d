/**
 * Checks compile options a person typed, before anything is built: op names against the catalogue (and the
 * model's own ops), with a "did you mean" when one is close; numbers in range.
 */
import { TorchcError } from "../errors.js";
import type { Graph } from "../ir/graph.js";
import { OP_NAMES } from "../ops/index.js";
import type { CompileOptions } from "./options.js";

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

/** Every option check that needs no device. */
export function checkCompileOptions(options: CompileOptions, graph: Graph): void {
  checkOpNames(options.torchExecutedOps, graph);
  checkCount("contexts", options.contexts, 1, 64);
  checkCount("device", options.device, 0, 1023);
  checkCount("minBlockSize", options.minBlockSize, 1, 1 << 20);
  checkCount("workspaceBytes", options.workspaceBytes, 0, 2 ** 40);
  if (options.completion !== undefined && !["poll", "worker", "hostfn"].includes(options.completion))
    throw new TorchcError(
      `completion must be poll, worker or hostfn, got '${String(options.completion)}'`,
      "options.invalid",
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

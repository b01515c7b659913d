/**
 * Files the benchmark harnesses (zoo.bench.ts, transformers.bench.ts) share: the fixture models for a dry run, the
 * carried build's manifest, and JSON written so a reader never sees half a file.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * The fixture models folder holding `marker`: `override` (an environment variable's value) when set, else one
 * level up from source (tsx), three from the carried build (.gpu-carry/build/bench), or wherever the command runs
 * (scripts/gpu.sh runs from the repository root). Undefined where none holds it; `candidates` are those tried.
 */
export function fixtureModels(
  override: string | undefined,
  marker: string,
): { found: string | undefined; candidates: string[] } {
  const candidates = [
    override,
    resolve(HERE, "..", "fixtures", "models"),
    resolve(HERE, "..", "..", "..", "fixtures", "models"),
    resolve("fixtures", "models"),
  ].filter((c): c is string => c !== undefined);
  return { found: candidates.find((c) => existsSync(join(c, marker))), candidates };
}

/** .gpu-carry/MANIFEST.txt (beside build/) on one line, when the harness runs from the carried build. */
export function carried(): string | undefined {
  const f = resolve(HERE, "..", "..", "MANIFEST.txt");
  return existsSync(f) ? readFileSync(f, "utf8").trim().replace(/\n+/g, "; ") : undefined;
}

/** `value` as JSON (one-space indent) in `file`, through a temporary file renamed over it. */
export function writeAtomic(file: string, value: unknown): void {
  writeFileSync(`${file}.tmp`, JSON.stringify(value, null, 1));
  renameSync(`${file}.tmp`, file);
}

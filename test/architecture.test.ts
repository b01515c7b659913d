import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative, sep } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./helpers.js";

/** The layer of each folder of src/, as ARCHITECTURE.md states it. */
const LAYER: Readonly<Record<string, number>> = {
  ".": 0,
  ffi: 1,
  ir: 1,
  ops: 2,
  network: 2,
  core: 3,
  frontends: 4,
  passes: 4,
  converters: 4,
  partition: 5,
  util: 5,
  verify: 6,
  runtime: 7,
  "backends/cuda": 8,
  "backends/reference": 8,
  "backends/torch": 9,
  backends: 9,
  serve: 10,
  cli: 11,
};

/** Type-only imports that still point up, each with why it is not yet moved (none now; the list only shrinks). */
const KNOWN_UPWARD_TYPES: readonly string[] = [];

const SRC = join(ROOT, "src");

function folderOf(file: string): string {
  const parts = relative(SRC, file).split(sep);
  if (parts.length === 1) return ".";
  if (parts[0] === "backends" && parts.length > 2) return `backends/${parts[1]}`;
  return parts[0];
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith(".ts") ? [p] : [];
  });
}

interface CrossImport {
  readonly from: string;
  readonly to: string;
  readonly where: string;
  /** `import type` / `export type … from`: erased from the JavaScript, but still a dependency of the design. */
  readonly typeOnly: boolean;
}

/** Imports and re-exports between folders, value and type-only. */
function crossFolderImports(): CrossImport[] {
  const out: CrossImport[] = [];
  for (const file of sources(SRC)) {
    if (file === join(SRC, "index.ts")) continue;
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/^(?:import|export) (type )?[^;]*?from "(\.[^"]+)"/gms)) {
      const target = normalize(join(dirname(file), m[2]));
      const from = folderOf(file);
      const to = folderOf(target);
      const where = `${relative(SRC, file)} -> ${relative(SRC, target)}`;
      if (from !== to) out.push({ from, to, where, typeOnly: m[1] !== undefined });
    }
  }
  return out;
}

describe("architecture (ARCHITECTURE.md)", () => {
  const imports = crossFolderImports();

  it("every folder of src/ has a layer", () => {
    const folders = new Set(sources(SRC).map(folderOf));
    expect([...folders].filter((f) => LAYER[f] === undefined)).toEqual([]);
  });

  it("finds the imports it checks (the parser is not blind)", () => {
    expect(imports.length).toBeGreaterThan(100);
    expect(imports.some((i) => i.from === "cli" && i.to === "runtime" && !i.typeOnly)).toBe(true);
    expect(imports.some((i) => i.from === "converters" && i.to === "core" && i.typeOnly)).toBe(true);
    expect(imports.some((i) => i.where === "runtime/execution.ts -> core/execution.js")).toBe(true);
  });

  it("no value import goes up or sideways between folders", () => {
    const wrong = imports
      .filter((i) => !i.typeOnly && LAYER[i.to] >= LAYER[i.from])
      .map((i) => `${i.from} → ${i.to}: ${i.where}`);
    expect(wrong).toEqual([]);
  });

  it("no type-only import goes up or sideways either, but the listed known one", () => {
    const wrong = imports
      .filter((i) => i.typeOnly && LAYER[i.to] >= LAYER[i.from])
      .map((i) => i.where)
      .filter((where) => !KNOWN_UPWARD_TYPES.includes(where));
    expect(wrong).toEqual([]);
    // the exception list shrinks as contracts move: an entry that no longer occurs must go
    for (const known of KNOWN_UPWARD_TYPES) expect(imports.some((i) => i.where === known)).toBe(true);
  });

  it("src/core holds contracts only: it imports types, and nothing above the network layer", () => {
    const fromCore = imports.filter((i) => i.from === "core");
    expect(fromCore.filter((i) => !i.typeOnly).map((i) => i.where)).toEqual([]);
    expect(fromCore.every((i) => LAYER[i.to] <= LAYER.network)).toBe(true);
  });
});

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
  frontends: 3,
  passes: 3,
  converters: 3,
  partition: 4,
  util: 4,
  verify: 5,
  runtime: 6,
  "backends/cuda": 7,
  "backends/reference": 7,
  "backends/torch": 8,
  backends: 8,
  serve: 9,
  cli: 10,
};

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

/** Value imports (not `import type`) between folders: [from, to, "file -> target"]. */
function crossFolderImports(): [string, string, string][] {
  const out: [string, string, string][] = [];
  for (const file of sources(SRC)) {
    if (file === join(SRC, "index.ts")) continue;
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/^import (type )?[^;]*?from "(\.[^"]+)"/gms)) {
      if (m[1]) continue;
      const target = normalize(join(dirname(file), m[2]));
      const a = folderOf(file);
      const b = folderOf(target);
      if (a !== b) out.push([a, b, `${relative(SRC, file)} -> ${relative(SRC, target)}`]);
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
    expect(imports.some(([a, b]) => a === "cli" && b === "runtime")).toBe(true);
  });

  it("no value import goes up or sideways between folders", () => {
    const wrong = imports
      .filter(([a, b]) => LAYER[b] >= LAYER[a])
      .map(([a, b, where]) => `${a} → ${b}: ${where}`);
    expect(wrong).toEqual([]);
  });
});

import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { unzipSync, zipSync } from "fflate";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const MODELS = join(ROOT, "fixtures", "models");

/** Runs the built CLI (bin/torchc.js) to the end: its exit status, stdout and stderr. */
export function torchc(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(ROOT, "bin", "torchc.js"), ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

export interface FixtureModel {
  name: string;
  input?: string;
  output?: string;
  archives: Record<string, string>;
  cases?: { input: string; output: string; branch: string }[];
}

export function manifest(): { torch: string; models: FixtureModel[] } {
  return JSON.parse(readFileSync(join(MODELS, "manifest.json"), "utf8"));
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "torchc-test-"));
}

/** Copies a fixture archive with some entries changed (`undefined` removes one), for error tests. */
export function editArchive(src: string, edit: (entries: Record<string, Uint8Array>) => void): string {
  const entries = unzipSync(readFileSync(src));
  edit(entries);
  const out = join(tempDir(), "edited.pt2");
  writeFileSync(out, zipSync(entries, { level: 0 }));
  return out;
}

export function entryName(entries: Record<string, Uint8Array>, suffix: string): string {
  const name = Object.keys(entries).find((k) => k.endsWith(suffix));
  if (!name) throw new Error(`no entry ending in ${suffix}`);
  return name;
}

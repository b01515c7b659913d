import { readFileSync, writeFileSync } from "node:fs";
import { strFromU8, strToU8, unzipSync, zipSync } from "fflate";
import { ArchiveError } from "../errors.js";
import type { Graph, Weight } from "../ir/graph.js";
import { tensorBytes, tensorFromBytes } from "../ir/tensor.js";
import { verifyGraph } from "../ir/verify.js";
import type { CompileOptions } from "./options.js";

/**
 * The saved form of a compiled model (`torchc compile -o model.torchc`): the lowered graph as JSON, its weights
 * as raw little-endian files, and the options it was compiled with. Loading skips the frontend and lowering;
 * engines are rebuilt for the GPU at hand (they are tied to the card and library versions).
 */
export interface SavedPackage {
  readonly graph: Graph;
  readonly options: CompileOptions;
  readonly source: string;
}

const FORMAT = "torchc-package";
const VERSION = 1;

export function savePackage(path: string, pkg: SavedPackage): void {
  const weights: Record<
    string,
    Omit<Weight, "tensor"> & { dtype: string; shape: readonly number[]; file: string }
  > = {};
  const files: Record<string, Uint8Array> = {};
  Object.entries(pkg.graph.weights).forEach(([name, w], i) => {
    const file = `weights/${i}`;
    weights[name] = { kind: w.kind, target: w.target, dtype: w.tensor.dtype, shape: w.tensor.shape, file };
    files[file] = tensorBytes(w.tensor);
  });
  const { passes: _passes, ...options } = pkg.options;
  const manifest = {
    format: FORMAT,
    version: VERSION,
    source: pkg.source,
    options,
    graph: {
      inputs: pkg.graph.inputs,
      outputs: pkg.graph.outputs,
      nodes: pkg.graph.nodes,
      values: pkg.graph.values,
    },
    weights,
  };
  files["manifest.json"] = strToU8(JSON.stringify(manifest));
  writeFileSync(path, zipSync(files, { level: 0 }));
}

export function isPackage(entries: ReadonlyMap<string, Uint8Array>): boolean {
  return entries.has("manifest.json") && strFromU8(entries.get("manifest.json")!).includes(`"${FORMAT}"`);
}

export function loadPackage(path: string): SavedPackage {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(readFileSync(path));
  } catch (e) {
    throw new ArchiveError(path, `is not a torchc package (${(e as Error).message})`, "package.invalid");
  }
  const raw = entries["manifest.json"];
  if (!raw) throw new ArchiveError(path, "is not a torchc package (no manifest.json)", "package.invalid");
  const m = JSON.parse(strFromU8(raw));
  if (m.format !== FORMAT) throw new ArchiveError(path, "is not a torchc package", "package.invalid");
  if (m.version !== VERSION)
    throw new ArchiveError(
      path,
      `is a version ${m.version} package; this torchc reads version ${VERSION}`,
      "package.version",
    );
  const weights: Record<string, Weight> = {};
  for (const [name, w] of Object.entries(
    m.weights as Record<
      string,
      { kind: Weight["kind"]; target: string; dtype: never; shape: number[]; file: string }
    >,
  )) {
    const bytes = entries[w.file];
    if (!bytes) throw new ArchiveError(path, `weight file ${w.file} is missing`, "package.invalid");
    weights[name] = { kind: w.kind, target: w.target, tensor: tensorFromBytes(w.dtype, w.shape, bytes) };
  }
  const graph = verifyGraph(Object.freeze({ ...m.graph, weights }) as Graph);
  return { graph, options: m.options, source: m.source };
}

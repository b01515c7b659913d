import { writeFileSync } from "node:fs";
import { strFromU8, strToU8, zipSync } from "fflate";
import { ArchiveError } from "../errors.js";
import {
  array,
  bool,
  DecodeFailure,
  type Decoder,
  decodeEntry,
  float,
  int,
  nullable,
  object,
  oneOf,
  optional,
  parseJson,
  size,
  str,
  struct,
  table,
} from "../frontends/decode.js";
import { checkFileName } from "../frontends/names.js";
import { verifyLoadedGraph } from "../frontends/verify-loaded.js";
import { readZip, type ZipArchive } from "../frontends/zip.js";
import { DTYPE_BYTES, DTYPES, type DType } from "../ir/dtype.js";
import type { Arg, Graph, Node, TensorType, Weight } from "../ir/graph.js";
import { tensorBytes, tensorFromBytes } from "../ir/tensor.js";
import { writeFailure } from "../util/npy.js";
import type { CompileOptions } from "./options.js";
import type { BuildTarget, SavedArtifacts } from "./package-artifacts.js";
import { checkEntries, type EntryRecord, entryTable } from "./package-entries.js";

/**
 * The saved form of a compiled model (`torchc compile -o model.torchc`), a zip of:
 * - `manifest.json`: format and version, the options it was compiled with, the lowered graph, the weight table,
 *   what the engines were built for (GPU architecture, driver, CUDA, cuDNN, cuBLASLt), the backend's per-engine
 *   records, and the size and SHA-256 of every other entry;
 * - `weights/<i>`: raw little-endian tensors;
 * - `engines/<name>`: the backend's binary artifacts (compiled kernels).
 * Loading skips the frontend and lowering; with saved engines it also skips heuristics, timing and NVRTC
 * (docs: runtime/package-artifacts.ts). Version 1 packages (no engines, no hashes) still load.
 */
export interface SavedPackage {
  readonly graph: Graph;
  readonly options: CompileOptions;
  readonly source: string;
  /** The built engines, when the backend could save them. */
  readonly artifacts?: SavedArtifacts;
}

const FORMAT = "torchc-package";
const VERSION = 2;
/** The versions this torchc reads. */
const READS = [1, 2];

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
  for (const [name, bytes] of Object.entries(pkg.artifacts?.blobs ?? {})) files[`engines/${name}`] = bytes;
  const { passes: _passes, artifacts: _artifacts, ...options } = pkg.options;
  const manifest = {
    format: FORMAT,
    version: VERSION,
    source: pkg.source,
    builtFor: pkg.artifacts?.builtFor ?? null,
    engines: pkg.artifacts?.engines ?? null,
    entries: entryTable(files),
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
  const bytes = zipSync(files, { level: 0 });
  try {
    writeFileSync(path, bytes);
  } catch (e) {
    throw new ArchiveError(path, `cannot write the package (${writeFailure(e, path)})`, "package.write");
  }
}

/** Whether the file at `path` is a .torchc package (a zip whose manifest names the format). */
export function isPackageFile(path: string): boolean {
  try {
    const m = readZip(path).read("manifest.json");
    return m !== undefined && strFromU8(m.subarray(0, 200)).includes(`"${FORMAT}"`);
  } catch {
    return false;
  }
}

export function isPackage(entries: ReadonlyMap<string, Uint8Array>): boolean {
  return entries.has("manifest.json") && strFromU8(entries.get("manifest.json")!).includes(`"${FORMAT}"`);
}

/** The manifest's shape: every field checked before use; tables come out as `Map`s. */
const dtype = oneOf(DTYPES);
const shape = array(size);
const argDecoder: Decoder<Arg> = (v, p) => {
  const kind = struct({ kind: str })(v, p).kind;
  const o = v as Record<string, unknown>;
  const at = `${p}.value`;
  switch (kind) {
    case "tensor":
      return { kind, name: str(o.name, `${p}.name`) };
    case "tensors":
      return { kind, names: array(nullable(str))(o.names, `${p}.names`) };
    case "none":
      return { kind };
    case "int":
      return { kind, value: int(o.value, at) };
    case "float":
      return { kind, value: float(o.value, at) };
    case "bool":
      return { kind, value: bool(o.value, at) };
    case "ints":
      return { kind, value: array(int)(o.value, at) };
    case "floats":
      return { kind, value: array(float)(o.value, at) };
    case "bools":
      return { kind, value: array(bool)(o.value, at) };
    case "dtype":
      return { kind, value: dtype(o.value, at) };
    case "string":
    case "device":
    case "layout":
    case "memoryFormat":
      return { kind, value: str(o.value, at) };
    default:
      throw new DecodeFailure(`${p}.kind`, "an argument kind", kind);
  }
};
const meta = struct({
  stackTrace: optional(str),
  sourceLocation: optional(str),
  modulePath: optional(str),
});
type GraphJson = {
  inputs: string[];
  outputs: string[];
  nodes: {
    name: string;
    op: string;
    args: Map<string, Arg>;
    outputs: string[];
    meta: ReturnType<typeof meta>;
    subgraphs?: GraphJson[];
  }[];
  values: Map<string, { dtype: DType; shape: number[] }>;
};
const graphJson: Decoder<GraphJson> = (v, p) =>
  struct({
    inputs: array(str),
    outputs: array(str),
    nodes: array(
      struct({
        name: str,
        op: str,
        args: table(argDecoder),
        outputs: array(str),
        meta: (m: unknown, q: string) => meta(m === undefined ? {} : m, q),
        subgraphs: optional(array(graphJson)),
      }),
    ),
    values: table(struct({ dtype, shape })),
  })(v, p);
const manifestJson = struct({
  source: str,
  options: (v, p) => struct({})(v, p) && (v as CompileOptions),
  graph: graphJson,
  weights: table(
    struct({
      kind: oneOf(["parameter", "buffer", "constant"] as const),
      target: str,
      dtype,
      shape,
      file: str,
    }),
  ),
  builtFor: optional(
    nullable(
      struct({
        backend: str,
        arch: str,
        device: str,
        driver: int,
        cuda: str,
        cudnn: int,
        cublasLt: int,
      }) as Decoder<BuildTarget>,
    ),
  ),
  engines: optional(nullable((v, p) => object(v, p) as Record<string, unknown>)),
  entries: optional(table(struct({ bytes: size, sha256: str }) as Decoder<EntryRecord>)),
});

export function loadPackage(path: string): SavedPackage {
  const zip = readPackageZip(path);
  const raw = zip.read("manifest.json");
  if (!raw) throw new ArchiveError(path, "is not a torchc package (no manifest.json)", "package.invalid");
  const m = parseJson(raw, path, "manifest.json", "package.invalid", { checkDepth: true });
  const head = m as { format?: unknown; version?: unknown } | null;
  if (typeof head !== "object" || head?.format !== FORMAT)
    throw new ArchiveError(path, "is not a torchc package", "package.invalid");
  if (!READS.includes(head.version as number))
    throw new ArchiveError(
      path,
      `is a version ${String(head.version).slice(0, 20)} package; this torchc reads versions ${READS.join(" and ")}`,
      "package.version",
    );
  const manifest = decodeEntry(manifestJson, m, path, "manifest.json", "package.invalid");
  const fail = (detail: string): never => {
    throw new ArchiveError(path, `manifest.json: ${detail}`, "package.invalid");
  };
  if (head.version !== 1 && !manifest.entries) fail("entries: expected the table of entries, got nothing");
  const entry = manifest.entries ? checkEntries(zip, manifest.entries, path) : undefined;
  const weights: Record<string, Weight> = Object.create(null);
  for (const [name, w] of manifest.weights) {
    checkFileName(name, path, "manifest.json weights");
    const size = zip.size(w.file);
    if (size === undefined)
      throw new ArchiveError(path, `weight file ${w.file} is missing`, "package.invalid");
    const need = w.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[w.dtype];
    if (size !== need)
      fail(
        `weight '${name}' is ${w.dtype}[${w.shape.join(", ")}] (${need} bytes) but ${w.file} has ${size} bytes`,
      );
    let bytes: Uint8Array;
    if (entry) bytes = entry(w.file);
    else {
      zip.budget.charge(need, `weight '${name}'`);
      bytes = zip.read(w.file) ?? new Uint8Array();
    }
    weights[name] = { kind: w.kind, target: w.target, tensor: tensorFromBytes(w.dtype, w.shape, bytes) };
  }
  const graph = verifyLoadedGraph(
    Object.freeze({ ...toGraph(manifest.graph, path), weights: Object.freeze(weights) }),
    path,
    "package.invalid",
  );
  const artifacts = savedArtifacts(manifest, entry);
  return { graph, options: manifest.options, source: manifest.source, ...(artifacts ? { artifacts } : {}) };
}

/** The engines' records and blobs, when the package has them (every blob already checked against its hash). */
function savedArtifacts(
  m: ReturnType<typeof manifestJson>,
  entry: ((name: string) => Uint8Array) | undefined,
): SavedArtifacts | undefined {
  if (!m.builtFor || !m.engines || !entry || !m.entries) return undefined;
  const blobs: Record<string, Uint8Array> = Object.create(null);
  for (const name of m.entries.keys())
    if (name.startsWith("engines/")) blobs[name.slice("engines/".length)] = entry(name);
  return { builtFor: m.builtFor, engines: m.engines, blobs };
}

function readPackageZip(path: string): ZipArchive {
  try {
    return readZip(path);
  } catch (e) {
    if (e instanceof ArchiveError && e.code === "archive.not-zip")
      throw new ArchiveError(path, "is not a torchc package (not a zip archive)", "package.invalid");
    throw e;
  }
}

/** Graph tables from the manifest's Maps, as null-prototype objects, names checked. */
function toGraph(g: GraphJson, file: string): Omit<Graph, "weights"> {
  const values: Record<string, TensorType> = Object.create(null);
  for (const [name, t] of g.values) {
    checkFileName(name, file, "manifest.json graph values");
    values[name] = t;
  }
  const nodes: Node[] = g.nodes.map((n) => {
    const args: Record<string, Arg> = Object.create(null);
    for (const [k, a] of n.args) {
      checkFileName(k, file, `manifest.json node '${n.name}'`);
      args[k] = a;
    }
    return {
      name: n.name,
      op: n.op,
      args,
      outputs: n.outputs,
      meta: n.meta,
      ...(n.subgraphs
        ? { subgraphs: n.subgraphs.map((sg) => Object.freeze({ ...toGraph(sg, file), weights: {} })) }
        : {}),
    };
  });
  return { inputs: g.inputs, outputs: g.outputs, nodes, values };
}

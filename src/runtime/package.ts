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
 *
 * Control-flow nodes (`prim.If`, `prim.Loop`) keep their blocks in the graph's node records (`subgraphs`), each
 * block as it was compiled (lowered, precisions assigned: runtime/control-compile.ts's savedControlGraph) with a
 * weight table of its own (its constants, stored as `weights/<i>` like the model's). That is version 3; a
 * package without blocks is still written as version 2, so an older torchc reads it. A version 1 or 2 package
 * with blocks was written before blocks had weights and lowering of their own (it would load blocks without
 * their constants, unlowered), so it is refused as `package.version`, like a version this torchc does not read.
 */
export interface SavedPackage {
  readonly graph: Graph;
  readonly options: CompileOptions;
  readonly source: string;
  /** The built engines, when the backend could save them. */
  readonly artifacts?: SavedArtifacts;
}

const FORMAT = "torchc-package";
/** The version written for a graph without control-flow blocks, and the one for a graph with them. */
const VERSION = 2;
const VERSION_BLOCKS = 3;
/** The versions this torchc reads. */
const READS = [1, 2, 3];

type WeightRecord = Omit<Weight, "tensor"> & { dtype: string; shape: readonly number[]; file: string };

const hasBlocks = (g: Graph): boolean => g.nodes.some((n) => (n.subgraphs?.length ?? 0) > 0);

export function savePackage(path: string, pkg: SavedPackage): void {
  const files: Record<string, Uint8Array> = {};
  let next = 0;
  const weightTable = (ws: Readonly<Record<string, Weight>>): Record<string, WeightRecord> => {
    const out: Record<string, WeightRecord> = {};
    for (const [name, w] of Object.entries(ws)) {
      const file = `weights/${next++}`;
      out[name] = { kind: w.kind, target: w.target, dtype: w.tensor.dtype, shape: w.tensor.shape, file };
      files[file] = tensorBytes(w.tensor);
    }
    return out;
  };
  // The model's weights first (weights/0 …), then each block's own, depth first.
  const weights = weightTable(pkg.graph.weights);
  const graphRecord = (g: Graph): object => ({
    inputs: g.inputs,
    outputs: g.outputs,
    nodes: g.nodes.map(({ subgraphs, ...n }) =>
      subgraphs
        ? { ...n, subgraphs: subgraphs.map((b) => ({ ...graphRecord(b), weights: weightTable(b.weights) })) }
        : n,
    ),
    values: g.values,
  });
  const graph = graphRecord(pkg.graph);
  for (const [name, bytes] of Object.entries(pkg.artifacts?.blobs ?? {})) files[`engines/${name}`] = bytes;
  const { passes: _passes, artifacts: _artifacts, ...options } = pkg.options;
  const manifest = {
    format: FORMAT,
    version: hasBlocks(pkg.graph) ? VERSION_BLOCKS : VERSION,
    source: pkg.source,
    builtFor: pkg.artifacts?.builtFor ?? null,
    engines: pkg.artifacts?.engines ?? null,
    entries: entryTable(files),
    options,
    graph,
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
const weightJson = struct({
  kind: oneOf(["parameter", "buffer", "constant"] as const),
  target: str,
  dtype,
  shape,
  file: str,
});
type WeightJson = ReturnType<typeof weightJson>;
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
  /** A block's own weights (version 3); the model's are the manifest's `weights`. */
  weights?: Map<string, WeightJson>;
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
    weights: optional(table(weightJson)),
  })(v, p);
const manifestJson = struct({
  source: str,
  options: (v, p) => struct({})(v, p) && (v as CompileOptions),
  graph: graphJson,
  weights: table(weightJson),
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
      `is a version ${String(head.version).slice(0, 20)} package; this torchc reads versions ${READS.slice(0, -1).join(", ")} and ${READS.at(-1)}`,
      "package.version",
    );
  const manifest = decodeEntry(manifestJson, m, path, "manifest.json", "package.invalid");
  const fail = (detail: string): never => {
    throw new ArchiveError(path, `manifest.json: ${detail}`, "package.invalid");
  };
  if (head.version !== 1 && !manifest.entries) fail("entries: expected the table of entries, got nothing");
  const entry = manifest.entries ? checkEntries(zip, manifest.entries, path) : undefined;
  const readWeights = (table: ReadonlyMap<string, WeightJson>, where: string): Record<string, Weight> => {
    const weights: Record<string, Weight> = Object.create(null);
    for (const [name, w] of table) {
      checkFileName(name, path, `manifest.json ${where}`);
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
    return Object.freeze(weights);
  };
  const blockWeights = (block: GraphJson, where: string): Record<string, Weight> => {
    if (head.version === 1 || head.version === 2)
      throw new ArchiveError(
        path,
        `is a version ${head.version} package with control-flow blocks (${where}), written before blocks were saved with their own weights and lowering; compile the model again`,
        "package.version",
      );
    if (!block.weights) return fail(`graph: ${where} has no weights table`);
    return readWeights(block.weights, `${where} weights`);
  };
  const graph = verifyLoadedGraph(
    Object.freeze({
      ...toGraph(manifest.graph, path, blockWeights),
      weights: readWeights(manifest.weights, "weights"),
    }),
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

/** Graph tables from the manifest's Maps, as null-prototype objects, names checked; blocks with their weights. */
function toGraph(
  g: GraphJson,
  file: string,
  blockWeights: (block: GraphJson, where: string) => Record<string, Weight>,
): Omit<Graph, "weights"> {
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
        ? {
            subgraphs: n.subgraphs.map((sg, i) => {
              const where = `block ${i} of node '${n.name}'`;
              return Object.freeze({ ...toGraph(sg, file, blockWeights), weights: blockWeights(sg, where) });
            }),
          }
        : {}),
    };
  });
  return { inputs: g.inputs, outputs: g.outputs, nodes, values };
}

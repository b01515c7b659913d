import { ArchiveError } from "../../errors.js";
import { GraphBuilder } from "../../ir/builder.js";
import type { DType } from "../../ir/dtype.js";
import type { Arg, Graph, NodeMeta, TensorType, WeightKind } from "../../ir/graph.js";
import { verifyLoadedGraph } from "../../ir/verify-loaded.js";
import {
  array,
  bool,
  DecodeFailure,
  decodeEntry,
  fastDecode,
  field,
  float,
  index,
  int,
  key,
  nullable,
  optional,
  parseJson,
  requirePath,
  str,
  struct,
  tagged,
} from "../decode.js";
import { escapeControl, hasControl } from "../escape.js";
import { checkFileName, isSafeName } from "../names.js";
import { modulePathFromStack, userSourceLocation } from "../stack-trace.js";
import { viewTensor } from "../strided.js";
import { archiveRoot, readZip, type ZipArchive } from "../zip.js";
import {
  exportedProgram,
  LAYOUTS,
  MEMORY_FORMATS,
  SCALAR_TYPES,
  type SerializedExportedProgram,
  type SerializedNode,
  type SerializedTensorMeta,
  SUPPORTED_SCHEMA_MAJORS,
  symInt,
  tensorMeta,
  tensorName,
  type WeightEntry,
  weightConfig,
} from "./schema.js";

export interface Pt2Model {
  readonly path: string;
  readonly format: "pt2";
  readonly graph: Graph;
  /** PyTorch version that wrote the archive. */
  readonly torchVersion?: string;
}

/** Reads an archive written by `torch.export.save` (PyTorch 2.11, schema 8.x) into a torchc graph. */
export function loadPt2(path: string, modelName?: string): Pt2Model {
  return loadPt2FromZip(readZip(path), modelName);
}

export function loadPt2FromZip(zip: ZipArchive, modelName?: string): Pt2Model {
  const file = zip.file;
  const root = archiveRoot(zip, ["archive_format", "models/"]);
  if (root === undefined) {
    throw new ArchiveError(
      file,
      "is a zip archive but not a torch.export archive (no archive_format or models/ inside)",
      "archive.not-pt2",
    );
  }
  const format = zip.text(`${root}archive_format`)?.trim();
  if (format !== undefined && format !== "pt2") {
    throw new ArchiveError(
      file,
      `has archive_format '${format.slice(0, 40)}'; torchc reads 'pt2' archives`,
      "archive.version",
    );
  }
  const models = zip.names.filter((p) => p.startsWith(`${root}models/`) && p.endsWith(".json"));
  const wanted =
    modelName ?? (models.length !== 1 || models[0] === `${root}models/model.json` ? "model" : undefined);
  const modelPath = wanted ? `${root}models/${wanted}.json` : models[0];
  const json = modelPath ? zip.read(modelPath) : undefined;
  if (!json?.length)
    throw new ArchiveError(
      file,
      `has no ${wanted ? `models/${wanted}.json` : "models/*.json"} (the serialized program)`,
      "archive.no-model",
    );
  const entry = modelPath.slice(root.length);
  const raw = parseJson(json, file, entry);
  const rawObject = raw as {
    schema_version?: { major?: unknown; minor?: unknown };
    graph_module?: unknown;
    torch_version?: unknown;
  } | null;
  const major = typeof rawObject === "object" ? rawObject?.schema_version?.major : undefined;
  if (
    typeof major !== "number" ||
    typeof rawObject?.graph_module !== "object" ||
    rawObject.graph_module === null
  ) {
    throw new ArchiveError(
      file,
      `${entry} is not a serialized ExportedProgram (graph_module or schema_version missing)`,
      "archive.bad-model",
    );
  }
  if (!SUPPORTED_SCHEMA_MAJORS.includes(major)) {
    throw new ArchiveError(
      file,
      `uses export schema ${major}.${String(rawObject.schema_version?.minor).slice(0, 20)} (torch ${String(rawObject.torch_version ?? "?").slice(0, 40)}); torchc reads schema ${SUPPORTED_SCHEMA_MAJORS.join(", ")}.x (PyTorch 2.11)`,
      "archive.version",
    );
  }
  // Decoded without JSON paths first (fast); a failure repeats the work with paths to name the place.
  const used = zip.budget.bytesUsed;
  return fastDecode(() => {
    zip.budget.resetTo(used);
    const program = decodeEntry(exportedProgram, raw, file, entry);
    const weights = readWeightConfig(zip, root, "data/weights/model_weights_config.json");
    const constants = readWeightConfig(zip, root, "data/constants/model_constants_config.json");
    const graph = new ProgramReader(zip, root, entry, program, weights, constants).read();
    return { path: file, format: "pt2" as const, graph, torchVersion: program.torch_version };
  });
}

function readWeightConfig(zip: ZipArchive, root: string, name: string): ReadonlyMap<string, WeightEntry> {
  const text = zip.read(root + name);
  if (text === undefined) return new Map();
  return decodeEntry(weightConfig, parseJson(text, zip.file, name), zip.file, name).config;
}

const optionalTensor = (v: unknown, p: string): string | null => {
  const t = tagged(v, p);
  if (t.tag === "as_tensor") return tensorName(t.value, t.path).name;
  if (t.tag === "as_none") return null;
  throw new DecodeFailure(p, "as_tensor or as_none", v);
};

const device = struct({ type: str, index: optional(nullable(int)) });
const withArg = struct({ arg: tagged });
const parameterSpec = struct({ arg: tensorName, parameter_name: str });
const bufferSpec = struct({ arg: tensorName, buffer_name: str });
const constantSpec = struct({ arg: tensorName, tensor_constant_name: str });
const tensorNames = array(tensorName);
const optionalTensors = array(optionalTensor);
const ints = array(int);
const symInts = array(symInt);
const floats = array(float);
const bools = array(bool);

class ProgramReader {
  private readonly b = new GraphBuilder();
  private readonly graph;
  /** Values defined so far (inputs, weights, node outputs), to report misuse before the builder sees it. */
  private readonly defined = new Set<string>();

  constructor(
    private readonly zip: ZipArchive,
    private readonly root: string,
    private readonly entry: string,
    private readonly program: SerializedExportedProgram,
    private readonly weights: ReadonlyMap<string, WeightEntry>,
    private readonly constants: ReadonlyMap<string, WeightEntry>,
  ) {
    this.graph = program.graph_module.graph;
  }

  read(): Graph {
    const sig = this.program.graph_module.signature;
    for (const spec of sig.input_specs) this.readInput(spec);
    const nodes = this.graph.nodes;
    for (let i = 0; i < nodes.length; i++) this.readNode(nodes[i], index("$.graph_module.graph.nodes", i));
    const outputs: string[] = [];
    for (const spec of sig.output_specs) {
      if (spec.kind !== "user_output") continue; // buffer mutations and the like do not exist in inference graphs
      const arg = this.decode(withArg, spec.body, spec.path).arg;
      if (arg.tag !== "as_tensor")
        this.fail(`a user output is ${arg.tag}; torchc compiles tensor outputs only`, "archive.unsupported");
      const name = this.decode(tensorName, arg.value, arg.path).name;
      if (!this.defined.has(name)) this.fail(`graph output '${this.name(name, arg.path)}' is never defined`);
      outputs.push(name);
    }
    this.b.setOutputs(outputs);
    // order, duplicates, self-reads and unknown values were checked above, as each node was read
    return verifyLoadedGraph(this.b.build(), this.zip.file, "archive.bad-graph", { checkStructure: false });
  }

  private fail(detail: string, code = "archive.bad-model"): never {
    throw new ArchiveError(this.zip.file, detail, code);
  }

  /** Runs a decoder at a JSON path of model.json, turning a mismatch into a one-line ArchiveError. */
  private decode<T>(d: (v: unknown, p: string) => T, v: unknown, path: string): T {
    try {
      return d(v, path);
    } catch (e) {
      if (e instanceof DecodeFailure) {
        requirePath();
        this.fail(`${this.entry}: ${e.message}`);
      }
      throw e;
    }
  }

  /** A value name from the file, checked so that it cannot collide with an object's built-in properties. */
  private name(name: string, path: string): string {
    if (isSafeName(name)) return name;
    requirePath();
    checkFileName(name, this.zip.file, `${this.entry} at ${path}`);
    return name;
  }

  private define(name: string, where: string): void {
    if (this.defined.has(name)) this.fail(`${where} defines value '${name}', which is already defined`);
    this.defined.add(name);
  }

  private readInput(spec: { kind: string; body: Record<string, unknown>; path: string }): void {
    const { kind, body, path } = spec;
    switch (kind) {
      case "user_input": {
        const arg = this.decode(withArg, body, path).arg;
        if (arg.tag !== "as_tensor")
          this.fail(`a user input is ${arg.tag}; torchc compiles tensor inputs only`, "archive.unsupported");
        const name = this.name(this.decode(tensorName, arg.value, arg.path).name, arg.path);
        this.define(name, "user input");
        this.b.addInput(name, this.typeOf(name));
        return;
      }
      case "parameter":
      case "buffer": {
        const s =
          kind === "parameter" ? this.decode(parameterSpec, body, path) : this.decode(bufferSpec, body, path);
        const target = "parameter_name" in s ? s.parameter_name : s.buffer_name;
        const name = this.name(s.arg.name, field(path, "arg"));
        // A non-persistent buffer is not in the state dict: torch.export.save stores it among the constants.
        const inWeights = this.weights.get(target);
        const entry = inWeights ?? (kind === "buffer" ? this.constants.get(target) : undefined);
        this.addWeight(
          name,
          target,
          kind,
          entry,
          inWeights ? "data/weights/" : "data/constants/",
          kind === "buffer" ? "data/weights/ or data/constants/" : "data/weights/",
        );
        return;
      }
      case "tensor_constant": {
        const s = this.decode(constantSpec, body, path);
        const name = this.name(s.arg.name, field(path, "arg"));
        const target = s.tensor_constant_name;
        this.addWeight(
          name,
          target,
          "constant",
          this.constants.get(target),
          "data/constants/",
          "data/constants/",
        );
        return;
      }
      default:
        this.fail(`input kind '${kind.slice(0, 40)}' is not supported by torchc yet`, "archive.unsupported");
    }
  }

  private addWeight(
    name: string,
    target: string,
    kind: WeightKind,
    entry: WeightEntry | undefined,
    folder: string,
    searched: string,
  ): void {
    if (hasControl(target))
      this.fail(
        `${kind} '${escapeControl(target.slice(0, 80))}' has control characters in its name`,
        "archive.bad-name",
      );
    if (!entry)
      this.fail(`${kind} '${target}' is listed in the signature but missing from ${searched}*_config.json`);
    if (entry.use_pickle)
      this.fail(
        `${kind} '${target}' is stored pickled; torchc reads raw weight files only`,
        "archive.unsupported",
      );
    this.define(name, `${kind} '${target}'`);
    const path = `${this.root}${folder}${entry.path_name}`;
    const size = this.zip.size(path);
    if (size === undefined)
      this.fail(
        `weight file ${folder}${entry.path_name} for ${kind} '${target}' is missing`,
        "archive.truncated",
      );
    const tensor = viewTensor(
      {
        file: `${folder}${entry.path_name}`,
        what: `'${target}'`,
        dtype: this.dtype(entry.tensor_meta.dtype, target),
        sizes: this.sizes(entry.tensor_meta.sizes, target),
        strides: this.sizes(entry.tensor_meta.strides, target),
        offset: this.sizes([entry.tensor_meta.storage_offset], target)[0],
        storageBytes: size,
        read: (prefix) => this.zip.read(path, prefix) ?? new Uint8Array(),
        budget: this.zip.budget,
      },
      (detail, code) => this.fail(detail, code),
    );
    this.b.addWeight(name, { kind, target, tensor });
  }

  private typeOf(name: string): TensorType {
    const values = this.graph.tensor_values;
    if (!Object.hasOwn(values, name)) this.fail(`value '${name}' has no entry in tensor_values`);
    const meta: SerializedTensorMeta = this.decode(
      tensorMeta,
      values[name],
      key("$.graph_module.graph.tensor_values", name),
    );
    return { dtype: this.dtype(meta.dtype, name), shape: this.sizes(meta.sizes, name) };
  }

  private dtype(code: number, what: string): DType {
    const d = SCALAR_TYPES.get(code);
    if (!d)
      this.fail(`'${what}' has dtype code ${code}, which torchc does not support`, "archive.unsupported");
    return d;
  }

  /** Static, non-negative sizes (symbolic ones are refused: torchc compiles static shapes). */
  private sizes(s: readonly (number | undefined)[], what: string): number[] {
    return s.map((d) => {
      if (d === undefined)
        this.fail(
          `'${what}' has a symbolic size; torchc compiles static shapes (export without dynamic_shapes)`,
          "archive.dynamic-shape",
        );
      if (d < 0) this.fail(`'${what}' has a negative size or stride (${d})`);
      return d;
    });
  }

  private readNode(node: SerializedNode, path: string): void {
    const op = this.name(node.target, field(path, "target")).replace(/^torch\.ops\./, "");
    const md = node.metadata;
    const stack = Object.hasOwn(md, "stack_trace") ? md.stack_trace : undefined;
    const moduleStack = Object.hasOwn(md, "nn_module_stack") ? md.nn_module_stack : undefined;
    const location = typeof stack === "string" ? userSourceLocation(stack) : undefined;
    const modulePath = typeof moduleStack === "string" ? modulePathFromStack(moduleStack) : undefined;
    const meta: NodeMeta = {
      stackTrace: typeof stack === "string" ? stack : undefined,
      sourceLocation: location && escapeControl(location),
      modulePath: modulePath && escapeControl(modulePath),
    };
    const where = () => `node '${node.name ?? op}' (${op})`;
    const args: Record<string, Arg> = {};
    const inputs = field(path, "inputs");
    for (let i = 0; i < node.inputs.length; i++) {
      const input = node.inputs[i];
      const p = index(inputs, i);
      const argName = this.name(input.name, field(p, "name"));
      if (Object.hasOwn(args, argName)) this.fail(`${where()} has two arguments named '${argName}'`);
      const arg = this.arg(input.arg, () => `${where()}, argument '${argName}'`, field(p, "arg"));
      if (arg.kind === "tensor") this.mustBeDefined(arg.name, where, argName);
      else if (arg.kind === "tensors")
        for (const n of arg.names) if (n !== null) this.mustBeDefined(n, where, argName);
      args[argName] = arg;
    }
    const outputs: { name: string; type: TensorType }[] = [];
    const outs = field(path, "outputs");
    for (let i = 0; i < node.outputs.length; i++) {
      const t = this.decode(tagged, node.outputs[i], index(outs, i));
      const names =
        t.tag === "as_tensor"
          ? [this.decode(tensorName, t.value, t.path).name]
          : t.tag === "as_tensors"
            ? this.decode(tensorNames, t.value, t.path).map((x) => x.name)
            : t.tag === "as_none"
              ? [] // an output nobody reads and PyTorch did not name
              : this.fail(
                  `${where()} returns ${t.tag.slice(0, 40)}; torchc supports tensor results only`,
                  "archive.unsupported",
                );
      for (const name of names) {
        this.name(name, t.path);
        this.define(name, where());
        outputs.push({ name, type: this.typeOf(name) });
      }
    }
    if (node.name) this.name(node.name, field(path, "name"));
    this.b.addNode(op, args, outputs, meta, node.name ?? undefined);
  }

  private mustBeDefined(name: string, where: () => string, argName: string): void {
    if (!this.defined.has(name))
      this.fail(`${where()} reads '${name}' before it is defined (argument '${argName}')`);
  }

  private arg(a: unknown, where: () => string, path: string): Arg {
    const { tag, value: v, path: p } = this.decode(tagged, a, path);
    switch (tag) {
      case "as_none":
        return { kind: "none" };
      case "as_tensor":
        return { kind: "tensor", name: this.name(this.decode(tensorName, v, p).name, p) };
      case "as_tensors":
        return { kind: "tensors", names: this.decode(tensorNames, v, p).map((t) => this.name(t.name, p)) };
      case "as_optional_tensors":
        return {
          kind: "tensors",
          names: this.decode(optionalTensors, v, p).map((n) => (n === null ? null : this.name(n, p))),
        };
      case "as_optional_tensor": {
        const n = this.decode(optionalTensor, v, p);
        return n === null ? { kind: "none" } : { kind: "tensor", name: this.name(n, p) };
      }
      case "as_int":
        return { kind: "int", value: this.decode(int, v, p) };
      case "as_sym_int":
        return { kind: "int", value: this.sizesOrInts([this.decode(symInt, v, p)], where)[0] };
      case "as_ints":
        return { kind: "ints", value: this.decode(ints, v, p) };
      case "as_sym_ints":
        return { kind: "ints", value: this.sizesOrInts(this.decode(symInts, v, p), where) };
      case "as_float":
        return { kind: "float", value: this.decode(float, v, p) };
      case "as_floats":
        return { kind: "floats", value: this.decode(floats, v, p) };
      case "as_bool":
        return { kind: "bool", value: this.decode(bool, v, p) };
      case "as_bools":
        return { kind: "bools", value: this.decode(bools, v, p) };
      case "as_string":
        return { kind: "string", value: this.decode(str, v, p) };
      case "as_scalar_type":
        return { kind: "dtype", value: this.dtype(this.decode(int, v, p), where()) };
      case "as_memory_format": {
        const code = this.decode(int, v, p);
        return { kind: "memoryFormat", value: MEMORY_FORMATS.get(code) ?? `memory_format_${code}` };
      }
      case "as_layout": {
        const code = this.decode(int, v, p);
        return { kind: "layout", value: LAYOUTS.get(code) ?? `layout_${code}` };
      }
      case "as_device": {
        const dev = this.decode(device, v, p);
        return {
          kind: "device",
          value: dev.index === null || dev.index === undefined ? dev.type : `${dev.type}:${dev.index}`,
        };
      }
      default:
        return this.fail(
          `${where()} is ${tag.slice(0, 40) || "empty"}, which torchc cannot read`,
          "archive.unsupported",
        );
    }
  }

  private sizesOrInts(s: readonly (number | undefined)[], where: () => string): number[] {
    return s.map((d) => {
      if (d === undefined)
        this.fail(
          `${where()} has a symbolic size; torchc compiles static shapes (export without dynamic_shapes)`,
          "archive.dynamic-shape",
        );
      return d;
    });
  }
}

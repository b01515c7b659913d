import { ArchiveError } from "../../errors.js";
import { GraphBuilder } from "../../ir/builder.js";
import type { DType } from "../../ir/dtype.js";
import type { Arg, Graph, NodeMeta, TensorType, WeightKind } from "../../ir/graph.js";
import type { SymbolicGraph, SymbolicType, SymbolRange, SymDim } from "../../ir/symbolic.js";
import type { Tensor } from "../../ir/tensor.js";
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
  intOrSentinel,
  isObject,
  key,
  nullable,
  onlyKey,
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
import { verifyLoadedGraph } from "../verify-loaded.js";
import { archiveRoot, readZip, type ZipArchive } from "../zip.js";
import { inlineRegion, REGION_OPS } from "./regions.js";
import {
  exportedProgram,
  LAYOUTS,
  MEMORY_FORMATS,
  SCALAR_TYPES,
  type SerializedExportedProgram,
  type SerializedNode,
  type SerializedTensorMeta,
  SUPPORTED_SCHEMA_MAJORS,
  serializedNode,
  symExprHint,
  symExprText,
  symInt,
  symIntArgument,
  tensorMeta,
  tensorName,
  type WeightEntry,
  weightConfig,
} from "./schema.js";
import { bareSymbol, evalSymExpr, SymExprError } from "./sym-expr.js";

export interface Pt2Model {
  readonly path: string;
  readonly format: "pt2";
  readonly graph: Graph;
  /** PyTorch version that wrote the archive. */
  readonly torchVersion?: string;
  /**
   * Present when the program was exported with dynamic sizes (`dynamic_shapes`): its symbols with the ranges
   * torch.export recorded, and the program at any value of them. `graph` is the program at the example
   * input's sizes (the hints in the archive).
   */
  readonly dynamic?: SymbolicGraph;
}

/** Reads an archive written by `torch.export.save` (PyTorch 2.11, schema 8.x) into a torchc graph. */
export function loadPt2(path: string, modelName?: string): Pt2Model {
  return loadPt2FromZip(readZip(path), modelName);
}

export function loadPt2FromZip(zip: ZipArchive, modelName?: string): Pt2Model {
  const { graph, torchVersion, symbolic } = readProgram(zip, modelName);
  // Verified after readProgram has returned, when the parsed model.json is garbage: the op inference allocates,
  // and a young-generation collection then has only the graph to keep, not every object of the JSON.
  // Order, duplicates, self-reads and unknown values were checked as each node was read.
  const verify = (g: Graph) => verifyLoadedGraph(g, zip.file, "archive.bad-graph", { checkStructure: false });
  const model = { path: zip.file, format: "pt2" as const, graph: verify(graph), torchVersion };
  if (!symbolic) return model;
  // Every specialization reads model.json again with the symbols bound; weights are read once and shared.
  const weights = symbolic.weights;
  const dynamic: SymbolicGraph = {
    symbols: symbolic.symbols,
    inputTypes: symbolic.inputTypes,
    specialize: (binding) => verify(readProgram(zip, modelName, { binding, weights }).graph),
  };
  return { ...model, dynamic };
}

/** How to read a dynamic program: its symbols' values, and weights already read (shared by every specialization). */
interface Specialization {
  readonly binding: Readonly<Record<string, number>>;
  readonly weights: Map<string, Tensor>;
}

/** The program's graph as model.json and the weights describe it, checked but for op inference. */
function readProgram(
  zip: ZipArchive,
  modelName?: string,
  spec?: Specialization,
): { graph: Graph; torchVersion?: string; symbolic?: DynamicInputs } {
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
    const reader = new ProgramReader(zip, root, entry, program, weights, constants, spec);
    const graph = reader.read();
    return { graph, torchVersion: program.torch_version, symbolic: reader.symbolic };
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
const symIntArguments = array(symIntArgument);
const floats = array(float);
const bools = array(bool);

/** A dynamic program's symbols (ranges from range_constraints), its inputs' symbolic types, and its weights. */
interface DynamicInputs {
  readonly symbols: SymbolRange[];
  readonly inputTypes: Record<string, SymbolicType>;
  readonly weights: Map<string, Tensor>;
}

class ProgramReader {
  private readonly b = new GraphBuilder();
  private readonly graph;
  /** Values defined so far (inputs, weights, node outputs), to report misuse before the builder sees it. */
  private readonly defined = new Set<string>();
  /** Values of the symbols when the program has symbolic sizes (the hints unless a specialization is asked for). */
  private binding: Readonly<Record<string, number>> | undefined;
  private weightCache: Map<string, Tensor> | undefined;
  /** Tensor metadata of the values inlined region bodies add (their names are not in graph.tensor_values). */
  private readonly regionValues = new Map<string, unknown>();
  private regionDepth = 0;
  /** Set by read() when the program's inputs have symbolic sizes. */
  symbolic: DynamicInputs | undefined;

  constructor(
    private readonly zip: ZipArchive,
    private readonly root: string,
    private readonly entry: string,
    private readonly program: SerializedExportedProgram,
    private readonly weights: ReadonlyMap<string, WeightEntry>,
    private readonly constants: ReadonlyMap<string, WeightEntry>,
    private readonly spec?: Specialization,
  ) {
    this.graph = program.graph_module.graph;
  }

  read(): Graph {
    const sig = this.program.graph_module.signature;
    this.readSymbols(sig.input_specs);
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
    return this.b.build();
  }

  private fail(detail: string, code = "archive.bad-model"): never {
    throw new ArchiveError(this.zip.file, detail, code);
  }

  /**
   * Finds the symbols of the user inputs' sizes (each a bare symbol, `s0`) and their ranges, and binds them:
   * to the specialization's values, else to the hints (the example input's sizes).
   */
  private readSymbols(specs: readonly { kind: string; body: Record<string, unknown> }[]): void {
    const values = this.graph.tensor_values;
    const hints = new Map<string, number | undefined>();
    const inputTypes: Record<string, SymbolicType> = {};
    for (const { kind, body } of specs) {
      if (kind !== "user_input") continue;
      const arg = isObject(body.arg) ? body.arg.as_tensor : undefined;
      const name = isObject(arg) && typeof arg.name === "string" ? arg.name : undefined;
      const meta = name !== undefined && Object.hasOwn(values, name) ? values[name] : undefined;
      const sizes = isObject(meta) && Array.isArray(meta.sizes) ? meta.sizes : undefined;
      if (name === undefined || !sizes || allStatic(sizes)) continue;
      const shape: SymDim[] = [];
      for (const d of sizes) {
        const expr = symExprText(d);
        if (expr === undefined) {
          shape.push(this.size(symInt(d, name), name));
          continue;
        }
        const symbol = bareSymbol(expr);
        if (symbol === undefined)
          this.fail(
            `input '${name}' has a size '${expr.slice(0, 40)}'; torchc takes input sizes that are one symbol each`,
            "archive.dynamic-shape",
          );
        if (!hints.has(symbol) || hints.get(symbol) === undefined) hints.set(symbol, symExprHint(d));
        shape.push({ symbol, coeff: 1 });
      }
      inputTypes[name] = { dtype: this.dtype(Number((meta as { dtype?: unknown }).dtype), name), shape };
    }
    if (hints.size === 0) return;
    const ranges = this.program.range_constraints;
    const symbols: SymbolRange[] = [...hints.keys()].map((sym) => {
      const r = ranges?.get(sym);
      const bound = (v: number | null | undefined) =>
        typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
      return { name: sym, min: bound(r?.min_val) ?? 0, max: bound(r?.max_val) };
    });
    const binding: Record<string, number> = {};
    for (const s of symbols) {
      const hint = hints.get(s.name);
      const v = this.spec?.binding[s.name] ?? hint ?? Math.max(s.min, 1);
      binding[s.name] = v;
    }
    this.binding = binding;
    this.weightCache = this.spec?.weights ?? new Map();
    this.symbolic = { symbols, inputTypes, weights: this.weightCache };
  }

  /** A symbolic size's value under the binding (an archive with symbols but no binding cannot get here). */
  private symbolicValue(expr: string, what: string): number {
    if (!this.binding)
      this.fail(
        `'${what}' has a symbolic size but the program's inputs have none; torchc specializes input dimensions`,
        "archive.dynamic-shape",
      );
    try {
      return evalSymExpr(expr, this.binding);
    } catch (e) {
      if (e instanceof SymExprError) this.fail(`'${what}': ${e.message}`, "archive.dynamic-shape");
      throw e;
    }
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
        // `{arg: {name}, parameter_name}` (or buffer_name) checked in place; anything else through the decoders
        const arg = body.arg;
        const t = kind === "parameter" ? body.parameter_name : body.buffer_name;
        let argName: string;
        let target: string;
        if (isObject(arg) && typeof arg.name === "string" && typeof t === "string") {
          argName = arg.name;
          target = t;
        } else {
          const s =
            kind === "parameter"
              ? this.decode(parameterSpec, body, path)
              : this.decode(bufferSpec, body, path);
          argName = s.arg.name;
          target = "parameter_name" in s ? s.parameter_name : s.buffer_name;
        }
        const name = this.name(argName, field(path, "arg"));
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
    if (this.defined.has(name))
      this.fail(`${kind} '${target}' defines value '${name}', which is already defined`);
    this.defined.add(name);
    const file = folder + entry.path_name;
    const path = this.root + file;
    const size = this.zip.size(path);
    if (size === undefined)
      this.fail(`weight file ${file} for ${kind} '${target}' is missing`, "archive.truncated");
    const meta = entry.tensor_meta;
    const cached = this.weightCache?.get(path);
    if (cached) {
      this.b.addWeight(name, { kind, target, tensor: cached });
      return;
    }
    const tensor = viewTensor(
      {
        file,
        what: `'${target}'`,
        dtype: this.dtype(meta.dtype, target),
        sizes: this.sizes(meta.sizes, target),
        strides: this.sizes(meta.strides, target),
        offset: this.size(meta.storage_offset, target),
        storageBytes: size,
        read: this.reader(path),
        budget: this.zip.budget,
      },
      this.failWith,
    );
    this.weightCache?.set(path, tensor);
    this.b.addWeight(name, { kind, target, tensor });
  }

  /** Reads the prefix of one weight file (a function made here, so that it carries no name of its own). */
  private reader(path: string): (prefix?: number) => Uint8Array {
    return (prefix) => this.zip.read(path, prefix) ?? new Uint8Array();
  }

  private readonly failWith = (detail: string, code?: string): never => this.fail(detail, code);

  private typeOf(name: string): TensorType {
    const values = this.graph.tensor_values;
    const inRegion = !Object.hasOwn(values, name) && this.regionValues.has(name);
    if (!Object.hasOwn(values, name) && !inRegion) this.fail(`value '${name}' has no entry in tensor_values`);
    const raw = inRegion ? this.regionValues.get(name) : values[name];
    // the common case (static sizes, a known dtype) checked without allocating; anything else, and every
    // failure, goes through the decoder and the checks below, which name the problem
    if (isObject(raw)) {
      const code = raw.dtype;
      const dtype = typeof code === "number" ? SCALAR_TYPES.get(code) : undefined;
      const shape = dtype && Number.isSafeInteger(code) ? staticSizes(raw.sizes) : undefined;
      if (dtype && shape && allStatic(raw.strides) && staticSize(raw.storage_offset) !== undefined)
        return { dtype, shape };
    }
    const meta: SerializedTensorMeta = this.decode(
      tensorMeta,
      raw,
      key("$.graph_module.graph.tensor_values", name),
    );
    const rawSizes = isObject(raw) && Array.isArray(raw.sizes) ? raw.sizes : undefined;
    return { dtype: this.dtype(meta.dtype, name), shape: this.sizes(meta.sizes, name, rawSizes) };
  }

  private dtype(code: number, what: string): DType {
    const d = SCALAR_TYPES.get(code);
    if (!d)
      this.fail(`'${what}' has dtype code ${code}, which torchc does not support`, "archive.unsupported");
    return d;
  }

  /**
   * Non-negative sizes; a symbolic one (`raw[i]` is `{as_expr}`) is evaluated when the program's input sizes
   * are bound, else refused.
   */
  private sizes(s: readonly (number | undefined)[], what: string, raw?: readonly unknown[]): number[] {
    const out = new Array<number>(s.length);
    for (let i = 0; i < s.length; i++) {
      const expr = s[i] === undefined && this.binding ? symExprText(raw?.[i]) : undefined;
      out[i] = this.size(expr === undefined ? s[i] : this.symbolicValue(expr, what), what);
    }
    return out;
  }

  private size(d: number | undefined, what: string): number {
    if (d === undefined)
      this.fail(
        `'${what}' has a symbolic size; torchc compiles static shapes (export without dynamic_shapes)`,
        "archive.dynamic-shape",
      );
    if (d < 0) this.fail(`'${what}' has a negative size or stride (${d})`);
    return d;
  }

  private readNode(raw: unknown, path: string): void {
    const node: RawNode = isNode(raw) ? raw : this.decode(serializedNode, raw, path);
    const op = this.name(node.target, field(path, "target")).replace(TORCH_OPS, "");
    // In a dynamic program, size arithmetic (`sym_size`, `operator.mul`) and the checks on it are evaluated
    // under the binding: their values are in sym_int_values, and the sizes they feed are already numbers.
    if (this.binding && (SIZE_CHECKS.has(op) || isSizeArithmetic(node.outputs))) return;
    if (REGION_OPS.has(op)) {
      this.readRegion(node, op, path);
      return;
    }
    const md = node.metadata;
    const stack = md && Object.hasOwn(md, "stack_trace") ? md.stack_trace : undefined;
    const moduleStack = md && Object.hasOwn(md, "nn_module_stack") ? md.nn_module_stack : undefined;
    const meta = nodeMeta(
      typeof stack === "string" ? stack : undefined,
      typeof moduleStack === "string" ? moduleStack : undefined,
    );
    const at: NodeAt = { name: node.name ?? op, op };
    const args: Record<string, Arg> = {};
    const inputs = field(path, "inputs");
    for (let i = 0; i < node.inputs.length; i++) {
      const input = node.inputs[i];
      const p = index(inputs, i);
      const argName = this.name(input.name, field(p, "name"));
      if (Object.hasOwn(args, argName)) this.fail(`${where(at)} has two arguments named '${argName}'`);
      const arg = this.arg(input.arg, at, argName, field(p, "arg"));
      if (arg.kind === "tensor") this.mustBeDefined(arg.name, at, argName);
      else if (arg.kind === "tensors")
        for (const n of arg.names) if (n !== null) this.mustBeDefined(n, at, argName);
      args[argName] = arg;
    }
    const outputs: { name: string; type: TensorType }[] = [];
    const outs = field(path, "outputs");
    for (let i = 0; i < node.outputs.length; i++) {
      const out = node.outputs[i];
      const single = tensorOutput(out);
      if (single !== undefined) {
        this.output(single, field(index(outs, i), "as_tensor"), at, outputs);
        continue;
      }
      const t = this.decode(tagged, out, index(outs, i));
      const names =
        t.tag === "as_tensor"
          ? [this.decode(tensorName, t.value, t.path).name]
          : t.tag === "as_tensors"
            ? this.decode(tensorNames, t.value, t.path).map((x) => x.name)
            : t.tag === "as_none"
              ? [] // an output nobody reads and PyTorch did not name
              : this.fail(
                  `${where(at)} returns ${t.tag.slice(0, 40)}; torchc supports tensor results only`,
                  "archive.unsupported",
                );
      for (const name of names) this.output(name, t.path, at, outputs);
    }
    if (node.name) this.name(node.name, field(path, "name"));
    this.b.addNode(op, args, outputs, meta, node.name ?? undefined);
  }

  /** A higher-order op wrapping a region (autocast, grad mode): its body's nodes, read in its place. */
  private readRegion(node: RawNode, op: string, path: string): void {
    // a hostile file could nest bodies until the stack overflows
    if (this.regionDepth >= MAX_REGION_DEPTH)
      this.fail(`regions are nested more than ${MAX_REGION_DEPTH} deep at ${path}`, "archive.unsupported");
    const values = this.graph.tensor_values;
    const region = inlineRegion(op, node, {
      taken: (n) => Object.hasOwn(values, n) || this.regionValues.has(n) || this.defined.has(n),
      fail: this.failWith,
      where: where({ name: node.name ?? op, op }),
    });
    for (const [name, meta] of region.values) this.regionValues.set(name, meta);
    const at = field(path, "body");
    this.regionDepth++;
    try {
      for (let i = 0; i < region.nodes.length; i++) this.readNode(region.nodes[i], index(at, i));
    } finally {
      this.regionDepth--;
    }
  }

  private output(
    name: string,
    path: string,
    at: NodeAt,
    outputs: { name: string; type: TensorType }[],
  ): void {
    this.name(name, path);
    if (this.defined.has(name)) this.fail(`${where(at)} defines value '${name}', which is already defined`);
    this.defined.add(name);
    outputs.push({ name, type: this.typeOf(name) });
  }

  private mustBeDefined(name: string, at: NodeAt, argName: string): void {
    if (!this.defined.has(name))
      this.fail(`${where(at)} reads '${name}' before it is defined (argument '${argName}')`);
  }

  private arg(a: unknown, at: NodeAt, argName: string, path: string): Arg {
    // the common kinds checked in place (exactly what their decoders accept); anything else, and every
    // failure, goes through the decoders below, which name the JSON path
    const tag = onlyKey(a);
    if (tag !== undefined) {
      const v = (a as Record<string, unknown>)[tag];
      switch (tag) {
        case "as_tensor":
          if (isObject(v) && typeof v.name === "string")
            return { kind: "tensor", name: this.name(v.name, field(path, tag)) };
          break;
        case "as_none":
          return { kind: "none" };
        case "as_int": {
          const n = intOrSentinel(v);
          if (n !== undefined) return { kind: "int", value: n };
          break;
        }
        case "as_ints":
          if (isIntArray(v)) return { kind: "ints", value: v.map((x) => intOrSentinel(x) as number) };
          break;
        case "as_float":
          if (typeof v === "number") return { kind: "float", value: v };
          break;
        case "as_bool":
          if (typeof v === "boolean") return { kind: "bool", value: v };
          break;
      }
    }
    return this.decodeArg(a, at, argName, path);
  }

  private decodeArg(a: unknown, at: NodeAt, argName: string, path: string): Arg {
    const whereArg = (): string => `${where(at)}, argument '${argName}'`;
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
        return { kind: "int", value: this.symArg(this.decode(symIntArgument, v, p), whereArg) };
      case "as_ints":
        return { kind: "ints", value: this.decode(ints, v, p) };
      case "as_sym_ints":
        return {
          kind: "ints",
          value: this.decode(symIntArguments, v, p).map((a) => this.symArg(a, whereArg)),
        };
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
        return { kind: "dtype", value: this.dtype(this.decode(int, v, p), whereArg()) };
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
          `${whereArg()} is ${tag.slice(0, 40) || "empty"}, which torchc cannot read`,
          "archive.unsupported",
        );
    }
  }

  /** A SymIntArgument's value: a literal, or a named symbolic size evaluated under the binding. */
  private symArg(a: number | { readonly name: string }, where: () => string): number {
    if (typeof a === "number") return a;
    const values = this.graph.sym_int_values;
    const v = values && Object.hasOwn(values, a.name) ? values[a.name] : undefined;
    const n = staticSize(v);
    if (n !== undefined) return n;
    const expr = symExprText(v);
    if (expr === undefined)
      this.fail(`${where()} names symbolic size '${a.name}', which sym_int_values does not define`);
    if (!this.binding)
      this.fail(
        `${where()} has a symbolic size; torchc compiles static shapes (export without dynamic_shapes)`,
        "archive.dynamic-shape",
      );
    return this.symbolicValue(expr, where());
  }
}

const TORCH_OPS = /^torch\.ops\./;

/** How deep region ops (autocast, grad mode) may nest. */
const MAX_REGION_DEPTH = 64;

/** Nodes of a dynamic program that only check sizes (their arguments are symbolic booleans or sizes). */
const SIZE_CHECKS: ReadonlySet<string> = new Set([
  "aten._assert_scalar.default",
  "aten.sym_constrain_range.default",
  "aten.sym_constrain_range_for_size.default",
  "aten._assert_async.msg",
]);

const SYM_OUTPUTS: ReadonlySet<string> = new Set([
  "as_sym_int",
  "as_sym_ints",
  "as_sym_bool",
  "as_sym_float",
]);

/** Whether a node's results are all symbolic scalars (sizes or conditions on them), and there is one. */
function isSizeArithmetic(outputs: readonly unknown[]): boolean {
  if (outputs.length === 0) return false;
  for (const o of outputs) {
    const k = onlyKey(o);
    if (k === undefined || !SYM_OUTPUTS.has(k)) return false;
  }
  return true;
}

/** A node as messages name it, `node 'conv' (aten.convolution.default)`, built only when a message is. */
interface NodeAt {
  readonly name: string;
  readonly op: string;
}

function where(at: NodeAt): string {
  return `node '${at.name}' (${at.op})`;
}

/** A node of model.json as `serializedNode` checks it, with metadata possibly left absent or null. */
type RawNode = Omit<SerializedNode, "metadata"> & {
  readonly metadata?: Readonly<Record<string, unknown>> | null;
};

/**
 * Whether `v` passes `serializedNode` unchanged but for absent metadata (plain reads stand in for its own-property
 * reads: none of these keys is a property of Object.prototype).
 */
function isNode(v: unknown): v is RawNode {
  if (!isObject(v)) return false;
  const { target, inputs, outputs, metadata, name } = v;
  if (typeof target !== "string" || !Array.isArray(inputs) || !Array.isArray(outputs)) return false;
  if (metadata !== undefined && metadata !== null && !isObject(metadata)) return false;
  if (name !== undefined && name !== null && typeof name !== "string") return false;
  for (let i = 0; i < inputs.length; i++) {
    const input = inputs[i];
    if (!isObject(input) || typeof input.name !== "string") return false;
  }
  return true;
}

/** The name of `{as_tensor: {name}}`, else undefined (then the decoders read the output). */
function tensorOutput(v: unknown): string | undefined {
  if (onlyKey(v) !== "as_tensor") return undefined;
  const t = (v as { as_tensor: unknown }).as_tensor;
  return isObject(t) && typeof t.name === "string" ? t.name : undefined;
}

/** What `array(int)` accepts and returns unchanged. */
function isIntArray(v: unknown): v is number[] {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (intOrSentinel(v[i]) === undefined) return false;
  return true;
}

/** `{as_int: n}` with a non-negative n, else undefined. */
function staticSize(v: unknown): number | undefined {
  const n = typeof v === "object" && v !== null ? (v as { as_int?: unknown }).as_int : undefined;
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 && onlyKey(v) === "as_int"
    ? n
    : undefined;
}

/** Whether `v` is a list of `staticSize`s. */
function allStatic(v: unknown): boolean {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (staticSize(v[i]) === undefined) return false;
  return true;
}

/** A list of `staticSize`s as numbers, else undefined. */
function staticSizes(v: unknown): number[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out = new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) {
    const n = staticSize(v[i]);
    if (n === undefined) return undefined;
    out[i] = n;
  }
  return out;
}

/**
 * A node's metadata. Its source location and module path are derived from the recorded stack texts when first
 * read (messages and reports read them; most loads never do), escaped like any text from the file.
 */
function nodeMeta(stack: string | undefined, moduleStack: string | undefined): NodeMeta {
  let location: string | undefined | null = null;
  let modulePath: string | undefined | null = null;
  return {
    stackTrace: stack,
    get sourceLocation(): string | undefined {
      if (location === null) {
        const l = userSourceLocation(stack);
        location = l && escapeControl(l);
      }
      return location;
    },
    get modulePath(): string | undefined {
      if (modulePath === null) {
        const m = modulePathFromStack(moduleStack);
        modulePath = m && escapeControl(m);
      }
      return modulePath;
    },
  };
}

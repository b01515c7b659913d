import { TextDecoder } from "node:util";
import { ArchiveError } from "../../errors.js";
import { GraphBuilder } from "../../ir/builder.js";
import { DTYPE_BYTES, type DType } from "../../ir/dtype.js";
import type { Arg, Graph, NodeMeta, TensorType, WeightKind } from "../../ir/graph.js";
import { allocData, numel, type Tensor, tensorFromBytes } from "../../ir/tensor.js";
import { verifyGraph } from "../../ir/verify.js";
import { modulePathFromStack, userSourceLocation } from "../stack-trace.js";
import { archiveRoot, readZip, type ZipArchive } from "../zip.js";
import {
  LAYOUTS,
  MEMORY_FORMATS,
  type NamedArgument,
  SCALAR_TYPES,
  type SerializedArgument,
  type SerializedExportedProgram,
  type SerializedTensorMeta,
  SUPPORTED_SCHEMA_MAJORS,
  type SymIntLike,
  type WeightEntry,
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
  const text = (name: string): string | undefined => {
    const bytes = zip.entries.get(root + name);
    return bytes && new TextDecoder().decode(bytes);
  };
  const format = text("archive_format")?.trim();
  if (format !== undefined && format !== "pt2") {
    throw new ArchiveError(
      file,
      `has archive_format '${format}'; torchc reads 'pt2' archives`,
      "archive.version",
    );
  }
  const models = [...zip.entries.keys()].filter((p) => p.startsWith(`${root}models/`) && p.endsWith(".json"));
  const wanted =
    modelName ?? (models.length !== 1 || models[0] === `${root}models/model.json` ? "model" : undefined);
  const modelPath = wanted ? `${root}models/${wanted}.json` : models[0];
  const json = modelPath && text(modelPath.slice(root.length));
  if (!json)
    throw new ArchiveError(
      file,
      `has no ${wanted ? `models/${wanted}.json` : "models/*.json"} (the serialized program)`,
      "archive.no-model",
    );
  let program: SerializedExportedProgram;
  try {
    program = JSON.parse(json) as SerializedExportedProgram;
  } catch (e) {
    throw new ArchiveError(
      file,
      `${modelPath.slice(root.length)} is not valid JSON (${(e as Error).message})`,
      "archive.bad-model",
    );
  }
  const major = program?.schema_version?.major;
  if (typeof major !== "number" || !program.graph_module?.graph || !program.graph_module.signature) {
    throw new ArchiveError(
      file,
      `${modelPath.slice(root.length)} is not a serialized ExportedProgram (graph_module or schema_version missing)`,
      "archive.bad-model",
    );
  }
  if (!SUPPORTED_SCHEMA_MAJORS.includes(major)) {
    throw new ArchiveError(
      file,
      `uses export schema ${major}.${program.schema_version.minor} (torch ${program.torch_version ?? "?"}); torchc reads schema ${SUPPORTED_SCHEMA_MAJORS.join(", ")}.x (PyTorch 2.11)`,
      "archive.version",
    );
  }
  const weights = readWeightConfig(zip, root, "data/weights/model_weights_config.json");
  const constants = readWeightConfig(zip, root, "data/constants/model_constants_config.json");
  const graph = new ProgramReader(zip, root, program, weights, constants).read();
  return { path: file, format: "pt2", graph, torchVersion: program.torch_version };
}

function readWeightConfig(zip: ZipArchive, root: string, name: string): Record<string, WeightEntry> {
  const bytes = zip.entries.get(root + name);
  if (!bytes) return {};
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes)) as { config?: Record<string, WeightEntry> };
    return parsed.config ?? {};
  } catch (e) {
    throw new ArchiveError(
      zip.file,
      `${name} is not valid JSON (${(e as Error).message})`,
      "archive.bad-model",
    );
  }
}

/** PyTorch's serializer writes non-finite floats as the strings "Infinity", "-Infinity" and "NaN". */
function jsonFloat(v: unknown): number {
  return typeof v === "string" ? Number(v) : (v as number);
}

class ProgramReader {
  private readonly b = new GraphBuilder();
  private readonly graph;

  constructor(
    private readonly zip: ZipArchive,
    private readonly root: string,
    private readonly program: SerializedExportedProgram,
    private readonly weights: Record<string, WeightEntry>,
    private readonly constants: Record<string, WeightEntry>,
  ) {
    this.graph = program.graph_module.graph;
  }

  read(): Graph {
    const sig = this.program.graph_module.signature;
    for (const spec of sig.input_specs) this.readInput(spec);
    for (const node of this.graph.nodes) this.readNode(node);
    const outputs: string[] = [];
    for (const spec of sig.output_specs) {
      if (!spec.user_output) continue; // buffer mutations and the like do not exist in inference graphs
      const t = (spec.user_output.arg as { as_tensor?: { name: string } }).as_tensor;
      if (!t)
        this.fail(
          `user output ${JSON.stringify(spec.user_output.arg)} is not a tensor; torchc compiles tensor outputs only`,
        );
      outputs.push(t!.name);
    }
    this.b.setOutputs(outputs);
    return verifyGraph(this.b.build());
  }

  private fail(detail: string, code = "archive.bad-model"): never {
    throw new ArchiveError(this.zip.file, detail, code);
  }

  private readInput(spec: Record<string, unknown>): void {
    const kind = Object.keys(spec)[0];
    const body = spec[kind] as Record<string, unknown> & { arg: Record<string, unknown> };
    switch (kind) {
      case "user_input": {
        const t = body.arg.as_tensor as { name: string } | undefined;
        if (!t)
          this.fail(
            `a user input is ${JSON.stringify(body.arg)}; torchc compiles tensor inputs only`,
            "archive.unsupported",
          );
        this.b.addInput(t!.name, this.typeOf(t!.name));
        return;
      }
      case "parameter":
      case "buffer": {
        const target = (body.parameter_name ?? body.buffer_name) as string;
        this.addWeight(body.arg.name as string, target, kind, this.weights[target], "data/weights/");
        return;
      }
      case "tensor_constant": {
        const target = body.tensor_constant_name as string;
        this.addWeight(
          body.arg.name as string,
          target,
          "constant",
          this.constants[target],
          "data/constants/",
        );
        return;
      }
      default:
        this.fail(`input kind '${kind}' is not supported by torchc yet`, "archive.unsupported");
    }
  }

  private addWeight(
    name: string,
    target: string,
    kind: WeightKind,
    entry: WeightEntry | undefined,
    folder: string,
  ): void {
    if (!entry)
      this.fail(`${kind} '${target}' is listed in the signature but missing from ${folder}*_config.json`);
    if (entry!.use_pickle)
      this.fail(
        `${kind} '${target}' is stored pickled; torchc reads raw weight files only`,
        "archive.unsupported",
      );
    const bytes = this.zip.entries.get(`${this.root}${folder}${entry!.path_name}`);
    if (!bytes)
      this.fail(
        `weight file ${folder}${entry!.path_name} for ${kind} '${target}' is missing`,
        "archive.truncated",
      );
    const tensor = this.weightTensor(`${folder}${entry!.path_name}`, target, entry!.tensor_meta, bytes!);
    this.b.addWeight(name, { kind, target, tensor });
  }

  /** Weight files hold the tensor's storage; a strided view is gathered into a contiguous tensor. */
  private weightTensor(file: string, target: string, meta: SerializedTensorMeta, bytes: Uint8Array): Tensor {
    const dtype = this.dtype(meta.dtype, target);
    const shape = meta.sizes.map((s) => this.int(s, target));
    const strides = meta.strides.map((s) => this.int(s, target));
    const offset = this.int(meta.storage_offset, target);
    const item = DTYPE_BYTES[dtype];
    const n = numel(shape);
    let extent = n === 0 ? 0 : offset + 1;
    shape.forEach((d, i) => {
      if (d > 0) extent += (d - 1) * strides[i];
    });
    if (bytes.byteLength < extent * item || bytes.byteLength % item !== 0) {
      this.fail(
        `weight file ${file} for '${target}' has ${bytes.byteLength} bytes but its metadata (${dtype}[${shape.join(", ")}]) needs ${extent * item}`,
        "archive.weight-size",
      );
    }
    const contiguous =
      offset === 0 &&
      strides.every((s, i) => shape[i] === 1 || s === shape.slice(i + 1).reduce((a, b) => a * b, 1));
    if (contiguous) return tensorFromBytes(dtype, shape, bytes.subarray(0, n * item));
    const out = allocData(dtype, n);
    const dst = new Uint8Array(out.buffer);
    const idx = new Array<number>(shape.length).fill(0);
    for (let i = 0; i < n; i++) {
      let src = offset;
      for (let d = 0; d < shape.length; d++) src += idx[d] * strides[d];
      dst.set(bytes.subarray(src * item, src * item + item), i * item);
      for (let d = shape.length - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) break;
        idx[d] = 0;
      }
    }
    return { dtype, shape, data: out };
  }

  private typeOf(name: string): TensorType {
    const meta = this.graph.tensor_values[name];
    if (!meta) this.fail(`value '${name}' has no entry in tensor_values`);
    return { dtype: this.dtype(meta.dtype, name), shape: meta.sizes.map((s) => this.int(s, name)) };
  }

  private dtype(code: number, what: string): DType {
    const d = SCALAR_TYPES[code];
    if (!d)
      this.fail(`'${what}' has dtype code ${code}, which torchc does not support`, "archive.unsupported");
    return d!;
  }

  private int(s: SymIntLike, what: string): number {
    if (typeof s?.as_int === "number") return s.as_int;
    return this.fail(
      `'${what}' has a symbolic size ${JSON.stringify(s)}; torchc compiles static shapes (export without dynamic_shapes)`,
      "archive.dynamic-shape",
    );
  }

  private readNode(node: {
    target: string;
    inputs: NamedArgument[];
    outputs: SerializedArgument[];
    metadata: Record<string, string>;
    name?: string;
  }): void {
    const op = node.target.replace(/^torch\.ops\./, "");
    const meta: NodeMeta = {
      stackTrace: node.metadata?.stack_trace,
      sourceLocation: userSourceLocation(node.metadata?.stack_trace),
      modulePath: modulePathFromStack(node.metadata?.nn_module_stack),
    };
    const where = `node '${node.name ?? op}' (${op})`;
    const args: Record<string, Arg> = {};
    for (const input of node.inputs)
      args[input.name] = this.arg(input.arg, `${where}, argument '${input.name}'`);
    const outputs: { name: string; type: TensorType }[] = [];
    for (const out of node.outputs) {
      const key = Object.keys(out)[0];
      if (key === "as_tensor") {
        const name = (out.as_tensor as { name: string }).name;
        outputs.push({ name, type: this.typeOf(name) });
      } else if (key === "as_tensors") {
        for (const t of out.as_tensors as { name: string }[])
          outputs.push({ name: t.name, type: this.typeOf(t.name) });
      } else if (key === "as_none") {
        // an output nobody reads and PyTorch did not name
      } else {
        this.fail(`${where} returns ${key}; torchc supports tensor results only`, "archive.unsupported");
      }
    }
    this.b.addNode(op, args, outputs, meta, node.name);
  }

  private arg(a: SerializedArgument, where: string): Arg {
    const key = Object.keys(a ?? {})[0];
    const v = (a as Record<string, unknown>)[key];
    switch (key) {
      case "as_none":
        return { kind: "none" };
      case "as_tensor":
        return { kind: "tensor", name: (v as { name: string }).name };
      case "as_tensors":
        return { kind: "tensors", names: (v as { name: string }[]).map((t) => t.name) };
      case "as_optional_tensors":
        return {
          kind: "tensors",
          names: (v as Record<string, { name: string }>[]).map((t) =>
            t.as_tensor ? t.as_tensor.name : null,
          ),
        };
      case "as_optional_tensor": {
        const t = (v as { as_tensor?: { name: string } }).as_tensor;
        return t ? { kind: "tensor", name: t.name } : { kind: "none" };
      }
      case "as_int":
        return { kind: "int", value: v as number };
      case "as_sym_int":
        return { kind: "int", value: this.int(v as SymIntLike, where) };
      case "as_ints":
        return { kind: "ints", value: v as number[] };
      case "as_sym_ints":
        return { kind: "ints", value: (v as SymIntLike[]).map((s) => this.int(s, where)) };
      case "as_float":
        return { kind: "float", value: jsonFloat(v) };
      case "as_floats":
        return { kind: "floats", value: (v as unknown[]).map(jsonFloat) };
      case "as_bool":
        return { kind: "bool", value: v as boolean };
      case "as_bools":
        return { kind: "bools", value: v as boolean[] };
      case "as_string":
        return { kind: "string", value: v as string };
      case "as_scalar_type":
        return { kind: "dtype", value: this.dtype(v as number, where) };
      case "as_memory_format":
        return { kind: "memoryFormat", value: MEMORY_FORMATS[v as number] ?? `memory_format_${v}` };
      case "as_layout":
        return { kind: "layout", value: LAYOUTS[v as number] ?? `layout_${v}` };
      case "as_device": {
        const d = v as { type: string; index: number | null };
        return {
          kind: "device",
          value: d.index === null || d.index === undefined ? d.type : `${d.type}:${d.index}`,
        };
      }
      default:
        return this.fail(`${where} is ${key ?? "empty"}, which torchc cannot read`, "archive.unsupported");
    }
  }
}

// The parts of PyTorch's serialized ExportedProgram (torch/_export/serde/schema.py, schema 8.x) that torchc reads.
import type { DType } from "../../ir/dtype.js";

/** A union in the schema is an object with exactly one key. */
export type SerializedArgument = Record<string, unknown>;

export interface NamedArgument {
  name: string;
  arg: SerializedArgument;
  kind?: number;
}

export interface SerializedNode {
  target: string;
  inputs: NamedArgument[];
  outputs: SerializedArgument[];
  metadata: Record<string, string>;
  name?: string;
}

export interface SymIntLike {
  as_int?: number;
  as_expr?: unknown;
}

export interface SerializedTensorMeta {
  dtype: number;
  sizes: SymIntLike[];
  strides: SymIntLike[];
  storage_offset: SymIntLike;
  requires_grad?: boolean;
  device?: { type: string; index: number | null };
  layout?: number;
}

export interface SerializedGraph {
  inputs: SerializedArgument[];
  outputs: SerializedArgument[];
  nodes: SerializedNode[];
  tensor_values: Record<string, SerializedTensorMeta>;
}

export interface InputSpec {
  user_input?: { arg: SerializedArgument };
  parameter?: { arg: { name: string }; parameter_name: string };
  buffer?: { arg: { name: string }; buffer_name: string; persistent?: boolean };
  tensor_constant?: { arg: { name: string }; tensor_constant_name: string };
  [other: string]: unknown;
}

export interface OutputSpec {
  user_output?: { arg: SerializedArgument };
  [other: string]: unknown;
}

export interface SerializedExportedProgram {
  graph_module: {
    graph: SerializedGraph;
    signature: { input_specs: InputSpec[]; output_specs: OutputSpec[] };
  };
  schema_version: { major: number; minor: number };
  torch_version?: string;
}

export interface WeightEntry {
  path_name: string;
  is_param?: boolean;
  use_pickle?: boolean;
  tensor_meta: SerializedTensorMeta;
}

/** torch/_export/serde/schema.py ScalarType. */
export const SCALAR_TYPES: Readonly<Record<number, DType>> = {
  1: "uint8",
  2: "int8",
  3: "int16",
  4: "int32",
  5: "int64",
  6: "float16",
  7: "float32",
  8: "float64",
  12: "bool",
  13: "bfloat16",
};

export const MEMORY_FORMATS: Readonly<Record<number, string>> = {
  0: "unknown",
  1: "contiguous_format",
  2: "channels_last",
  3: "channels_last_3d",
  4: "preserve_format",
};

export const LAYOUTS: Readonly<Record<number, string>> = { 7: "strided" };

/** Schema majors this reader understands. */
export const SUPPORTED_SCHEMA_MAJORS: readonly number[] = [8];

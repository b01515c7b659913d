// The parts of PyTorch's serialized ExportedProgram (torch/_export/serde/schema.py, schema 8.x) that torchc reads,
// as typed decoders: model.json and the weights/constants configs are checked against these before use.
import type { DType } from "../../ir/dtype.js";
import {
  array,
  bool,
  DecodeFailure,
  type Decoder,
  int,
  isObject,
  list,
  nullable,
  num,
  object,
  onlyKey,
  optional,
  size,
  str,
  struct,
  table,
  tagged,
  unknownValue,
} from "../decode.js";
import { normalizeSymExpr } from "./sym-expr.js";

/** A union in the schema is an object with exactly one key; decoded later, where the key is known. */
export type SerializedArgument = unknown;

/** `{as_int: n}` (static) or `{as_expr: …}` (symbolic): returns the int, or undefined when symbolic. */
export const symInt: Decoder<number | undefined> = (v, p) => {
  // the common case, a static size, without allocating
  const n = typeof v === "object" && v !== null ? (v as { as_int?: unknown }).as_int : undefined;
  if (typeof n === "number" && Number.isSafeInteger(n) && onlyKey(v) === "as_int") return n;
  const t = tagged(v, p);
  if (t.tag === "as_int") return int(t.value, t.path);
  return undefined;
};

export const tensorName = struct({ name: str });

/** `{as_expr: {expr_str}}` → the expression text, else undefined (a static size, or not a SymInt). */
export function symExprText(v: unknown): string | undefined {
  if (onlyKey(v) !== "as_expr") return undefined;
  const e = (v as { as_expr: unknown }).as_expr;
  return isObject(e) && typeof e.expr_str === "string" ? normalizeSymExpr(e.expr_str) : undefined;
}

/** The hint torch.export recorded with a symbolic size (the example input's size), if any. */
export function symExprHint(v: unknown): number | undefined {
  if (onlyKey(v) !== "as_expr") return undefined;
  const e = (v as { as_expr: unknown }).as_expr;
  const h = isObject(e) && isObject(e.hint) ? e.hint.as_int : undefined;
  return typeof h === "number" && Number.isSafeInteger(h) ? h : undefined;
}

/** A SymIntArgument: `{as_int: n}`, or `{as_name}` naming an entry of graph.sym_int_values. */
export const symIntArgument: Decoder<number | { readonly name: string }> = (v, p) => {
  const t = tagged(v, p);
  if (t.tag === "as_int") return int(t.value, t.path);
  if (t.tag === "as_name") return { name: str(t.value, t.path) };
  throw new DecodeFailure(p, "as_int or as_name", v);
};

/** range_constraints: `{min_val, max_val}` per symbol; null (or PyTorch's int_oo) means unbounded. */
export const rangeConstraint = struct({
  min_val: optional(nullable(num)),
  max_val: optional(nullable(num)),
});

export const tensorMeta = struct({
  dtype: int,
  sizes: array(symInt),
  strides: array(symInt),
  storage_offset: symInt,
});
export type SerializedTensorMeta = ReturnType<typeof tensorMeta>;

const namedArgument = struct({ name: str, arg: unknownValue });
export type NamedArgument = ReturnType<typeof namedArgument>;

const NO_METADATA: Readonly<Record<string, unknown>> = Object.freeze({});
/** Node metadata: an object whose own string values are read with `Object.hasOwn` (absent or null: none). */
const metadata: Decoder<Readonly<Record<string, unknown>>> = (v, p) =>
  v === undefined || v === null ? NO_METADATA : object(v, p);

/** One of graph.nodes; decoded by the reader as it reads the node (see ProgramReader.readNode). */
export const serializedNode = struct({
  target: str,
  inputs: array(namedArgument),
  outputs: array(unknownValue),
  metadata,
  name: optional(nullable(str)),
});
export type SerializedNode = ReturnType<typeof serializedNode>;

const inputSpec: Decoder<{ kind: string; body: Record<string, unknown>; path: string }> = (v, p) => {
  const t = tagged(v, p);
  const body = object(t.value, t.path);
  return { kind: t.tag, body, path: t.path };
};
export type InputSpec = ReturnType<typeof inputSpec>;

const outputSpec: Decoder<{ kind: string; body: unknown; path: string }> = (v, p) => {
  const t = tagged(v, p);
  return { kind: t.tag, body: t.value, path: t.path };
};

export const exportedProgram = struct({
  schema_version: struct({ major: int, minor: int }),
  torch_version: optional(str),
  graph_module: struct({
    graph: struct({
      // each node is decoded as it is read, in one pass with the reader's own checks
      nodes: list,
      // decoded entry by entry as values are looked up (see ProgramReader.typeOf)
      tensor_values: object,
      // symbolic sizes that arguments name (`{as_sym_int: {as_name}}`), read when a dynamic program is specialized
      sym_int_values: optional(object),
    }),
    signature: struct({ input_specs: array(inputSpec), output_specs: array(outputSpec) }),
  }),
  range_constraints: optional(table(rangeConstraint)),
});
export type SerializedExportedProgram = ReturnType<typeof exportedProgram>;

const weightEntryFields = struct({
  path_name: str,
  use_pickle: optional(nullable(bool)),
  tensor_meta: tensorMeta,
});
export type WeightEntry = ReturnType<typeof weightEntryFields>;

/** `weightEntryFields`, with the common case (static sizes) checked and built in place. */
const weightEntry: Decoder<WeightEntry> = (v, p) => {
  if (isObject(v)) {
    // plain reads stand in for own-property reads: none of these keys is a property of Object.prototype
    const { path_name, use_pickle, tensor_meta: m } = v;
    if (
      typeof path_name === "string" &&
      (use_pickle === undefined || use_pickle === null || typeof use_pickle === "boolean") &&
      isObject(m) &&
      Number.isSafeInteger(m.dtype)
    ) {
      const sizes = staticInts(m.sizes);
      const strides = staticInts(m.strides);
      const offset = staticInt(m.storage_offset);
      if (sizes && strides && offset !== undefined)
        return {
          path_name,
          use_pickle: use_pickle as boolean | null | undefined,
          tensor_meta: { dtype: m.dtype as number, sizes, strides, storage_offset: offset },
        };
    }
  }
  return weightEntryFields(v, p);
};

/** What `symInt` returns for `{as_int: n}`, else undefined (then the decoder reads it). */
function staticInt(v: unknown): number | undefined {
  const n = typeof v === "object" && v !== null ? (v as { as_int?: unknown }).as_int : undefined;
  return typeof n === "number" && Number.isSafeInteger(n) && onlyKey(v) === "as_int" ? n : undefined;
}

/** What `array(symInt)` returns for a list of `{as_int: n}`, else undefined. */
function staticInts(v: unknown): number[] | undefined {
  if (!Array.isArray(v)) return undefined;
  const out = new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) {
    const n = staticInt(v[i]);
    if (n === undefined) return undefined;
    out[i] = n;
  }
  return out;
}

/** data/weights/model_weights_config.json and data/constants/model_constants_config.json. */
export const weightConfig = struct({ config: table(weightEntry) });

export { size };

/** torch/_export/serde/schema.py ScalarType. */
export const SCALAR_TYPES: ReadonlyMap<number, DType> = new Map([
  [1, "uint8"],
  [2, "int8"],
  [3, "int16"],
  [4, "int32"],
  [5, "int64"],
  [6, "float16"],
  [7, "float32"],
  [8, "float64"],
  [12, "bool"],
  [13, "bfloat16"],
]);

export const MEMORY_FORMATS: ReadonlyMap<number, string> = new Map([
  [0, "unknown"],
  [1, "contiguous_format"],
  [2, "channels_last"],
  [3, "channels_last_3d"],
  [4, "preserve_format"],
]);

export const LAYOUTS: ReadonlyMap<number, string> = new Map([[7, "strided"]]);

/** Schema majors this reader understands. */
export const SUPPORTED_SCHEMA_MAJORS: readonly number[] = [8];

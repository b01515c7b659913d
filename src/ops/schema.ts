import { TorchcError } from "../errors.js";
import type { DType } from "../ir/dtype.js";
import { C10_SCALAR_TYPES } from "../ir/dtype.js";
import type { Arg, TensorType } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import type { ArgSpec, OpDef, SchemaType, TypeOf, ValueOf } from "./types.js";

/** An argument record that does not fit the op's schema. */
export class OpArgError extends TorchcError {
  constructor(
    readonly op: string,
    readonly arg: string,
    detail: string,
  ) {
    super(`${op}: argument '${arg}': ${detail}`, "op.args");
    this.name = "OpArgError";
  }
}

/** A Python number passed where PyTorch accepts a Scalar (or a number in place of a Tensor). */
export interface ScalarValue {
  readonly value: number;
  readonly type: "int" | "float" | "bool";
}

/** A tensor operand of an elementwise op: a value name, or a number that PyTorch wraps into a 0-d tensor. */
export type Operand = string | ScalarValue;

export function isScalarOperand(o: Operand): o is ScalarValue {
  return typeof o !== "string";
}

const TYPES: ReadonlySet<string> = new Set<SchemaType>([
  "Tensor",
  "Tensor?",
  "Tensor[]",
  "Tensor?[]",
  "int",
  "int?",
  "int[]",
  "int[]?",
  "float",
  "float?",
  "float[]",
  "float[]?",
  "bool",
  "bool?",
  "bool[]",
  "Scalar",
  "Scalar?",
  "str",
  "str?",
  "ScalarType",
  "ScalarType?",
  "Layout?",
  "Device",
  "Device?",
  "MemoryFormat",
  "MemoryFormat?",
]);

function splitTop(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = "";
  let cur = "";
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = "";
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "[" || ch === "(") depth++;
    else if (ch === "]" || ch === ")") depth--;
    else if (ch === "," && depth === 0) {
      parts.push(cur.trim());
      cur = "";
      continue;
    }
    cur += ch;
  }
  if (cur.trim()) parts.push(cur.trim());
  return parts;
}

const MEMORY_FORMATS = ["contiguous_format", "preserve_format", "channels_last", "channels_last_3d"];

function parseDefault(
  op: string,
  name: string,
  type: SchemaType,
  size: number | undefined,
  text: string,
): Arg {
  if (text === "None") return { kind: "none" };
  const base = type.replace("?", "");
  if (base === "str") return { kind: "string", value: text.replace(/^["']|["']$/g, "") };
  if (base === "MemoryFormat") {
    const i = Number(text);
    return { kind: "memoryFormat", value: Number.isInteger(i) ? (MEMORY_FORMATS[i] ?? text) : text };
  }
  if (base.endsWith("[]")) {
    const items = text.startsWith("[")
      ? splitTop(text.slice(1, -1))
      : Array.from({ length: size ?? 1 }, () => text);
    if (base === "int[]") return { kind: "ints", value: items.map(Number) };
    if (base === "float[]") return { kind: "floats", value: items.map(Number) };
    if (base === "bool[]") return { kind: "bools", value: items.map((s) => s === "True") };
  }
  if (text === "True" || text === "False") return { kind: "bool", value: text === "True" };
  const n = Number(text);
  if (Number.isNaN(n)) throw new Error(`${op}: cannot read default '${text}' of '${name}'`);
  if (base === "float") return { kind: "float", value: n };
  if (base === "int") return { kind: "int", value: n };
  // Scalar: PyTorch keeps the Python literal's type.
  return /^-?\d+$/.test(text) ? { kind: "int", value: n } : { kind: "float", value: n };
}

/** Parses the argument list of a PyTorch schema string (`Tensor self, int[2] stride=1, *, bool k=False`). */
export function parseSchema(op: string, text: string): ArgSpec[] {
  const specs: ArgSpec[] = [];
  let kwargOnly = false;
  for (const part of splitTop(text)) {
    if (part === "*") {
      kwargOnly = true;
      continue;
    }
    // Alias annotations (`Tensor(a!)`, `Tensor(a -> *)`) say nothing about values.
    const m = /^(\S+)\s+(\w+)(?:=(.*))?$/.exec(part.replace(/\([^)]*\)/g, ""));
    if (!m) throw new Error(`${op}: cannot read schema argument '${part}'`);
    let raw = m[1].replace(/^SymInt/, "int");
    let size: number | undefined;
    const sized = /\[(\d+)\]/.exec(raw);
    if (sized) {
      size = Number(sized[1]);
      raw = raw.replace(/\[\d+\]/, "[]");
    }
    if (!TYPES.has(raw)) throw new Error(`${op}: unknown schema type '${m[1]}' of '${m[2]}'`);
    const type = raw as SchemaType;
    const spec: ArgSpec = {
      name: m[2],
      type,
      ...(m[3] !== undefined ? { default: parseDefault(op, m[2], type, size, m[3].trim()) } : {}),
      ...(kwargOnly ? { kwargOnly } : {}),
      ...(size !== undefined ? { size } : {}),
    };
    specs.push(spec);
  }
  return specs;
}

const SCALAR_TYPE_CODES = C10_SCALAR_TYPES;

/** Reads one op's argument record against its schema: defaults applied, kinds checked, errors name the argument. */
const SPEC_MAPS = new WeakMap<readonly ArgSpec[], ReadonlyMap<string, ArgSpec>>();

export class ArgReader {
  private readonly specs: ReadonlyMap<string, ArgSpec>;

  constructor(
    readonly op: string,
    schema: readonly ArgSpec[],
    readonly args: Readonly<Record<string, Arg>>,
  ) {
    // One Map per schema, not per parse (models are loaded node by node through here).
    let specs = SPEC_MAPS.get(schema);
    if (!specs) {
      specs = new Map(schema.map((s) => [s.name, s]));
      SPEC_MAPS.set(schema, specs);
    }
    this.specs = specs;
    for (const k of Object.keys(args))
      if (!this.specs.has(k)) throw new OpArgError(op, k, "not in the schema");
  }

  fail(name: string, detail: string): never {
    throw new OpArgError(this.op, name, detail);
  }

  private get(name: string): Arg {
    const a = this.args[name];
    if (a !== undefined) return a;
    const spec = this.specs.get(name);
    if (!spec) throw new Error(`${this.op}: reader asked for '${name}', which the schema lacks`);
    if (spec.default === undefined) this.fail(name, "required but missing");
    return spec.default;
  }

  private bad(name: string, a: Arg, want: string): never {
    return this.fail(
      name,
      `expected ${want}, got ${a.kind}${"value" in a ? ` ${JSON.stringify(a.value)}` : ""}`,
    );
  }

  has(name: string): boolean {
    const a = this.args[name] ?? this.specs.get(name)?.default;
    return a !== undefined && a.kind !== "none";
  }

  tensor(name: string): string {
    const a = this.get(name);
    if (a.kind === "tensor") return a.name;
    return this.bad(name, a, "a tensor");
  }

  optTensor(name: string): string | null {
    const a = this.get(name);
    if (a.kind === "none") return null;
    if (a.kind === "tensor") return a.name;
    return this.bad(name, a, "a tensor or None");
  }

  tensors(name: string): string[] {
    const a = this.get(name);
    if (a.kind === "tensors") {
      if (a.names.some((n) => n === null)) this.fail(name, "None in a tensor list");
      return a.names as string[];
    }
    if (a.kind === "tensor") return [a.name];
    return this.bad(name, a, "a tensor list");
  }

  optTensors(name: string): (string | null)[] {
    const a = this.get(name);
    if (a.kind === "tensors") return [...a.names];
    return this.bad(name, a, "a tensor list");
  }

  /** A Tensor argument that FX graphs may also fill with a plain number (`add.Tensor(x, 3)`). */
  operand(name: string): Operand {
    const a = this.get(name);
    if (a.kind === "tensor") return a.name;
    if (a.kind === "int" || a.kind === "float" || a.kind === "bool") return this.scalarOf(name, a);
    return this.bad(name, a, "a tensor or a number");
  }

  optOperand(name: string): Operand | null {
    return this.get(name).kind === "none" ? null : this.operand(name);
  }

  private scalarOf(name: string, a: Arg): ScalarValue {
    if (a.kind === "int") return { value: a.value, type: "int" };
    if (a.kind === "float") return { value: Number(a.value), type: "float" };
    if (a.kind === "bool") return { value: a.value ? 1 : 0, type: "bool" };
    return this.bad(name, a, "a number");
  }

  scalar(name: string): ScalarValue {
    return this.scalarOf(name, this.get(name));
  }

  optScalar(name: string): ScalarValue | null {
    const a = this.get(name);
    return a.kind === "none" ? null : this.scalarOf(name, a);
  }

  int(name: string): number {
    const a = this.get(name);
    if (a.kind === "int") return a.value;
    if (a.kind === "bool") return a.value ? 1 : 0;
    if (a.kind === "ints" && a.value.length === 1) return a.value[0];
    return this.bad(name, a, "an int");
  }

  optInt(name: string): number | null {
    return this.get(name).kind === "none" ? null : this.int(name);
  }

  ints(name: string): number[] {
    const a = this.get(name);
    if (a.kind === "ints") return [...a.value];
    if (a.kind === "int") return Array.from({ length: this.specs.get(name)?.size ?? 1 }, () => a.value);
    if (a.kind === "tensors" && a.names.length === 0) return [];
    return this.bad(name, a, "an int list");
  }

  optInts(name: string): number[] | null {
    return this.get(name).kind === "none" ? null : this.ints(name);
  }

  float(name: string): number {
    const a = this.get(name);
    if (a.kind === "float" || a.kind === "int") return Number(a.value);
    return this.bad(name, a, "a float");
  }

  optFloat(name: string): number | null {
    return this.get(name).kind === "none" ? null : this.float(name);
  }

  floats(name: string): number[] {
    const a = this.get(name);
    if (a.kind === "floats" || a.kind === "ints") return a.value.map(Number);
    if (a.kind === "float" || a.kind === "int")
      return Array.from({ length: this.specs.get(name)?.size ?? 1 }, () => a.value);
    return this.bad(name, a, "a float list");
  }

  optFloats(name: string): number[] | null {
    return this.get(name).kind === "none" ? null : this.floats(name);
  }

  bool(name: string): boolean {
    const a = this.get(name);
    if (a.kind === "bool") return a.value;
    if (a.kind === "int" && (a.value === 0 || a.value === 1)) return a.value === 1;
    return this.bad(name, a, "a bool");
  }

  optBool(name: string): boolean | null {
    return this.get(name).kind === "none" ? null : this.bool(name);
  }

  str(name: string): string {
    const a = this.get(name);
    if (a.kind === "string") return a.value;
    return this.bad(name, a, "a string");
  }

  optStr(name: string): string | null {
    return this.get(name).kind === "none" ? null : this.str(name);
  }

  /** ScalarType: a dtype, or TorchScript's integer code for one. */
  optDtype(name: string): DType | null {
    const a = this.get(name);
    if (a.kind === "none") return null;
    if (a.kind === "dtype") return a.value;
    if (a.kind === "int" && SCALAR_TYPE_CODES[a.value]) return SCALAR_TYPE_CODES[a.value];
    return this.bad(name, a, "a dtype");
  }

  dtype(name: string): DType {
    return this.optDtype(name) ?? this.fail(name, "required dtype is None");
  }

  /** Layout, Device, MemoryFormat, pin_memory and the like: checked for presence only, value unused. */
  ignored(_name: string): void {}
}

export interface OpSpec<N extends string, A> {
  readonly name: N;
  /** The argument list exactly as in PyTorch's schema string. */
  readonly schema: string;
  readonly returns?: number | "list";
  read(r: ArgReader): A;
  infer(args: A, typeOf: TypeOf): TensorType[];
  evaluate(args: A, valueAt: ValueOf): Tensor[];
}

export type NamedOpDef<N extends string, A> = OpDef<A> & { readonly name: N };

export function defineOp<const N extends string, A>(spec: OpSpec<N, A>): NamedOpDef<N, A> {
  const schema = Object.freeze(parseSchema(spec.name, spec.schema));
  return Object.freeze({
    name: spec.name,
    schema,
    returns: spec.returns ?? 1,
    parse: (args: Readonly<Record<string, Arg>>) => spec.read(new ArgReader(spec.name, schema, args)),
    infer: spec.infer,
    evaluate: spec.evaluate,
  });
}

// biome-ignore lint/suspicious/noExplicitAny: a table holds ops of every argument type
type AnyOp = NamedOpDef<string, any>;

/** Turns a list of op definitions into a table keyed by their literal names. */
export function opTable<const D extends readonly AnyOp[]>(
  ...defs: D
): { readonly [K in D[number]["name"]]: Extract<D[number], { name: K }> } {
  const table: Record<string, AnyOp> = {};
  for (const d of defs) {
    if (d.name in table) throw new Error(`op '${d.name}' defined twice`);
    table[d.name] = d;
  }
  return Object.freeze(table) as never;
}

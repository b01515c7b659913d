/**
 * Python values as the pickle machine rebuilds them. Python ints are JS numbers (bigint beyond 2^53), floats are
 * wrapped in PyFloat so int/float stay distinct (TorchScript cares), lists are plain arrays, tuples, dicts and
 * sets have classes. Allow-listed globals may return their own objects (tensors, storages, devices), which
 * implement PyExtension.
 */
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyFloat
  | PyValue[]
  | PyTuple
  | PyDict
  | PySet
  | PyObject
  | PyGlobal
  | PyExtension;

/** An object built by an allow-listed global (a tensor, a storage, a device…). */
export interface PyExtension {
  readonly pyKind: string;
  /** Receives the state of a BUILD opcode; absent means BUILD is refused. */
  setState?(state: PyValue): void;
}

export class PyFloat {
  constructor(readonly value: number) {}
}

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export class PySet {
  constructor(
    readonly items: PyValue[] = [],
    readonly frozen = false,
  ) {}
}

/** A dict; primitive keys compare by value, float keys by their number. */
export class PyDict {
  private readonly map = new Map<unknown, { key: PyValue; value: PyValue }>();

  set(key: PyValue, value: PyValue): void {
    this.map.set(dictKey(key), { key, value });
  }

  get(key: PyValue): PyValue | undefined {
    return this.map.get(dictKey(key))?.value;
  }

  has(key: PyValue): boolean {
    return this.map.has(dictKey(key));
  }

  get size(): number {
    return this.map.size;
  }

  keys(): PyValue[] {
    return [...this.map.values()].map((e) => e.key);
  }

  entries(): [PyValue, PyValue][] {
    return [...this.map.values()].map((e) => [e.key, e.value]);
  }
}

function dictKey(key: PyValue): unknown {
  if (key instanceof PyFloat) return Number.isInteger(key.value) ? key.value : `float:${key.value}`;
  if (key instanceof PyTuple) return `tuple:${JSON.stringify(key.items.map((k) => String(dictKey(k))))}`;
  return key;
}

/** A reference to a global the allow-list knows (pushed by GLOBAL / STACK_GLOBAL). */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An instance of a data-only class (a TorchScript `__torch__.*` class): its constructor arguments and state. */
export class PyObject {
  state: PyValue | undefined = undefined;
  constructor(
    readonly module: string,
    readonly name: string,
    readonly args: readonly PyValue[] = [],
  ) {}

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }

  /** Attribute `name` of the state dict (the object's `__dict__`), if the state is a dict. */
  attr(name: string): PyValue | undefined {
    const s = this.state;
    if (s instanceof PyDict) return s.get(name);
    if (s instanceof PyTuple && s.items[0] instanceof PyDict) return s.items[0].get(name);
    return undefined;
  }
}

export function isExtension(v: PyValue | undefined, kind?: string): v is PyExtension {
  return (
    typeof v === "object" &&
    v !== null &&
    "pyKind" in v &&
    typeof (v as PyExtension).pyKind === "string" &&
    (kind === undefined || (v as PyExtension).pyKind === kind)
  );
}

/** Python's type name for messages. */
export function pyTypeName(v: PyValue | undefined): string {
  if (v === undefined) return "nothing";
  if (v === null) return "None";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number" || typeof v === "bigint") return "int";
  if (typeof v === "string") return "str";
  if (v instanceof Uint8Array) return "bytes";
  if (v instanceof PyFloat) return "float";
  if (Array.isArray(v)) return "list";
  if (v instanceof PyTuple) return "tuple";
  if (v instanceof PyDict) return "dict";
  if (v instanceof PySet) return v.frozen ? "frozenset" : "set";
  if (v instanceof PyObject) return v.qualifiedName;
  if (v instanceof PyGlobal) return `global ${v.qualifiedName}`;
  return (v as PyExtension).pyKind;
}

/** A Python int as a JS number (throws on bigints beyond 2^53). */
export function asInt(v: PyValue | undefined, what: string): number {
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER))
    return Number(v);
  if (typeof v === "boolean") return v ? 1 : 0;
  throw new TypeError(`${what}: expected an int, found ${pyTypeName(v)}`);
}

export function asIntTuple(v: PyValue | undefined, what: string): number[] {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : undefined;
  if (!items) throw new TypeError(`${what}: expected a tuple of ints, found ${pyTypeName(v)}`);
  return items.map((x, i) => asInt(x, `${what}[${i}]`));
}

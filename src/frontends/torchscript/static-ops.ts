import { numel, toFloat64Array } from "../../ir/tensor.js";
import { checkInt, checkListLength } from "./budget.js";
import {
  bool,
  describe,
  FALSE,
  float,
  int,
  isNumber,
  NONE,
  numberOf,
  sameVal,
  scalarTypeCode,
  str,
  TRUE,
  type Val,
} from "./values.js";

/** A Python-level error (wrong types, an exception the model raises); the interpreter adds the location. */
export class StaticError extends Error {}

/** `ops.prim.RaiseException` reached: the model itself raised. */
export class ModelRaise extends Error {}

type StaticFn = (args: Val[], kwargs: ReadonlyMap<string, Val>) => Val | undefined;

const isInt = (v: Val) => v.k === "int" || v.k === "bool";
const num = (v: Val) => numberOf(v);

function arith(op: string, a: Val, b: Val): Val | undefined {
  if (!isNumber(a) || !isNumber(b)) return undefined;
  const x = num(a);
  const y = num(b);
  const ints = isInt(a) && isInt(b);
  switch (op) {
    case "add":
      return ints ? int(x + y) : float(x + y);
    case "sub":
      return ints ? int(x - y) : float(x - y);
    case "mul":
      return ints ? int(x * y) : float(x * y);
    case "div":
      if (y === 0) throw new StaticError("division by zero");
      return float(x / y);
    case "floordiv":
    case "floor_divide":
      if (y === 0) throw new StaticError("integer division by zero");
      return ints ? int(Math.floor(x / y)) : float(Math.floor(x / y));
    case "remainder":
    case "fmod": {
      if (y === 0) throw new StaticError("modulo by zero");
      const r = op === "fmod" ? x % y : x - y * Math.floor(x / y);
      return ints ? int(r) : float(r);
    }
    case "pow":
      return ints && y >= 0 ? int(x ** y) : float(x ** y);
    case "min":
      return ints ? int(Math.min(x, y)) : float(Math.min(x, y));
    case "max":
      return ints ? int(Math.max(x, y)) : float(Math.max(x, y));
    case "__and__":
    case "bitwise_and":
      return a.k === "bool" && b.k === "bool" ? bool(a.v && b.v) : int(x & y);
    case "__or__":
    case "bitwise_or":
      return a.k === "bool" && b.k === "bool" ? bool(a.v || b.v) : int(x | y);
    case "__xor__":
    case "bitwise_xor":
      return a.k === "bool" && b.k === "bool" ? bool(a.v !== b.v) : int(x ^ y);
    case "__lshift__":
      return int(x * 2 ** y);
    case "__rshift__":
      return int(Math.floor(x / 2 ** y));
  }
  return undefined;
}

function compare(op: string, a: Val, b: Val): Val | undefined {
  if (isNumber(a) && isNumber(b)) {
    const x = num(a);
    const y = num(b);
    const r = { eq: x === y, ne: x !== y, lt: x < y, le: x <= y, gt: x > y, ge: x >= y }[op];
    return r === undefined ? undefined : bool(r);
  }
  if (a.k === "str" && b.k === "str") {
    const r = {
      eq: a.v === b.v,
      ne: a.v !== b.v,
      lt: a.v < b.v,
      le: a.v <= b.v,
      gt: a.v > b.v,
      ge: a.v >= b.v,
    }[op];
    return r === undefined ? undefined : bool(r);
  }
  if (a.k === "tensor" || b.k === "tensor" || a.k === "dyn" || b.k === "dyn") return undefined;
  if (op === "eq") return bool(sameVal(a, b));
  if (op === "ne") return bool(!sameVal(a, b));
  return undefined;
}

const UNARY_MATH: Record<string, (x: number) => number> = {
  floor: Math.floor,
  ceil: Math.ceil,
  sqrt: Math.sqrt,
  exp: Math.exp,
  log: Math.log,
  log2: Math.log2,
  log10: Math.log10,
  sin: Math.sin,
  cos: Math.cos,
  tan: Math.tan,
  tanh: Math.tanh,
  atan: Math.atan,
  trunc: Math.trunc,
};

function seq(v: Val): Val[] | undefined {
  if (v.k === "list" || v.k === "tuple") return [...v.items];
  return undefined;
}

function normIndex(i: number, n: number): number {
  const j = i < 0 ? i + n : i;
  if (j < 0 || j >= n) throw new StaticError(`index ${i} is out of range for length ${n}`);
  return j;
}

/** Python slicing bounds (start/end may be None, negative or beyond the length). */
export function sliceBounds(
  n: number,
  start: Val | undefined,
  end: Val | undefined,
  step: Val | undefined,
): number[] {
  const s = step && step.k !== "none" ? num(step) : 1;
  if (s === 0) throw new StaticError("slice step cannot be zero");
  const clamp = (v: Val | undefined, dflt: number): number => {
    if (!v || v.k === "none") return dflt;
    let x = num(v);
    if (x < 0) x += n;
    return s > 0 ? Math.min(Math.max(x, 0), n) : Math.min(Math.max(x, -1), n - 1);
  };
  const lo = clamp(start, s > 0 ? 0 : n - 1);
  const hi = clamp(end, s > 0 ? n : -1);
  const out: number[] = [];
  for (let i = lo; s > 0 ? i < hi : i > hi; i += s) out.push(i);
  return out;
}

/** `str.format` for the `{}` / `{0}` fields the TorchScript printer emits. */
function format(fmt: string, args: Val[]): string {
  let auto = 0;
  return fmt.replace(/\{(\d*)\}/g, (_, i: string) => {
    const v = args[i === "" ? auto++ : Number(i)];
    return v === undefined ? "" : pyStr(v);
  });
}

export function pyStr(v: Val): string {
  switch (v.k) {
    case "str":
      return v.v;
    case "int":
      return String(v.v);
    case "float":
      return Number.isInteger(v.v) ? `${v.v}.0` : String(v.v);
    case "bool":
      return v.v ? "True" : "False";
    case "none":
      return "None";
    case "list":
      return `[${v.items.map(pyRepr).join(", ")}]`;
    case "tuple":
      return `(${v.items.map(pyRepr).join(", ")}${v.items.length === 1 ? "," : ""})`;
    default:
      return describe(v);
  }
}

function pyRepr(v: Val): string {
  return v.k === "str" ? `'${v.v}'` : pyStr(v);
}

function truthy(v: Val): boolean | undefined {
  switch (v.k) {
    case "none":
      return false;
    case "bool":
      return v.v;
    case "int":
    case "float":
      return v.v !== 0;
    case "str":
      return v.v.length > 0;
    case "list":
    case "tuple":
      return v.items.length > 0;
    case "dict":
      return v.entries.length > 0;
    case "tensor":
      if (v.box.known && numel(v.box.known.shape) === 1) return toFloat64Array(v.box.known)[0] !== 0;
      return undefined;
    case "object":
    case "device":
    case "func":
    case "method":
    case "class":
      return true;
    default:
      return undefined;
  }
}

export { truthy };

/** A known tensor of one element as a Python number (aten::Int, aten::Float, ScalarImplicit). */
export function knownScalar(v: Val, as?: "int" | "float" | "bool"): Val | undefined {
  if (v.k !== "tensor" || !v.box.known || numel(v.box.known.shape) !== 1) return undefined;
  const x = toFloat64Array(v.box.known)[0];
  const d = v.box.known.dtype;
  const kind = as ?? (d === "bool" ? "bool" : d.startsWith("float") || d === "bfloat16" ? "float" : "int");
  return kind === "bool" ? bool(x !== 0) : kind === "int" ? int(Math.trunc(x)) : float(x);
}

function tensorType(v: Val) {
  return v.k === "tensor" || v.k === "dyn" ? v.box.type : undefined;
}

const TABLE: Record<string, StaticFn> = {};
for (const op of [
  "add",
  "sub",
  "mul",
  "div",
  "floordiv",
  "floor_divide",
  "remainder",
  "fmod",
  "pow",
  "__and__",
  "__or__",
  "__xor__",
  "__lshift__",
  "__rshift__",
  "bitwise_and",
  "bitwise_or",
  "bitwise_xor",
]) {
  TABLE[op] = ([a, b]) => {
    if (!a || !b) return undefined;
    if (op === "add") {
      if (a.k === "str" && b.k === "str") return str(a.v + b.v);
      if ((a.k === "list" && b.k === "list") || (a.k === "tuple" && b.k === "tuple"))
        checkListLength(a.items.length + b.items.length);
      if (a.k === "list" && b.k === "list") return { k: "list", items: [...a.items, ...b.items] };
      if (a.k === "tuple" && b.k === "tuple") return { k: "tuple", items: [...a.items, ...b.items] };
    }
    if (op === "mul" && (a.k === "list" || a.k === "tuple") && b.k === "int") {
      checkListLength(a.items.length * Math.max(0, b.v));
      const items = Array.from({ length: Math.max(0, b.v) }, () => a.items).flat();
      return a.k === "list" ? { k: "list", items } : { k: "tuple", items };
    }
    const r = arith(op, a, b);
    if (r?.k === "int") checkInt(r.v);
    return r;
  };
}
for (const op of ["eq", "ne", "lt", "le", "gt", "ge"])
  TABLE[op] = ([a, b]) => (a && b ? compare(op, a, b) : undefined);
for (const [op, f] of Object.entries(UNARY_MATH)) {
  TABLE[op] = ([a]) => {
    if (!a || !isNumber(a)) return undefined;
    const r = f(num(a));
    return ["floor", "ceil", "trunc"].includes(op) ? int(r) : float(r);
  };
}
Object.assign(TABLE, {
  neg: ([a]) => (a && isNumber(a) ? (isInt(a) ? int(-num(a)) : float(-num(a))) : undefined),
  abs: ([a]) => (a && isNumber(a) ? (isInt(a) ? int(Math.abs(num(a))) : float(Math.abs(num(a)))) : undefined),
  __not__: ([a]) => {
    const t = a && truthy(a);
    return t === undefined ? undefined : bool(!t);
  },
  __is__: ([a, b]) => {
    if (!a || !b) return undefined;
    if (a.k === "tensor" || b.k === "tensor")
      return bool(a.k === "tensor" && b.k === "tensor" && a.box === b.box);
    return bool(a.k === b.k && sameVal(a, b));
  },
  __isnot__: ([a, b]) => {
    const r = TABLE.__is__([a, b], new Map());
    return r && bool(!(r as { v: boolean }).v);
  },
  __contains__: ([container, x]) => {
    if (!container || !x) return undefined;
    if (container.k === "str" && x.k === "str") return bool(container.v.includes(x.v));
    if (container.k === "dict") return bool(container.entries.some(([k]) => sameVal(k, x)));
    const s = seq(container);
    return s ? bool(s.some((e) => sameVal(e, x))) : undefined;
  },
  len: ([a]) => {
    if (!a) return undefined;
    if (a.k === "str") return int(a.v.length);
    if (a.k === "dict") return int(a.entries.length);
    const s = seq(a);
    if (s) return int(s.length);
    const t = tensorType(a);
    if (t) {
      if (t.shape.length === 0) throw new StaticError("len() of a 0-d tensor");
      return int(t.shape[0]);
    }
    return undefined;
  },
  list: ([a]) => {
    if (!a) return { k: "list", items: [] };
    const s = seq(a);
    if (s) return { k: "list", items: s };
    if (a.k === "str") return { k: "list", items: [...a.v].map(str) };
    return undefined;
  },
  append: ([l, x]) => {
    if (l?.k !== "list" || !x) return undefined;
    l.items.push(x);
    return l;
  },
  extend: ([l, x]) => {
    const s = x && seq(x);
    if (l?.k !== "list" || !s) return undefined;
    l.items.push(...s);
    return NONE;
  },
  insert: ([l, i, x]) => {
    if (l?.k !== "list" || i?.k !== "int" || !x) return undefined;
    const n = l.items.length;
    l.items.splice(Math.min(Math.max(i.v < 0 ? i.v + n : i.v, 0), n), 0, x);
    return NONE;
  },
  pop: ([l, i]) => {
    if (l?.k !== "list") return undefined;
    if (l.items.length === 0) throw new StaticError("pop from an empty list");
    const j = normIndex(i && i.k === "int" ? i.v : -1, l.items.length);
    return l.items.splice(j, 1)[0];
  },
  clear: ([l]) => {
    if (l?.k !== "list") return undefined;
    l.items.length = 0;
    return NONE;
  },
  reverse: ([l]) => {
    if (l?.k !== "list") return undefined;
    l.items.reverse();
    return NONE;
  },
  index: ([l, x]) => {
    const s = l && seq(l);
    if (!s || !x) return undefined;
    const i = s.findIndex((e) => sameVal(e, x));
    if (i < 0) throw new StaticError(`${describe(x)} is not in the list`);
    return int(i);
  },
  count: ([l, x]) => {
    const s = l && seq(l);
    return s && x ? int(s.filter((e) => sameVal(e, x)).length) : undefined;
  },
  sum: ([l]) => {
    const s = l && seq(l);
    if (!s?.every(isNumber)) return undefined;
    return s.reduce<Val>((acc, x) => arith("add", acc, x) as Val, int(0));
  },
  slice: ([l, start, end, step]) => {
    if (!l) return undefined;
    if (l.k === "str")
      return str(
        sliceBounds(l.v.length, start, end, step)
          .map((i) => l.v[i])
          .join(""),
      );
    const s = seq(l);
    if (!s || l.k !== "list") return undefined;
    return { k: "list", items: sliceBounds(s.length, start, end, step).map((i) => s[i]) };
  },
  __getitem__: ([c, i]) => {
    if (!c || !i) return undefined;
    if (c.k === "dict") {
      const e = c.entries.find(([k]) => sameVal(k, i));
      if (!e) throw new StaticError(`key ${describe(i)} is not in the dict`);
      return e[1];
    }
    if (c.k === "str" && i.k === "int") return str(c.v[normIndex(i.v, c.v.length)]);
    const s = seq(c);
    if (!s || i.k !== "int") return undefined;
    return s[normIndex(i.v, s.length)];
  },
  _set_item: ([l, i, x]) => {
    if (l?.k === "list" && i?.k === "int" && x) {
      l.items[normIndex(i.v, l.items.length)] = x;
      return l;
    }
    if (l?.k === "dict" && i && x) {
      const e = l.entries.find(([k]) => sameVal(k, i));
      if (e) e[1] = x;
      else l.entries.push([i, x]);
      return l;
    }
    return undefined;
  },
  keys: ([d]) => (d?.k === "dict" ? { k: "list", items: d.entries.map(([k]) => k) } : undefined),
  values: ([d]) => (d?.k === "dict" ? { k: "list", items: d.entries.map(([, v]) => v) } : undefined),
  items: ([d]) =>
    d?.k === "dict"
      ? { k: "list", items: d.entries.map(([k, v]) => ({ k: "tuple", items: [k, v] }) as Val) }
      : undefined,
  __range_length: ([lo, hi, step]) => {
    if (!lo || !hi || !step || !isNumber(lo) || !isNumber(hi) || !isNumber(step)) return undefined;
    const s = num(step);
    if (s === 0) throw new StaticError("range() step must not be zero");
    const n = s > 0 ? Math.ceil((num(hi) - num(lo)) / s) : Math.ceil((num(lo) - num(hi)) / -s);
    return int(Math.max(0, n));
  },
  __derive_index: ([index, start, step]) => {
    if (!index || !start || !step || !isNumber(index) || !isNumber(start) || !isNumber(step))
      return undefined;
    return int(num(start) + num(index) * num(step));
  },
  format: ([fmt, ...rest]) => (fmt?.k === "str" ? str(format(fmt.v, rest)) : undefined),
  str: ([a]) => (a ? str(pyStr(a)) : undefined),
  warn: () => NONE,
  dim: ([t]) => {
    const ty = t && tensorType(t);
    return ty ? int(ty.shape.length) : undefined;
  },
  numel: ([t]) => {
    const ty = t && tensorType(t);
    return ty ? int(numel(ty.shape)) : undefined;
  },
  size: ([t, d]) => {
    const ty = t && tensorType(t);
    if (!ty) return undefined;
    if (!d || d.k === "none") return { k: "list", items: ty.shape.map(int) };
    if (d.k !== "int") return undefined;
    return int(ty.shape[normIndex(d.v, ty.shape.length)]);
  },
  is_floating_point: ([t]) => {
    const ty = t && tensorType(t);
    return ty ? bool(["float32", "float16", "bfloat16", "float64"].includes(ty.dtype)) : undefined;
  },
  Int: ([a]) => (a && isNumber(a) ? int(Math.trunc(num(a))) : a ? knownScalar(a, "int") : undefined),
  Float: ([a]) =>
    a && isNumber(a)
      ? float(num(a))
      : a?.k === "str"
        ? float(Number(a.v))
        : a
          ? knownScalar(a, "float")
          : undefined,
  Bool: ([a]) => (a && isNumber(a) ? bool(num(a) !== 0) : a ? knownScalar(a, "bool") : undefined),
  ScalarImplicit: ([a]) => (a ? knownScalar(a) : undefined),
  FloatImplicit: ([a]) => (a ? knownScalar(a, "float") : undefined),
  IntImplicit: ([a]) => (a ? knownScalar(a, "int") : undefined),
  item: ([a]) => (a ? knownScalar(a) : undefined),
} satisfies Record<string, StaticFn>);

const PRIM: Record<string, StaticFn> = {
  dtype: ([t]) => {
    const ty = t && tensorType(t);
    return ty ? int(scalarTypeCode(ty.dtype)) : undefined;
  },
  device: ([t]) => (t && tensorType(t) ? { k: "device", v: "cpu" } : undefined),
  layout: ([t]) => (t && tensorType(t) ? int(0) : undefined),
  is_cuda: ([t]) => (t && tensorType(t) ? FALSE : undefined),
  is_quantized: ([t]) => (t && tensorType(t) ? FALSE : undefined),
  is_meta: ([t]) => (t && tensorType(t) ? FALSE : undefined),
  requires_grad: ([t]) => (t && tensorType(t) ? FALSE : undefined),
  shape: ([t]) => TABLE.size([t], new Map()),
  data: ([t]) => t,
  unchecked_unwrap_optional: ([t]) => t,
  min: (args) => minMax("min", args),
  max: (args) => minMax("max", args),
  abs: (args, kw) => TABLE.abs(args, kw),
  RaiseException: ([msg, cls]) => {
    const kind = cls?.k === "str" ? cls.v.replace(/^builtins\./, "") : "Exception";
    throw new ModelRaise(`${kind}: ${msg?.k === "str" ? msg.v : msg ? pyStr(msg) : ""}`);
  },
};

function minMax(op: "min" | "max", args: Val[]): Val | undefined {
  const items = args.length === 1 ? args[0] && seq(args[0]) : args;
  if (!items || items.length === 0 || !items.every(isNumber)) return undefined;
  let acc: Val = items[0];
  for (const x of items.slice(1)) acc = arith(op, acc, x) as Val;
  return acc;
}

/**
 * Evaluates an operator on values known at compile time (numbers, strings, lists, shapes of tensors).
 * Returns undefined when the operator needs the graph (a tensor operand), so the caller emits a node.
 */
export function evalStatic(
  ns: string,
  name: string,
  args: Val[],
  kwargs: ReadonlyMap<string, Val>,
): Val | undefined {
  const fn = ns === "prim" ? (PRIM[name] ?? TABLE[name]) : ns === "aten" ? TABLE[name] : undefined;
  if (!fn) return undefined;
  if (name === "div" && kwargs.has("rounding_mode")) {
    const mode = kwargs.get("rounding_mode");
    const [a, b] = args;
    if (!a || !b || !isNumber(a) || !isNumber(b)) return undefined;
    if (mode?.k === "none") return arith("div", a, b);
    if (mode?.k === "str" && mode.v === "floor") return arith("floordiv", a, b);
    if (mode?.k === "str" && mode.v === "trunc") {
      const q = arith("div", a, b) as Val;
      return isInt(a) && isInt(b) ? int(Math.trunc(numberOf(q))) : float(Math.trunc(numberOf(q)));
    }
    return undefined;
  }
  if (kwargs.size > 0 && !["format"].includes(name)) return undefined;
  return fn(args, kwargs);
}

export { FALSE, TRUE };

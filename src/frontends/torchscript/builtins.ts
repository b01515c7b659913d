import type { Expr, Pos } from "./ast.js";
import { rangeValues } from "./budget.js";
import type { Frame } from "./control.js";
import type { Interpreter } from "./interp.js";
import { pyStr, StaticError, truthy } from "./static-ops.js";
import { hasType, scalarKind, typeText } from "./types.js";
import { bool, describe, float, int, isNumber, NONE, numberOf, str, type Val } from "./values.js";

/** Names of Python builtins the serialized code may call. */
export const BUILTINS = new Set([
  "int",
  "float",
  "bool",
  "str",
  "len",
  "range",
  "print",
  "list",
  "tuple",
  "min",
  "max",
  "abs",
  "round",
  "sum",
  "hash",
  "divmod",
]);

/** Calls whose first argument is a type or that act on the caller's scope, evaluated from their syntax. */
export const SPECIAL_FORMS = new Set([
  "annotate",
  "unchecked_cast",
  "uninitialized",
  "isinstance",
  "getattr",
  "hasattr",
  "fork",
]);

/** `int(x)`, `float(x)`, `range(n)`, `len(x)` …: compile-time Python, or a conversion of a run-time tensor. */
export function callBuiltin(
  it: Interpreter,
  frame: Frame,
  pos: Pos,
  name: string,
  args: Val[],
  kwargs: ReadonlyMap<string, Val>,
  hint: string,
): Val {
  const [a] = args;
  switch (name) {
    case "int":
    case "float":
    case "bool": {
      if (!a) return name === "int" ? int(0) : name === "float" ? float(0) : bool(false);
      if (a.k === "tensor" || a.k === "dyn")
        return it.callOp(
          frame,
          pos,
          "aten",
          name === "int" ? "Int" : name === "float" ? "Float" : "Bool",
          [a],
          kwargs,
          hint,
        );
      if (name === "bool") {
        const t = truthy(a);
        if (t === undefined) throw new StaticError(`bool() of ${describe(a)}`);
        return bool(t);
      }
      if (a.k === "str") return name === "int" ? int(Number.parseInt(a.v, 10)) : float(Number(a.v));
      if (!isNumber(a)) throw new StaticError(`${name}() of ${describe(a)}`);
      return name === "int" ? int(Math.trunc(numberOf(a))) : float(numberOf(a));
    }
    case "str":
      return str(a ? pyStr(a) : "");
    case "print":
      return NONE;
    case "range": {
      const nums = args.map((x) => {
        if (x.k !== "int")
          throw new StaticError(`range() needs ints known at compile time, got ${describe(x)}`);
        return x.v;
      });
      const [lo, hi, step] = nums.length === 1 ? [0, nums[0], 1] : [nums[0], nums[1], nums[2] ?? 1];
      return { k: "list", items: rangeValues(lo, hi, step).map(int) };
    }
    case "tuple": {
      const l = it.callOp(frame, pos, "aten", "list", args, kwargs, hint);
      return l.k === "list" ? { k: "tuple", items: l.items } : l;
    }
    case "round":
      if (a && isNumber(a))
        return args[1]
          ? float(Math.round(numberOf(a) * 10 ** numberOf(args[1])) / 10 ** numberOf(args[1]))
          : int(roundHalfEven(numberOf(a)));
      return it.callOp(frame, pos, "aten", "round", args, kwargs, hint);
    default:
      return it.callOp(
        frame,
        pos,
        name === "len" || name === "list" || name === "sum" ? "aten" : "prim",
        name,
        args,
        kwargs,
        hint,
      );
  }
}

/** `annotate(T, x)`, `unchecked_cast(T, x)`, `uninitialized(T)`, `isinstance(x, T)`, `getattr(obj, "name")`. */
export function specialForm(
  it: Interpreter,
  name: string,
  e: Extract<Expr, { kind: "call" }>,
  frame: Frame,
  hint: string,
): Val {
  const [t, x] = e.args;
  switch (name) {
    case "annotate": {
      const v = it.evalExpr(x, frame, hint);
      const kind = scalarKind(t);
      if (kind && (v.k === "tensor" || v.k === "dyn"))
        return it.callOp(
          frame,
          e.pos,
          "aten",
          kind === "int" ? "IntImplicit" : kind === "float" ? "FloatImplicit" : "Bool",
          [v],
          new Map(),
          hint,
        );
      if (kind === "float" && v.k === "int") return float(v.v);
      return v;
    }
    case "unchecked_cast":
      return it.evalExpr(x, frame, hint);
    case "uninitialized":
      return { k: "uninit" };
    case "isinstance": {
      const v = it.evalExpr(t, frame);
      const r = hasType(v, x);
      if (r === undefined)
        it.fail(frame, e.pos, `cannot decide isinstance(${describe(v)}, ${typeText(x)}) at compile time`);
      return bool(r!);
    }
    case "getattr":
    case "hasattr": {
      const obj = it.evalExpr(t, frame);
      const attr = it.evalExpr(x, frame);
      if (attr.k !== "str") it.fail(frame, e.pos, `${name}() needs a constant attribute name`);
      const a = (attr as { v: string }).v;
      if (name === "hasattr")
        return bool(
          obj.k === "object" &&
            (obj.obj.py.attr(a) !== undefined || obj.obj.attrs.has(a) || obj.obj.cls.methods.has(a)),
        );
      return it.getAttr(frame, obj, a, e.pos);
    }
    default:
      return it.fail(frame, e.pos, `'${name}' (asynchronous execution) is not supported`);
  }
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

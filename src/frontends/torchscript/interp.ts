import { ArchiveError, TorchcError } from "../../errors.js";
import type { NodeMeta } from "../../ir/graph.js";
import type { TorchScriptArchive } from "./archive.js";
import type { Expr, FunctionDef, Pos, Stmt } from "./ast.js";
import { dottedName } from "./ast.js";
import { callAten, type EmitContext, OpError } from "./aten.js";
import { chargeStep, ScriptBudgetError } from "./budget.js";
import { BUILTINS, callBuiltin, SPECIAL_FORMS, specialForm } from "./builtins.js";
import { type Completion, ControlFlow, type Frame } from "./control.js";
import { DebugInfo } from "./debug-info.js";
import { dynScalarOp } from "./dyn-scalars.js";
import { TorchScriptError } from "./errors.js";
import { LOWERINGS, numToTensor } from "./lower.js";
import { ModuleData } from "./objects.js";
import type { Program } from "./program.js";
import { GraphState } from "./scope.js";
import { evalStatic, ModelRaise, pyStr, StaticError, truthy } from "./static-ops.js";
import { scalarKind } from "./types.js";
import { bool, describe, float, int, NONE, type ObjectVal, str, type Val } from "./values.js";

const BINARY_OPS: Record<string, string> = {
  "+": "add",
  "-": "sub",
  "*": "mul",
  "/": "div",
  "//": "floordiv",
  "%": "remainder",
  "**": "pow",
  "@": "matmul",
  "&": "__and__",
  "|": "__or__",
  "^": "__xor__",
  "<<": "__lshift__",
  ">>": "__rshift__",
};
const COMPARE_OPS: Record<string, string> = {
  "<": "lt",
  ">": "gt",
  "==": "eq",
  "!=": "ne",
  "<=": "le",
  ">=": "ge",
};
const MAX_DEPTH = 200;

/**
 * Runs the archive's TorchScript code abstractly: Python values are computed at compile time, tensor operations
 * become graph nodes, submodule calls are inlined, data-dependent control flow becomes prim.If / prim.Loop.
 */
export class Interpreter {
  readonly g = new GraphState();
  readonly control: ControlFlow;
  readonly data: ModuleData;
  private depth = 0;
  private readonly debug: DebugInfo;

  constructor(
    readonly archive: TorchScriptArchive,
    readonly program: Program,
  ) {
    this.control = new ControlFlow(this);
    this.debug = new DebugInfo(archive);
    this.data = new ModuleData(archive, program, this.g, (obj, state) => {
      const setstate = obj.cls.methods.get("__setstate__")!;
      this.callFunction(setstate, obj.cls.file, { k: "object", obj }, [state], new Map(), obj);
    });
  }

  // ---- errors ----

  fail(
    frame: Frame | undefined,
    pos: Pos | undefined,
    detail: string,
    code = "torchscript.unsupported",
  ): never {
    throw new TorchScriptError(
      this.archive.file,
      frame && pos ? { file: frame.file, ...pos } : undefined,
      detail,
      code,
    );
  }

  /** Adds the code location to errors raised while evaluating `fn` at `pos`. */
  located<T>(frame: Frame, pos: Pos, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof TorchScriptError || e instanceof ModelRaise || e instanceof ArchiveError) throw e;
      if (e instanceof OpError) this.fail(frame, pos, e.message, e.code);
      if (e instanceof StaticError) this.fail(frame, pos, e.message, "torchscript.value");
      if (e instanceof ScriptBudgetError) this.fail(frame, pos, e.message, "torchscript.budget");
      if (e instanceof TorchcError) this.fail(frame, pos, e.message, e.code);
      throw e;
    }
  }

  /** Node metadata: the user's source (from debug records) or else the code/ location, and the module path. */
  meta(frame: Frame, pos: Pos): NodeMeta {
    const original = this.debug.lookup(frame.file, pos.line, pos.col);
    const m: { sourceLocation: string; modulePath?: string; stackTrace?: string } = {
      sourceLocation: original?.location ?? `${frame.file}:${pos.line}:${pos.col} in ${frame.fn}`,
    };
    if (original?.stackTrace) m.stackTrace = original.stackTrace;
    if (frame.module?.fqn) m.modulePath = frame.module.fqn;
    return m;
  }

  getAttr(frame: Frame, v: Val, attr: string, pos: Pos): Val {
    switch (v.k) {
      case "object": {
        const obj = v.obj;
        const have = obj.attrs.get(attr);
        if (have) return have;
        const val = this.located(frame, pos, () => this.data.attribute(obj, attr));
        if (val !== undefined) {
          obj.attrs.set(attr, val);
          return val;
        }
        if (obj.cls.methods.has(attr)) return { k: "method", self: obj, name: attr };
        const c = obj.cls.constants.get(attr);
        if (c) return this.evalExpr(c, { ...frame, file: obj.cls.file, vars: new Map() });
        return this.fail(
          frame,
          pos,
          `object of class ${obj.cls.qualname} has no attribute '${attr}'`,
          "torchscript.value",
        );
      }
      case "ns": {
        if (v.path === "CONSTANTS") {
          const m = /^c(\d+)$/.exec(attr);
          const table = this.data.constants();
          if (!m || Number(m[1]) >= table.length)
            return this.fail(
              frame,
              pos,
              `CONSTANTS.${attr} is not in constants.pkl (it has ${table.length} entries)`,
              "torchscript.value",
            );
          return table[Number(m[1])];
        }
        if (v.path === "math") {
          const consts: Record<string, number> = {
            pi: Math.PI,
            e: Math.E,
            inf: Number.POSITIVE_INFINITY,
            nan: Number.NaN,
            tau: 2 * Math.PI,
          };
          if (attr in consts) return float(consts[attr]);
        }
        const path = `${v.path}.${attr}`;
        if (v.path.startsWith("__torch__")) {
          if (this.program.findClass(path)) return { k: "class", qualname: path };
          if (this.program.findFunction(path)) return { k: "func", qualname: path };
        }
        return { k: "ns", path };
      }
      case "tensor":
      case "dyn": {
        const ty = v.box.type;
        if (attr === "shape") return { k: "list", items: ty.shape.map(int) };
        if (attr === "dtype") return evalStatic("prim", "dtype", [v], new Map()) as Val;
        if (attr === "device") return { k: "device", v: "cpu" };
        if (attr === "is_cuda" || attr === "requires_grad") return bool(false);
        if (attr === "ndim") return int(ty.shape.length);
        return this.fail(frame, pos, `tensor attribute '.${attr}' is not supported`);
      }
      default:
        return this.fail(frame, pos, `${describe(v)} has no attribute '${attr}'`, "torchscript.value");
    }
  }

  private setAttr(frame: Frame, target: Val, attr: string, value: Val, pos: Pos): void {
    if (target.k !== "object")
      this.fail(frame, pos, `cannot set attribute '${attr}' on ${describe(target)}`, "torchscript.value");
    target.obj.attrs.set(attr, value);
  }

  // ---- calls ----

  callFunction(
    def: FunctionDef,
    file: string,
    self: Val | undefined,
    args: readonly Val[],
    kwargs: ReadonlyMap<string, Val>,
    module: ObjectVal | undefined,
    callPos?: { frame: Frame; pos: Pos },
  ): Val {
    if (++this.depth > MAX_DEPTH) {
      this.depth = 0;
      this.fail(
        callPos?.frame,
        callPos?.pos,
        `calls nest deeper than ${MAX_DEPTH} (recursion is not supported)`,
      );
    }
    try {
      const vars = new Map<string, Val>();
      const params = self ? def.params.slice(1) : def.params;
      if (self) vars.set(def.params[0]?.name ?? "self", self);
      const frame: Frame = { vars, file, fn: def.name, module };
      if (args.length > params.length) {
        this.fail(
          callPos?.frame,
          callPos?.pos,
          `${def.name}() takes ${params.length} arguments but ${args.length} were given`,
          "torchscript.value",
        );
      }
      params.forEach((p, i) => {
        let v = i < args.length ? args[i] : kwargs.get(p.name);
        if (v === undefined && p.default) v = this.evalExpr(p.default, { ...frame, vars: new Map() });
        if (v === undefined)
          this.fail(
            callPos?.frame,
            callPos?.pos,
            `${def.name}() is missing argument '${p.name}'`,
            "torchscript.value",
          );
        vars.set(p.name, v!);
      });
      for (const k of kwargs.keys()) {
        if (!params.some((p) => p.name === k))
          this.fail(
            callPos?.frame,
            callPos?.pos,
            `${def.name}() has no parameter '${k}'`,
            "torchscript.value",
          );
      }
      const c = this.execBlock(def.body, frame);
      return c.k === "return" ? c.value : NONE;
    } finally {
      this.depth--;
    }
  }

  /** An operator call `torch.X(...)` / `ops.ns.X(...)`: compile-time evaluation, a lowering, or an aten node. */
  callOp(
    frame: Frame,
    pos: Pos,
    ns: string,
    name: string,
    args: Val[],
    kwargs: ReadonlyMap<string, Val>,
    hint: string,
  ): Val {
    const self = ns === "aten" ? args[0] : undefined;
    if (self?.k === "object") {
      // len(module), module[i], x in module: the class's own dunder methods, or a container's attributes
      const dunder = name.startsWith("__") ? name : `__${name}__`;
      const method = self.obj.cls.methods.get(dunder);
      if (method)
        return this.callFunction(method, self.obj.cls.file, self, args.slice(1), kwargs, self.obj, {
          frame,
          pos,
        });
      const key = args[1];
      if (name === "__getitem__" && (key?.k === "int" || key?.k === "str"))
        return this.getAttr(frame, self, String(key.v), pos);
    }
    return this.located(frame, pos, () => {
      const cx: EmitContext = { g: this.g, meta: this.meta(frame, pos), hint };
      const s = evalStatic(ns, name, args, kwargs);
      if (s !== undefined) return s;
      const dyn = dynScalarOp(name, args, cx);
      if (dyn !== undefined) return dyn;
      const lower = LOWERINGS[`${ns}::${name}`];
      const l = lower?.(args, kwargs, cx);
      if (l !== undefined) return l;
      if (ns === "aten") return callAten(name, args, kwargs, cx);
      throw new OpError(`operator '${ns}::${name}' is not supported`, `${ns}::${name}`, "op.unsupported");
    });
  }

  private evalCall(e: Extract<Expr, { kind: "call" }>, frame: Frame, hint: string): Val {
    if (e.func.kind === "name" && SPECIAL_FORMS.has(e.func.id) && !frame.vars.has(e.func.id))
      return specialForm(this, e.func.id, e, frame, hint);
    const fn = this.evalExpr(e.func, frame);
    const args = e.args.map((a) => this.evalExpr(a, frame));
    const kwargs = new Map(e.kwargs.map((k) => [k.name, this.evalExpr(k.value, frame)] as const));
    switch (fn.k) {
      case "builtin":
        return this.located(frame, e.pos, () => callBuiltin(this, frame, e.pos, fn.name, args, kwargs, hint));
      case "ns": {
        const parts = fn.path.split(".");
        if (parts[0] === "torch" && parts.length === 2) {
          if (parts[1] === "device") return { k: "device", v: args[0]?.k === "str" ? args[0].v : "cpu" };
          return this.callOp(frame, e.pos, "aten", parts[1], args, kwargs, hint);
        }
        if (parts[0] === "ops" && parts.length === 3)
          return this.callOp(frame, e.pos, parts[1], parts[2], args, kwargs, hint);
        if (parts[0] === "math" && parts.length === 2)
          return this.callOp(frame, e.pos, "aten", parts[1], args, kwargs, hint);
        return this.fail(
          frame,
          e.pos,
          `'${fn.path}' is not a function torchc knows`,
          fn.path.startsWith("__torch__") ? "torchscript.missing-code" : "op.unsupported",
        );
      }
      case "func": {
        const f = this.program.findFunction(fn.qualname)!;
        return this.callFunction(f.def, f.file, undefined, args, kwargs, frame.module, { frame, pos: e.pos });
      }
      case "method": {
        const def = fn.self.cls.methods.get(fn.name)!;
        return this.callFunction(
          def,
          fn.self.cls.file,
          { k: "object", obj: fn.self },
          args,
          kwargs,
          fn.self,
          { frame, pos: e.pos },
        );
      }
      case "class": {
        // a NamedTuple constructor: `__torch__.Out(a, b)` builds the tuple; fields are read by index
        const cls = this.program.findClass(fn.qualname);
        const base = cls?.def.base && dottedName(cls.def.base)?.join(".");
        if (base !== "NamedTuple" || !cls)
          return this.fail(frame, e.pos, `constructing objects of class ${fn.qualname} is not supported`);
        const fields = [...cls.attributes.keys()];
        const items = fields.map((f, i) => args[i] ?? kwargs.get(f));
        if (items.some((x) => x === undefined))
          this.fail(frame, e.pos, `${fn.qualname}(...) needs ${fields.join(", ")}`, "torchscript.value");
        return { k: "tuple", items: items as Val[] };
      }
      default:
        return this.fail(frame, e.pos, `${describe(fn)} is not callable`, "torchscript.value");
    }
  }

  // ---- expressions ----

  evalExpr(e: Expr, frame: Frame, hint = ""): Val {
    switch (e.kind) {
      case "const":
        if (e.value === null) return NONE;
        if (typeof e.value === "boolean") return bool(e.value);
        if (typeof e.value === "string") return str(e.value);
        return e.isFloat ? float(e.value) : int(e.value);
      case "name":
        return this.lookup(e.id, frame, e.pos);
      case "attr":
        return this.getAttr(frame, this.evalExpr(e.value, frame), e.attr, e.pos);
      case "call":
        return this.evalCall(e, frame, hint || defaultHint(e));
      case "subscript": {
        const base = this.evalExpr(e.value, frame);
        if (e.index.length !== 1)
          return this.fail(frame, e.pos, "multi-dimensional subscripts are not supported");
        const idx = e.index[0];
        if (idx.kind === "slice") {
          const args = [
            base,
            ...[idx.lower, idx.upper, idx.step].map((x) => (x ? this.evalExpr(x, frame) : NONE)),
          ];
          if (base.k === "tuple") {
            const l = this.callOp(
              frame,
              e.pos,
              "aten",
              "slice",
              [{ k: "list", items: [...base.items] }, ...args.slice(1)],
              new Map(),
              hint,
            );
            return l.k === "list" ? { k: "tuple", items: l.items } : l;
          }
          return this.callOp(frame, e.pos, "aten", "slice", args, new Map(), hint);
        }
        const i = this.evalExpr(idx, frame);
        if ((base.k === "tensor" || base.k === "dyn") && i.k === "int")
          return this.callOp(frame, e.pos, "aten", "select", [base, int(0), i], new Map(), hint);
        return this.callOp(frame, e.pos, "aten", "__getitem__", [base, i], new Map(), hint);
      }
      case "slice":
        return this.fail(frame, e.pos, "a slice outside a subscript");
      case "list":
        return { k: "list", items: e.items.map((x) => this.evalExpr(x, frame)) };
      case "tuple":
        return { k: "tuple", items: e.items.map((x) => this.evalExpr(x, frame)) };
      case "dict":
        return {
          k: "dict",
          entries: e.keys.map((k, i) => [this.evalExpr(k, frame), this.evalExpr(e.values[i], frame)]),
        };
      case "unary": {
        const v = this.evalExpr(e.operand, frame);
        if (e.op === "+") return v;
        const op = e.op === "-" ? "neg" : e.op === "not" ? "__not__" : "bitwise_not";
        return this.callOp(frame, e.pos, "aten", op, [v], new Map(), hint || op);
      }
      case "binary": {
        const l = this.evalExpr(e.left, frame);
        const r = this.evalExpr(e.right, frame);
        let op = BINARY_OPS[e.op];
        if (op === "floordiv" && (l.k === "tensor" || r.k === "tensor")) op = "floor_divide";
        return this.callOp(frame, e.pos, "aten", op, [l, r], new Map(), hint || op);
      }
      case "compare": {
        let left = this.evalExpr(e.operands[0], frame);
        let result: Val | undefined;
        for (let i = 0; i < e.ops.length; i++) {
          const right = this.evalExpr(e.operands[i + 1], frame);
          const op = e.ops[i];
          let r: Val;
          if (op === "in" || op === "not in") {
            r = this.callOp(frame, e.pos, "aten", "__contains__", [right, left], new Map(), hint);
            if (op === "not in") r = this.callOp(frame, e.pos, "aten", "__not__", [r], new Map(), hint);
          } else if (op === "is" || op === "is not")
            r = this.callOp(
              frame,
              e.pos,
              "aten",
              op === "is" ? "__is__" : "__isnot__",
              [left, right],
              new Map(),
              hint,
            );
          else
            r = this.callOp(
              frame,
              e.pos,
              "aten",
              COMPARE_OPS[op],
              [left, right],
              new Map(),
              hint || COMPARE_OPS[op],
            );
          if (result !== undefined) {
            const both = this.staticTruth(frame, e.pos, result) && this.staticTruth(frame, e.pos, r);
            result = bool(both);
          } else result = r;
          left = right;
        }
        return result as Val;
      }
      case "boolop": {
        let v = this.evalExpr(e.operands[0], frame);
        for (const next of e.operands.slice(1)) {
          const t = this.staticTruth(frame, e.pos, v);
          if (e.op === "and" ? !t : t) return v;
          v = this.evalExpr(next, frame);
        }
        return v;
      }
      case "ifexp": {
        const t = this.staticTruth(frame, e.pos, this.evalExpr(e.test, frame));
        return this.evalExpr(t ? e.body : e.orelse, frame, hint);
      }
      case "ellipsis":
        return this.fail(frame, e.pos, "'...' is not supported");
    }
  }

  /** Truth of a value known at compile time; data-dependent values are refused here (only `if`/`while` take them). */
  staticTruth(frame: Frame, pos: Pos, v: Val): boolean {
    const t = truthy(v);
    if (t === undefined)
      this.fail(
        frame,
        pos,
        `the truth of ${describe(v)} is only known at run time; torchc supports data-dependent conditions in 'if' and 'while' statements only`,
      );
    return t!;
  }

  private lookup(name: string, frame: Frame, pos: Pos): Val {
    const v = frame.vars.get(name);
    // an `uninitialized(T)` placeholder may be copied around; using it in an operation fails there
    if (v !== undefined) return v;
    switch (name) {
      case "torch":
      case "ops":
      case "CONSTANTS":
      case "__torch__":
      case "math":
        return { k: "ns", path: name };
      case "inf":
        return float(Number.POSITIVE_INFINITY);
      case "nan":
        return float(Number.NaN);
    }
    if (BUILTINS.has(name)) return { k: "builtin", name };
    return this.fail(frame, pos, `name '${name}' is not defined`, "torchscript.value");
  }

  // ---- statements ----

  execBlock(stmts: readonly Stmt[], frame: Frame): Completion {
    for (const s of stmts) {
      const spent = chargeStep();
      if (spent) this.fail(frame, "pos" in s ? s.pos : undefined, spent, "torchscript.budget");
      const c = this.exec(s, frame);
      if (c.k !== "normal") return c;
    }
    return { k: "normal" };
  }

  private exec(s: Stmt, frame: Frame): Completion {
    switch (s.kind) {
      case "expr":
        this.evalExpr(s.value, frame, "_");
        return { k: "normal" };
      case "assign": {
        const first = s.targets[0];
        const v = this.evalExpr(s.value, frame, targetHint(first));
        for (const t of s.targets) this.assign(t, v, frame);
        return { k: "normal" };
      }
      case "annassign":
        if (s.value) {
          let v = this.evalExpr(s.value, frame, targetHint(s.target));
          if (scalarKind(s.annotation) === "float" && v.k === "int") v = float(v.v);
          this.assign(s.target, v, frame);
        }
        return { k: "normal" };
      case "augassign": {
        const cur = this.evalExpr(s.target, frame);
        const r = this.evalExpr(s.value, frame);
        const op = BINARY_OPS[s.op];
        this.assign(
          s.target,
          this.callOp(frame, s.pos, "aten", op, [cur, r], new Map(), targetHint(s.target)),
          frame,
        );
        return { k: "normal" };
      }
      case "return":
        return { k: "return", value: s.value ? this.evalExpr(s.value, frame, "out") : NONE };
      case "if":
        return this.control.execIf(s, frame);
      case "for":
        return this.control.execFor(s, frame);
      case "while":
        return this.control.execWhile(s, frame);
      case "pass":
        return { k: "normal" };
      case "break":
        return { k: "break" };
      case "continue":
        return { k: "continue" };
      case "raise": {
        const v = s.value ? this.evalExpr(s.value, frame) : NONE;
        throw new ModelRaise(v.k === "str" ? v.v : describe(v));
      }
      case "assert": {
        const v = this.evalExpr(s.test, frame);
        const t = truthy(v);
        if (t === false)
          throw new ModelRaise(`AssertionError${s.msg ? `: ${pyStr(this.evalExpr(s.msg, frame))}` : ""}`);
        return { k: "normal" };
      }
      case "def":
      case "class":
        return this.fail(
          frame,
          s.def.pos,
          `nested ${s.kind === "def" ? "functions" : "classes"} are not supported`,
        );
    }
  }

  assign(target: Expr, v: Val, frame: Frame): void {
    switch (target.kind) {
      case "name":
        frame.vars.set(target.id, v);
        return;
      case "tuple":
      case "list": {
        if (v.k !== "tuple" && v.k !== "list")
          this.fail(frame, target.pos, `cannot unpack ${describe(v)}`, "torchscript.value");
        const items = (v as { items: readonly Val[] }).items;
        if (items.length !== target.items.length)
          this.fail(
            frame,
            target.pos,
            `cannot unpack ${items.length} values into ${target.items.length}`,
            "torchscript.value",
          );
        target.items.forEach((t, i) => {
          this.assign(t, items[i], frame);
        });
        return;
      }
      case "attr":
        this.setAttr(frame, this.evalExpr(target.value, frame), target.attr, v, target.pos);
        return;
      case "subscript": {
        const c = this.evalExpr(target.value, frame);
        const i = this.evalExpr(target.index[0], frame);
        this.callOp(frame, target.pos, "aten", "_set_item", [c, i, v], new Map(), "");
        return;
      }
      default:
        this.fail(frame, target.pos, "cannot assign to this expression", "torchscript.syntax");
    }
  }
}

function targetHint(t: Expr): string {
  if (t.kind === "name") return t.id;
  if (t.kind === "tuple" && t.items[0]?.kind === "name") return t.items[0].id;
  return "";
}

function defaultHint(e: Extract<Expr, { kind: "call" }>): string {
  const d = dottedName(e.func);
  return d ? d[d.length - 1] : "v";
}

export { numToTensor };

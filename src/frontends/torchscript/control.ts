import type { Arg, Graph, TensorType } from "../../ir/graph.js";
import { scalarTensor } from "../../ir/tensor.js";
import type { Expr, Pos, Stmt } from "./ast.js";
import { chargeTrips, rangeValues } from "./budget.js";
import type { Interpreter } from "./interp.js";
import type { Block } from "./scope.js";
import { ModelRaise, truthy } from "./static-ops.js";
import { describe, int, type ObjectVal, sameVal, type TensorBox, type Val } from "./values.js";

/** Local variables of one function activation, and where its code lives. */
export interface Frame {
  readonly vars: Map<string, Val>;
  /** The code record, e.g. `code/__torch__.py`. */
  readonly file: string;
  readonly fn: string;
  readonly module: ObjectVal | undefined;
}

export type Completion =
  | { readonly k: "normal" }
  | { readonly k: "return"; readonly value: Val }
  | { readonly k: "break" }
  | { readonly k: "continue" };

const MAX_UNROLL = 100_000;

type BranchRun =
  | {
      readonly ok: true;
      readonly block: Block;
      readonly vars: Map<string, Val>;
      readonly rebinds: Map<TensorBox, string>;
    }
  | { readonly ok: false; readonly raise: ModelRaise };

/**
 * `if`, `for` and `while`: resolved at compile time when their condition or trip count is known (shapes,
 * constants, `self.training`), otherwise built as `prim.If` / `prim.Loop` nodes whose blocks read outer values
 * by name.
 */
export class ControlFlow {
  constructor(private readonly it: Interpreter) {}

  private get g() {
    return this.it.g;
  }

  /** A condition: a compile-time truth, or the 0-d tensor holding it at run time. */
  private condition(frame: Frame, pos: Pos, v: Val): boolean | TensorBox {
    if (v.k === "dyn") return v.box;
    if (v.k === "tensor" && !v.box.known) {
      if (v.box.type.shape.reduce((a, b) => a * b, 1) !== 1)
        this.it.fail(
          frame,
          pos,
          `a condition must be a single value, got ${describe(v)}`,
          "torchscript.value",
        );
      return v.box;
    }
    const t = truthy(v);
    if (t === undefined)
      this.it.fail(frame, pos, `cannot use ${describe(v)} as a condition`, "torchscript.value");
    return t!;
  }

  execIf(s: Extract<Stmt, { kind: "if" }>, frame: Frame): Completion {
    const c = this.condition(frame, s.pos, this.it.evalExpr(s.test, frame, "cond"));
    if (typeof c === "boolean") return this.it.execBlock(c ? s.body : s.orelse, frame);
    return this.dynamicIf(c, s, frame);
  }

  private runBranch(body: readonly Stmt[], frame: Frame, pos: Pos): BranchRun {
    const vars = new Map(frame.vars);
    const { block, result } = this.g.inBlock(() => {
      try {
        return { c: this.it.execBlock(body, { ...frame, vars }) };
      } catch (e) {
        if (e instanceof ModelRaise) return { raise: e };
        throw e;
      }
    });
    const rebinds = this.g.undoRebinds(block);
    if ("raise" in result) return { ok: false, raise: result.raise as ModelRaise };
    if (result.c.k !== "normal") {
      this.it.fail(
        frame,
        pos,
        `'${result.c.k}' inside an 'if' whose condition is only known at run time is not supported`,
      );
    }
    return { ok: true, block, vars, rebinds };
  }

  /** Moves a branch's nodes into the current block (the other branch always raises). */
  private adopt(run: Extract<BranchRun, { ok: true }>, frame: Frame): void {
    const built = run.block.builder.build();
    for (const node of built.nodes) {
      this.g.block.builder.addNode(
        node.op,
        node.args,
        node.outputs.map((o) => ({ name: o, type: built.values[o] })),
        node.meta,
        node.name,
        node.subgraphs,
      );
    }
    for (const [box, name] of run.rebinds) this.g.rebind(box, name, this.g.typeOf(name));
    frame.vars.clear();
    for (const [k, v] of run.vars) frame.vars.set(k, v);
  }

  private dynamicIf(cond: TensorBox, s: Extract<Stmt, { kind: "if" }>, frame: Frame): Completion {
    const condName = this.g.valueOf(cond, "cond");
    const a = this.runBranch(s.body, frame, s.pos);
    const b = this.runBranch(s.orelse, frame, s.pos);
    if (!a.ok && !b.ok) throw a.raise;
    if (!a.ok || !b.ok) {
      // One branch always raises: a model that runs at all takes the other one.
      this.adopt((a.ok ? a : b) as Extract<BranchRun, { ok: true }>, frame);
      return { k: "normal" };
    }
    const pairs: {
      yes: string;
      no: string;
      type: TensorType;
      hint: string;
      assign: (name: string) => void;
    }[] = [];
    const merged = new Map<string, Val>();
    for (const key of new Set([...a.vars.keys(), ...b.vars.keys()])) {
      const va = a.vars.get(key);
      const vb = b.vars.get(key);
      if (va === undefined || vb === undefined) continue; // defined on one side only: not visible after the if
      if (va === vb || sameVal(va, vb)) {
        merged.set(key, va);
        continue;
      }
      if (va.k === "uninit" || vb.k === "uninit") {
        merged.set(key, va.k === "uninit" ? vb : va);
        continue;
      }
      const ta = this.tensorOf(va);
      const tb = this.tensorOf(vb);
      if (!ta || !tb) {
        this.it.fail(
          frame,
          s.pos,
          `'${key}' is ${describe(va)} in one branch and ${describe(vb)} in the other of an 'if' decided at run time; torchc needs such values to be tensors`,
        );
      }
      this.checkSameType(frame, s.pos, key, ta!.type, tb!.type);
      pairs.push({
        yes: this.g.valueOf(ta!),
        no: this.g.valueOf(tb!),
        type: ta!.type,
        hint: key,
        assign: (name) => merged.set(key, retag(va, { name, type: ta!.type })),
      });
    }
    for (const box of new Set([...a.rebinds.keys(), ...b.rebinds.keys()])) {
      const yes = a.rebinds.get(box) ?? this.g.valueOf(box);
      const no = b.rebinds.get(box) ?? this.g.valueOf(box);
      const type = this.g.typeOf(yes);
      this.checkSameType(frame, s.pos, "an in-place result", type, this.g.typeOf(no));
      pairs.push({
        yes,
        no,
        type,
        hint: box.name ?? "inplace",
        assign: (name) => this.g.rebind(box, name, type),
      });
    }
    const thenGraph = finish(
      a.block,
      pairs.map((p) => p.yes),
    );
    const elseGraph = finish(
      b.block,
      pairs.map((p) => p.no),
    );
    const args: Record<string, Arg> = { cond: { kind: "tensor", name: condName } };
    const outs = this.g.addNode(
      "prim.If",
      args,
      pairs.map((p) => ({ hint: p.hint, type: p.type })),
      this.it.meta(frame, s.pos),
      [thenGraph, elseGraph],
    );
    pairs.forEach((p, i) => {
      p.assign(outs[i]);
    });
    frame.vars.clear();
    for (const [k, v] of merged) frame.vars.set(k, v);
    return { k: "normal" };
  }

  private tensorOf(v: Val): TensorBox | undefined {
    if (v.k === "tensor" || v.k === "dyn") return v.box;
    if (v.k === "int" || v.k === "float" || v.k === "bool") {
      const dtype = v.k === "int" ? "int64" : v.k === "float" ? "float64" : "bool";
      return { known: scalarTensor(dtype, Number(v.v)), type: { dtype, shape: [] } };
    }
    return undefined;
  }

  private checkSameType(frame: Frame, pos: Pos, what: string, a: TensorType, b: TensorType): void {
    if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) {
      this.it.fail(
        frame,
        pos,
        `${what} is ${a.dtype}[${a.shape}] in one branch and ${b.dtype}[${b.shape}] in the other of an 'if' decided at run time; torchc compiles static shapes`,
      );
    }
  }

  execFor(s: Extract<Stmt, { kind: "for" }>, frame: Frame): Completion {
    const iter = s.iter;
    if (
      iter.kind === "call" &&
      iter.func.kind === "name" &&
      iter.func.id === "range" &&
      !frame.vars.has("range")
    ) {
      const args = iter.args.map((a) => this.it.evalExpr(a, frame));
      const dyn = args.find((a) => a.k === "dyn" || a.k === "tensor");
      if (dyn) {
        if (args.length !== 1) this.it.fail(frame, s.pos, "a run-time range() must have the form range(n)");
        return this.dynamicLoop(frame, s.pos, s.body, {
          trips: (dyn as { box: TensorBox }).box,
          target: s.target,
          cond: true,
        });
      }
      const nums = args.map((a) => {
        if (a.k !== "int") this.it.fail(frame, s.pos, `range() of ${describe(a)}`, "torchscript.value");
        return (a as { v: number }).v;
      });
      const [lo, hi, step] = nums.length === 1 ? [0, nums[0], 1] : [nums[0], nums[1], nums[2] ?? 1];
      const items = this.it.located(frame, s.pos, () => rangeValues(lo, hi, step)).map(int);
      return this.unroll(s, items, frame);
    }
    const seq = this.it.evalExpr(iter, frame);
    if (seq.k === "list" || seq.k === "tuple") return this.unroll(s, [...seq.items], frame);
    if (seq.k === "dict")
      return this.unroll(
        s,
        seq.entries.map(([k]) => k),
        frame,
      );
    if (seq.k === "str")
      return this.unroll(
        s,
        [...seq.v].map((c) => ({ k: "str", v: c }) as Val),
        frame,
      );
    return this.it.fail(frame, s.pos, `cannot iterate over ${describe(seq)}`);
  }

  private unroll(s: Extract<Stmt, { kind: "for" }>, items: Val[], frame: Frame): Completion {
    if (items.length > MAX_UNROLL)
      this.it.fail(frame, s.pos, `a loop of ${items.length} iterations is too long to unroll`);
    this.it.located(frame, s.pos, () => chargeTrips(items.length));
    for (const item of items) {
      this.it.assign(s.target, item, frame);
      const c = this.it.execBlock(s.body, frame);
      if (c.k === "break") break;
      if (c.k === "return") return c;
    }
    return { k: "normal" };
  }

  execWhile(s: Extract<Stmt, { kind: "while" }>, frame: Frame): Completion {
    for (let i = 0; ; i++) {
      if (i > MAX_UNROLL)
        this.it.fail(frame, s.pos, `a while loop ran more than ${MAX_UNROLL} times at compile time`);
      this.it.located(frame, s.pos, () => chargeTrips(1));
      const c = this.condition(frame, s.pos, this.it.evalExpr(s.test, frame, "cond"));
      if (c === false) return { k: "normal" };
      if (c !== true) return this.dynamicLoop(frame, s.pos, s.body, { cond: c, condExpr: s.test });
      const r = this.it.execBlock(s.body, frame);
      if (r.k === "break") return { k: "normal" };
      if (r.k === "return") return r;
    }
  }

  /** Builds a prim.Loop: carried values are the variables the body assigns that exist before the loop. */
  private dynamicLoop(
    frame: Frame,
    pos: Pos,
    body: readonly Stmt[],
    spec: { trips?: TensorBox; target?: Expr; cond: TensorBox | true; condExpr?: Expr },
  ): Completion {
    const assigned = new Set<string>();
    collectAssigned(body, assigned);
    const targetName = spec.target?.kind === "name" ? spec.target.id : undefined;
    if (spec.target && !targetName)
      this.it.fail(frame, pos, "a loop decided at run time must have a single loop variable");
    const carried = [...assigned].filter(
      (n) =>
        n !== targetName &&
        frame.vars.has(n) &&
        this.tensorOf(frame.vars.get(n)!) &&
        isRuntimeCandidate(frame.vars.get(n)!),
    );
    const inits = carried.map((n) => this.tensorOf(frame.vars.get(n)!)!);
    const initNames = inits.map((b) => this.g.valueOf(b));
    const types = inits.map((b) => b.type);

    const vars = new Map(frame.vars);
    const iterType: TensorType = { dtype: "int64", shape: [] };
    const { block, result } = this.g.inBlock(() => {
      const iterName = this.g.names.fresh(targetName ?? "iter");
      this.g.types.set(iterName, iterType);
      this.g.block.builder.addInput(iterName, iterType);
      const inputs = carried.map((n, i) => {
        const name = this.g.names.fresh(n);
        this.g.types.set(name, types[i]);
        this.g.block.builder.addInput(name, types[i]);
        vars.set(n, retag(frame.vars.get(n)!, { name, type: types[i] }));
        return name;
      });
      if (targetName)
        vars.set(targetName, { k: "dyn", type: "int", box: { name: iterName, type: iterType } });
      const inner: Frame = { ...frame, vars };
      const c = this.it.execBlock(body, inner);
      if (c.k !== "normal" && c.k !== "continue")
        this.it.fail(frame, pos, `'${c.k}' inside a loop decided at run time is not supported`);
      let condBox: TensorBox;
      if (spec.condExpr) {
        const v = this.condition(inner, pos, this.it.evalExpr(spec.condExpr, inner, "cond"));
        condBox =
          typeof v === "boolean"
            ? { known: scalarTensor("bool", v ? 1 : 0), type: { dtype: "bool", shape: [] } }
            : v;
      } else condBox = { known: scalarTensor("bool", 1), type: { dtype: "bool", shape: [] } };
      const outs = carried.map((n, i) => {
        const box = this.tensorOf(vars.get(n)!);
        if (!box)
          this.it.fail(
            frame,
            pos,
            `loop variable '${n}' becomes ${describe(vars.get(n)!)} inside a loop decided at run time`,
          );
        this.checkSameType(frame, pos, `loop variable '${n}'`, types[i], box!.type);
        return this.g.valueOf(box!);
      });
      return { iterName, inputs, outputs: [this.g.valueOf(condBox, "cond"), ...outs] };
    });
    if (block.rebinds.size > 0)
      this.it.fail(
        frame,
        pos,
        "in-place updates of outer tensors inside a loop decided at run time are not supported",
      );
    for (const n of assigned) {
      if (n === targetName || carried.includes(n) || !frame.vars.has(n)) continue;
      if (!sameVal(frame.vars.get(n)!, vars.get(n)!))
        this.it.fail(
          frame,
          pos,
          `'${n}' (${describe(frame.vars.get(n)!)}) changes inside a loop decided at run time; only tensors may`,
        );
    }
    const bodyGraph = finish(block, result.outputs);
    const args: Record<string, Arg> = {
      max_trip_count: spec.trips
        ? { kind: "tensor", name: this.g.valueOf(spec.trips) }
        : { kind: "int", value: Number.MAX_SAFE_INTEGER },
      cond:
        spec.cond === true
          ? { kind: "bool", value: true }
          : { kind: "tensor", name: this.g.valueOf(spec.cond) },
      init: { kind: "tensors", names: initNames },
    };
    const outs = this.g.addNode(
      "prim.Loop",
      args,
      carried.map((n, i) => ({ hint: n, type: types[i] })),
      this.it.meta(frame, pos),
      [bodyGraph],
    );
    carried.forEach((n, i) => {
      frame.vars.set(n, retag(frame.vars.get(n)!, { name: outs[i], type: types[i] }));
    });
    return { k: "normal" };
  }
}

/** A value of the same kind as `like` held in a new box. */
function retag(like: Val, box: TensorBox): Val {
  if (like.k === "dyn") return { k: "dyn", type: like.type, box };
  if (like.k === "int" || like.k === "float" || like.k === "bool") return { k: "dyn", type: like.k, box };
  return { k: "tensor", box };
}

/** Values a run-time loop may carry: tensors, and Python numbers (which become 0-d tensors). */
function isRuntimeCandidate(v: Val): boolean {
  return v.k === "tensor" || v.k === "dyn" || v.k === "int" || v.k === "float" || v.k === "bool";
}

function finish(block: Block, outputs: string[]): Graph {
  block.builder.setOutputs(outputs);
  return block.builder.build();
}

function collectAssigned(stmts: readonly Stmt[], out: Set<string>): void {
  for (const s of stmts) {
    if (s.kind === "assign") for (const t of s.targets) collectNames(t, out);
    else if (s.kind === "annassign" || s.kind === "augassign") collectNames(s.target, out);
    else if (s.kind === "if") {
      collectAssigned(s.body, out);
      collectAssigned(s.orelse, out);
    } else if (s.kind === "for") {
      collectNames(s.target, out);
      collectAssigned(s.body, out);
    } else if (s.kind === "while") collectAssigned(s.body, out);
  }
}

function collectNames(e: Expr, out: Set<string>): void {
  if (e.kind === "name") out.add(e.id);
  else if (e.kind === "tuple" || e.kind === "list") for (const x of e.items) collectNames(x, out);
}

import { isFloating } from "../../ir/dtype.js";
import type { Arg, NodeMeta, TensorType } from "../../ir/graph.js";
import { numel, type Tensor } from "../../ir/tensor.js";
import { getOp, OP_NAMES, type OpDef, withDefaults } from "../../ops/index.js";
import { bindValues, toArg } from "./convert.js";
import type { GraphState } from "./scope.js";
import { StaticError } from "./static-ops.js";
import { describe, type TensorBox, tensorVal, type Val } from "./values.js";

/** An operator the catalogue does not have, or arguments no overload accepts. */
export class OpError extends StaticError {
  constructor(
    message: string,
    readonly op: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const overloadCache = new Map<string, OpDef<unknown>[]>();

const PREFERRED = ["default", "Tensor", "int", "using_ints", "dim", "dim_IntList", "self", "input", "vec"];

/** The catalogue's overloads of `aten.<name>`, in the order overload resolution tries them. */
export function overloadsOf(name: string): OpDef<unknown>[] {
  const hit = overloadCache.get(name);
  if (hit) return hit;
  const prefix = `aten.${name}.`;
  const defs = OP_NAMES.filter((n) => n.startsWith(prefix) && !n.slice(prefix.length).includes("."))
    .map((n) => getOp(n) as OpDef<unknown>)
    .sort((a, b) => rank(a) - rank(b));
  overloadCache.set(name, defs);
  return defs;
}

function rank(d: OpDef<unknown>): number {
  const i = PREFERRED.indexOf(d.name.split(".")[2]);
  return i < 0 ? PREFERRED.length : i;
}

const RANDOM =
  /^(dropout|feature_dropout|alpha_dropout|bernoulli|rand|randn|randint|randperm|normal|uniform|multinomial|empty|empty_like|poisson)/;

/** Limit on elements for evaluating an op at compile time (shape arithmetic, small constants). */
const FOLD_LIMIT = 4096;

export interface EmitContext {
  readonly g: GraphState;
  readonly meta: NodeMeta;
  /** Name for the result value (the variable it is assigned to). */
  readonly hint: string;
}

/** Chooses the overload of `aten.<name>` that fits the arguments, as TorchScript's schema matching would. */
export function resolveOverload(
  name: string,
  positional: readonly Val[],
  named: ReadonlyMap<string, Val>,
): { def: OpDef<unknown>; bound: Map<string, Val> } {
  const defs = overloadsOf(name);
  if (defs.length === 0)
    throw new OpError(
      `operator 'aten::${name}' is not supported: torchc's op catalogue has no aten.${name} overload`,
      `aten::${name}`,
      "op.unsupported",
    );
  const fits = defs
    .map((def) => ({ def, fit: bindValues(def, positional, named) }))
    .filter((f) => f.fit !== undefined);
  if (fits.length === 0) {
    const given = [...positional.map(describe), ...[...named].map(([k, v]) => `${k}=${describe(v)}`)].join(
      ", ",
    );
    const schemas = defs
      .map((d) => `${d.name}(${d.schema.map((s) => `${s.type} ${s.name}`).join(", ")})`)
      .join("; ");
    throw new OpError(
      `no overload of aten::${name} accepts (${given}); torchc knows ${schemas}`,
      `aten::${name}`,
      "op.args",
    );
  }
  // PyTorch's Python binding picks X.Tensor over X.Scalar for a number operand; export graphs show the same.
  const hasTensor = (suffix: string) => fits.some((f) => f.def.name.endsWith(`.${suffix}`));
  const usable = fits.filter((f) => {
    const ovl = f.def.name.split(".")[2];
    return !(
      (ovl === "Scalar" && hasTensor("Tensor")) ||
      (ovl === "Scalar_mode" && hasTensor("Tensor_mode"))
    );
  });
  usable.sort((a, b) => a.fit!.cost - b.fit!.cost || rank(a.def) - rank(b.def));
  return { def: usable[0].def, bound: usable[0].fit!.bound };
}

function category(d: string): number {
  return d === "bool" ? 0 : isFloating(d as never) ? 2 : 1;
}

/**
 * Emits `aten.<name>` (an in-place `name_` is emitted as its functional op and rebinds its first argument).
 * When every tensor operand is statically known and small, the op is evaluated now instead.
 */
export function callAten(
  name: string,
  positional: readonly Val[],
  named: ReadonlyMap<string, Val>,
  cx: EmitContext,
): Val {
  const inPlace = name.endsWith("_") && !name.startsWith("_") && !name.endsWith("__");
  const base = inPlace ? name.slice(0, -1) : name;
  const { def, bound } = resolveOverload(base, positional, named);
  const g = cx.g;

  // Known one-element tensors next to run-time tensors become plain numbers, as export graphs show them.
  const tensorVals = def.schema
    .filter((s) => s.type === "Tensor" || s.type === "Tensor?")
    .map((s) => bound.get(s.name))
    .filter((v) => v?.k === "tensor" || v?.k === "dyn") as { box: TensorBox }[];
  const runtime = tensorVals.filter((v) => !v.box.known && v.box.type.shape.length > 0);
  const asNumber = (v: Val): boolean => {
    if (v.k !== "tensor" || !v.box.known || v.box.type.shape.length !== 0) return false;
    const c = category(v.box.known.dtype);
    return runtime.some((r) => category(r.box.type.dtype) >= c);
  };

  for (const v of bound.values()) {
    if ((v.k === "tensor" || v.k === "dyn") && v.box.stale)
      throw new OpError(v.box.stale, `aten::${name}`, "torchscript.inplace-view");
  }
  const tensorParams = def.schema.filter((s) => s.type.startsWith("Tensor"));
  const hasTensorArg = [...bound.values()].some(
    (v) =>
      v.k === "tensor" ||
      v.k === "dyn" ||
      ((v.k === "list" || v.k === "tuple") && v.items.some((x) => x.k === "tensor" || x.k === "dyn")),
  );
  if (tensorParams.length > 0 && !hasTensorArg) {
    throw new OpError(
      `aten::${name} is applied to Python values only (${positional.map(describe).join(", ")}); torchc evaluates such arithmetic at compile time but not this operator`,
      `aten::${name}`,
      "op.unsupported",
    );
  }
  // Operators on statically known data (shape arithmetic, small constants, tensor factories) run now.
  const allKnown = [...bound.values()].every((v) => knownOrNotTensor(v)) && !RANDOM.test(base);
  const placeholders = new Map<string, Tensor>();
  const prepare = (fold: boolean) => {
    placeholders.clear();
    const args: Record<string, Arg> = {};
    for (const spec of def.schema) {
      const v = bound.get(spec.name);
      if (v === undefined) continue;
      if (fold) args[spec.name] = knownArg(v, spec, g, placeholders);
      else if ((spec.type === "Tensor" || spec.type === "Tensor?") && asNumber(v))
        args[spec.name] = toArg(v, { ...spec, type: "Scalar" }, g);
      else args[spec.name] = toArg(v, spec, g);
    }
    const full = withDefaults(def, args);
    const typeOf = (n: string): TensorType => {
      const p = placeholders.get(n);
      return p ? { dtype: p.dtype, shape: p.shape } : g.typeOf(n);
    };
    const parsed = def.parse(full);
    return { full, parsed, types: def.infer(parsed, typeOf) };
  };
  let fold = allKnown;
  let { full, parsed, types } = prepare(fold);
  if (fold && !types.every((t) => numel(t.shape) <= FOLD_LIMIT)) {
    fold = false;
    ({ full, parsed, types } = prepare(false));
  }

  let boxes: TensorBox[];
  if (fold) {
    const results = def.evaluate(parsed, (n) => placeholders.get(n) ?? failKnown(n));
    boxes = results.map((t) => ({ known: t, type: { dtype: t.dtype, shape: t.shape } }));
  } else {
    const names = g.addNode(
      def.name,
      full,
      types.map((type, i) => ({ hint: types.length > 1 ? `${cx.hint}_${i}` : cx.hint, type })),
      cx.meta,
    );
    boxes = names.map((n, i) => ({ name: n, type: types[i] }));
  }

  const first = bound.get(def.schema[0]?.name ?? "");
  if (VIEW_OPS.has(base) && first?.k === "tensor") {
    for (const b of boxes) linkView(first.box, b);
  }

  if (inPlace) {
    const self = positional[0] ?? bound.get(def.schema[0].name);
    if (self?.k !== "tensor")
      throw new OpError(
        `in-place aten::${name} on ${self ? describe(self) : "nothing"}`,
        `aten::${name}`,
        "op.args",
      );
    markAliasesStale(self.box, name);
    const out = boxes[0];
    if (out.name === undefined) {
      self.box.known = out.known;
      self.box.name = undefined;
      self.box.type = out.type;
    } else g.rebind(self.box, out.name, out.type);
    return self;
  }
  if (def.returns === "list") return { k: "list", items: boxes.map(tensorVal) };
  if (boxes.length === 1) return tensorVal(boxes[0]);
  return { k: "tuple", items: boxes.map(tensorVal) };
}

/** Ops whose result shares its input's data in PyTorch. */
const VIEW_OPS = new Set([
  "view",
  "view_as",
  "reshape",
  "reshape_as",
  "flatten",
  "unflatten",
  "squeeze",
  "unsqueeze",
  "transpose",
  "permute",
  "t",
  "expand",
  "expand_as",
  "select",
  "slice",
  "narrow",
  "diagonal",
  "as_strided",
  "alias",
  "detach",
  "split",
  "split_with_sizes",
  "chunk",
  "unbind",
  "unfold",
  "movedim",
  "swapaxes",
  "swapdims",
  "real",
  "imag",
]);

export function linkView(base: TensorBox, view: TensorBox): void {
  view.viewOf = base;
  if (!base.views) base.views = [];
  base.views.push(view);
}

/**
 * An in-place op on a view changes its base, and one on a base changes its views. torchc rebinds only the
 * tensor the op names, so every other alias is marked: reading one later fails instead of being silently stale.
 */
function markAliasesStale(box: TensorBox, op: string): void {
  const why = `this tensor shares data with one that aten::${op} modified in place; torchc does not follow in-place updates through views (rewrite the model without the in-place op, or trace it with torch.jit.trace after torch.func.functionalize)`;
  let base = box.viewOf;
  while (base) {
    base.stale = why;
    for (const v of base.views ?? []) if (v !== box) v.stale = why;
    base = base.viewOf;
  }
  const mark = (b: TensorBox): void => {
    for (const v of b.views ?? []) {
      v.stale = why;
      mark(v);
    }
  };
  mark(box);
}

function knownOrNotTensor(v: Val): boolean {
  if (v.k === "dyn") return false;
  if (v.k === "tensor") return v.box.known !== undefined && numel(v.box.type.shape) <= FOLD_LIMIT;
  if (v.k === "list" || v.k === "tuple") return v.items.every(knownOrNotTensor);
  return true;
}

function knownArg(
  v: Val,
  spec: { name: string; type: string },
  g: GraphState,
  placeholders: Map<string, Tensor>,
): Arg {
  const place = (t: Tensor): string => {
    const n = `#known${placeholders.size}`;
    placeholders.set(n, t);
    return n;
  };
  if (v.k === "tensor" && (spec.type === "Tensor" || spec.type === "Tensor?"))
    return { kind: "tensor", name: place(v.box.known as Tensor) };
  if ((v.k === "list" || v.k === "tuple") && spec.type.startsWith("Tensor")) {
    return {
      kind: "tensors",
      names: v.items.map((x) => (x.k === "tensor" ? place(x.box.known as Tensor) : null)),
    };
  }
  return toArg(v, spec as never, g);
}

function failKnown(n: string): never {
  throw new StaticError(`internal: value '${n}' is not known while folding`);
}

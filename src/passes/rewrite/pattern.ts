// Typed graph patterns. A pattern matches one argument of a node (a tensor value or a literal) and binds
// what it matched; the type of the binding is carried by the pattern, so a rule's captures are typed
// object fields rather than strings. The same pattern object used twice in one tree must bind the same
// thing both times (`mul(x, sigmoid(x))`), so every constructor here returns a fresh object.
import type { DType } from "../../ir/dtype.js";
import { isFloating } from "../../ir/dtype.js";
import type { Arg, Node, TensorType, Weight } from "../../ir/graph.js";
import { type Shape, toFloat64Array } from "../../ir/tensor.js";
import type { GraphView } from "./graph-view.js";

/** A tensor value a pattern matched. */
export interface BoundValue {
  readonly name: string;
  readonly type: TensorType;
}

/** A value that is a graph weight (parameter, buffer or constant), with its data. */
export interface BoundWeight extends BoundValue {
  readonly weight: Weight;
}

/** A node a pattern matched, with its arguments (schema defaults applied) and typed outputs. */
export interface BoundNode {
  readonly node: Node;
  readonly name: string;
  readonly op: string;
  readonly args: Readonly<Record<string, Arg>>;
  readonly outputs: readonly BoundValue[];
  /** The first output, the one most rewrites replace. */
  readonly out: BoundValue;
}

/** What each pattern object bound during one match (keyed by pattern identity). */
export type Bindings = ReadonlyMap<AnyPattern, unknown>;

export interface Pattern<B> {
  /** Phantom: the type this pattern binds. Never set at run time. */
  readonly __binds?: B;
  /** Matches one argument; `undefined` means the argument is absent from the node. */
  matchArg(arg: Arg | undefined, graph: GraphView, bindings: Bindings): Bindings | undefined;
  /** A short rendering for docs and error messages. */
  readonly text: string;
  /** Sub-patterns that are bound whenever this one matches (not those of `either`/`optional` branches). */
  readonly parts: readonly AnyPattern[];
}

/** A pattern on a node: usable as a rule's root, or as an argument (matching the value's producer). */
export interface NodePattern<B = BoundNode> extends Pattern<B> {
  /** The ops this pattern can match; undefined = any op. Used to index rules by root op. */
  readonly ops: readonly string[] | undefined;
  matchNode(node: Node, graph: GraphView, bindings: Bindings): Bindings | undefined;
}

// biome-ignore lint/suspicious/noExplicitAny: the erased pattern type used as a map key
export type AnyPattern = Pattern<any>;

/** The type a pattern binds. */
export type BoundBy<P> = P extends Pattern<infer B> ? B : never;

/** Patterns of a rule's captures, by field name. */
export type Captures = Readonly<Record<string, AnyPattern>>;

/** The typed record a rule's rewrite receives. */
export type Bound<C extends Captures> = { readonly [K in keyof C]: BoundBy<C[K]> };

function bind(pattern: AnyPattern, value: unknown, bindings: Bindings): Bindings | undefined {
  if (bindings.has(pattern)) return sameBinding(bindings.get(pattern), value) ? bindings : undefined;
  const next = new Map(bindings);
  next.set(pattern, value);
  return next;
}

function sameBinding(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    if ("name" in a && "name" in b) return a.name === b.name;
    return JSON.stringify(a) === JSON.stringify(b);
  }
  return false;
}

function literal<B>(text: string, read: (arg: Arg | undefined) => B | undefined, expected?: B): Pattern<B> {
  const self: Pattern<B> = {
    text,
    parts: [],
    matchArg(arg, _graph, bindings) {
      const v = read(arg);
      if (v === undefined) return undefined;
      if (expected !== undefined && !sameBinding(v, expected)) return undefined;
      return bind(self, v, bindings);
    },
  };
  return self;
}

const fmt = (v: unknown) => (v === undefined ? "" : JSON.stringify(v));

/** An int literal (optionally exactly `value`). */
export function int(value?: number): Pattern<number> {
  return literal(`int(${fmt(value)})`, (a) => (a?.kind === "int" ? a.value : undefined), value);
}

/** A float or int literal, as a number (Scalar and float arguments accept both). */
export function scalar(value?: number): Pattern<number> {
  // Number(): some exporters spell ±inf and nan as strings ("-Infinity"); compare them as numbers.
  return literal(
    `scalar(${fmt(value)})`,
    (a) => (a?.kind === "int" || a?.kind === "float" ? Number(a.value) : undefined),
    value,
  );
}

export const float = scalar;

export function ints(value?: readonly number[]): Pattern<readonly number[]> {
  return literal(
    `ints(${fmt(value)})`,
    (a) => (a?.kind === "ints" ? a.value : a?.kind === "int" ? [a.value] : undefined),
    value,
  );
}

export function floats(value?: readonly number[]): Pattern<readonly number[]> {
  return literal(
    `floats(${fmt(value)})`,
    (a) => (a?.kind === "floats" || a?.kind === "ints" ? a.value : undefined),
    value,
  );
}

export function bool(value?: boolean): Pattern<boolean> {
  return literal(`bool(${fmt(value)})`, (a) => (a?.kind === "bool" ? a.value : undefined), value);
}

export function str(value?: string): Pattern<string> {
  return literal(`str(${fmt(value)})`, (a) => (a?.kind === "string" ? a.value : undefined), value);
}

/** A dtype argument; an absent or None dtype binds null. */
export function dtype(value?: DType | null): Pattern<DType | null> {
  return literal(
    `dtype(${fmt(value)})`,
    (a) => (a === undefined || a.kind === "none" ? null : a.kind === "dtype" ? a.value : undefined),
    value,
  );
}

/** None, or an absent optional argument. */
export function none(): Pattern<null> {
  return literal("None", (a) => (a === undefined || a.kind === "none" ? null : undefined));
}

/** Any argument at all, bound as is. */
export function anyArg(): Pattern<Arg | undefined> {
  const self: Pattern<Arg | undefined> = {
    text: "_",
    parts: [],
    matchArg: (arg, _graph, bindings) => bind(self, arg, bindings),
  };
  return self;
}

/** Constraints on a value's static type and uses. */
export interface ValueConstraint {
  readonly dtype?: DType | readonly DType[];
  readonly floating?: boolean;
  readonly rank?: number;
  readonly shape?: Shape;
  /** Read by exactly one node and not a graph output (so a rewrite may consume it). */
  readonly singleUse?: boolean;
}

function fits(name: string, type: TensorType, c: ValueConstraint, graph: GraphView): boolean {
  if (
    c.dtype !== undefined &&
    !(typeof c.dtype === "string" ? c.dtype === type.dtype : c.dtype.includes(type.dtype))
  ) {
    return false;
  }
  if (c.floating !== undefined && isFloating(type.dtype) !== c.floating) return false;
  if (c.rank !== undefined && type.shape.length !== c.rank) return false;
  if (c.shape !== undefined && c.shape.join() !== type.shape.join()) return false;
  if (c.singleUse && !graph.hasSingleUser(name)) return false;
  return true;
}

function describe(c: ValueConstraint): string {
  return Object.entries(c)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(", ");
}

/** Any tensor value (optionally constrained by type and uses). */
export function value(constraint: ValueConstraint = {}): Pattern<BoundValue> {
  const self: Pattern<BoundValue> = {
    text: `value(${describe(constraint)})`,
    parts: [],
    matchArg(arg, graph, bindings) {
      if (arg?.kind !== "tensor") return undefined;
      const type = graph.typeOf(arg.name);
      if (!fits(arg.name, type, constraint, graph)) return undefined;
      return bind(self, { name: arg.name, type }, bindings);
    },
  };
  return self;
}

/** A value that is a graph weight: its data is known at compile time. */
export function weight(constraint: ValueConstraint = {}): Pattern<BoundWeight> {
  const self: Pattern<BoundWeight> = {
    text: `weight(${describe(constraint)})`,
    parts: [],
    matchArg(arg, graph, bindings) {
      if (arg?.kind !== "tensor") return undefined;
      const w = graph.weightOf(arg.name);
      if (!w) return undefined;
      const type = graph.typeOf(arg.name);
      if (!fits(arg.name, type, constraint, graph)) return undefined;
      return bind(self, { name: arg.name, type, weight: w }, bindings);
    },
  };
  return self;
}

/** Argument patterns of an op pattern, by schema argument name. */
export type ArgPatterns = Readonly<Record<string, AnyPattern>>;

export interface OpOptions {
  /** Which output of the producer the matched value must be (when used as an argument). Default 0. */
  readonly output?: number;
  /** The matched output must be read by exactly one node (and not be a graph output). */
  readonly singleUse?: boolean;
  /** An extra test on the matched node. */
  readonly where?: (node: BoundNode, graph: GraphView) => boolean;
}

function boundNode(node: Node, graph: GraphView): BoundNode {
  const outputs = node.outputs.map((name) => ({ name, type: graph.typeOf(name) }));
  return { node, name: node.name, op: node.op, args: graph.argsOf(node), outputs, out: outputs[0] };
}

function matchArgs(
  args: Readonly<Record<string, Arg>>,
  patterns: ArgPatterns,
  graph: GraphView,
  bindings: Bindings,
) {
  let b: Bindings | undefined = bindings;
  for (const [name, p] of Object.entries(patterns)) {
    b = p.matchArg(args[name], graph, b);
    if (!b) return undefined;
  }
  return b;
}

function nodePattern(
  text: string,
  ops: readonly string[] | undefined,
  argAlternatives: readonly ArgPatterns[],
  options: OpOptions,
): NodePattern<BoundNode> {
  const opSet = ops ? new Set(ops) : undefined;
  const common = argAlternatives.map((alt) => new Set(Object.values(alt)));
  const self: NodePattern<BoundNode> = {
    text,
    ops,
    parts: [...common[0]].filter((p) => common.every((set) => set.has(p))),
    matchNode(node, graph, bindings) {
      if (opSet && !opSet.has(node.op)) return undefined;
      const args = graph.argsOf(node);
      for (const alternative of argAlternatives) {
        const b = matchArgs(args, alternative, graph, bindings);
        if (!b) continue;
        const bound = boundNode(node, graph);
        if (options.where && !options.where(bound, graph)) continue;
        const out = bind(self, bound, b);
        if (out) return out;
      }
      return undefined;
    },
    matchArg(arg, graph, bindings) {
      if (arg?.kind !== "tensor") return undefined;
      const producer = graph.producerOf(arg.name);
      if (!producer || producer.index !== (options.output ?? 0)) return undefined;
      if (options.singleUse && !graph.hasSingleUser(arg.name)) return undefined;
      return self.matchNode(producer.node, graph, bindings);
    },
  };
  return self;
}

/**
 * A node of one of `ops` whose arguments match `args` (unlisted arguments are free). As an argument
 * pattern it matches a value produced by such a node.
 */
export function op(
  ops: string | readonly string[],
  args: ArgPatterns = {},
  options: OpOptions = {},
): NodePattern {
  const list = typeof ops === "string" ? [ops] : ops;
  const shown = Object.entries(args).map(([k, p]) => `${k}=${p.text}`);
  return nodePattern(`${list.join("|")}(${shown.join(", ")})`, list, [args], options);
}

/** Any node (a rule on every op, like constant folding). */
export function anyOp(options: OpOptions = {}): NodePattern {
  return nodePattern("*", undefined, [{}], options);
}

/** A binary op whose `self` and `other` may match `a` and `b` in either order. */
export function commutative(
  ops: string | readonly string[],
  a: AnyPattern,
  b: AnyPattern,
  rest: ArgPatterns = {},
  options: OpOptions = {},
): NodePattern {
  const list = typeof ops === "string" ? [ops] : ops;
  const orders = [
    { ...rest, self: a, other: b },
    { ...rest, self: b, other: a },
  ];
  return nodePattern(`${list.join("|")}{${a.text}, ${b.text}}`, list, orders, options);
}

/** Absent/None binds null; anything else must match `p`. */
export function optional<B>(p: Pattern<B>): Pattern<B | null> {
  const self: Pattern<B | null> = {
    text: `${p.text}?`,
    parts: [],
    matchArg(arg, graph, bindings) {
      if (arg === undefined || arg.kind === "none") return bind(self, null, bindings);
      const b = p.matchArg(arg, graph, bindings);
      return b && bind(self, b.get(p), b);
    },
  };
  return self;
}

/** The first alternative that matches. */
export function either<P extends readonly AnyPattern[]>(...alternatives: P): Pattern<BoundBy<P[number]>> {
  const self: Pattern<BoundBy<P[number]>> = {
    text: `(${alternatives.map((p) => p.text).join(" | ")})`,
    parts: [],
    matchArg(arg, graph, bindings) {
      for (const p of alternatives) {
        const b = p.matchArg(arg, graph, bindings);
        if (b) {
          const out = bind(self, b.get(p), b);
          if (out) return out;
        }
      }
      return undefined;
    },
  };
  return self;
}

/** `p`, further constrained by a test on what it bound. */
export function where<B>(
  p: Pattern<B>,
  test: (bound: B, graph: GraphView) => boolean,
  text = "where",
): Pattern<B> {
  const self: Pattern<B> = {
    text: `${p.text}[${text}]`,
    parts: [p],
    matchArg(arg, graph, bindings) {
      const b = p.matchArg(arg, graph, bindings);
      if (!b || !test(b.get(p) as B, graph)) return undefined;
      return bind(self, b.get(p), b);
    },
  };
  return self;
}

/**
 * A number known at compile time: a scalar literal, or a weight whose elements all equal one number
 * (a 1-element constant, or `torch.ones(...) * c`).
 */
export function constantScalar(value?: number): Pattern<number> {
  const self: Pattern<number> = {
    text: `const(${fmt(value)})`,
    parts: [],
    matchArg(arg, graph, bindings) {
      let v: number | undefined;
      if (arg?.kind === "int" || arg?.kind === "float") v = arg.value;
      else if (arg?.kind === "tensor") v = uniformWeightValue(graph.weightOf(arg.name));
      if (v === undefined || (value !== undefined && v !== value)) return undefined;
      return bind(self, v, bindings);
    },
  };
  return self;
}

function uniformWeightValue(w: Weight | undefined): number | undefined {
  if (!w || w.tensor.data.length === 0 || w.tensor.data.length > 4096) return undefined;
  const d = toFloat64Array(w.tensor);
  for (let i = 1; i < d.length; i++) if (d[i] !== d[0]) return undefined;
  return d[0];
}

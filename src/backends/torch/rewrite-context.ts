/**
 * What a rewrite rule sees while it lowers one node for the LibTorch fallback: value types (the graph's and
 * those of values it made), fresh names, 0-d constants, and `emit` to add a node that is lowered again (so a
 * rule may produce ops that other rules rewrite further) or `keep` to add one as it is.
 */
import { TorchcError } from "../../errors.js";
import type { DType } from "../../ir/dtype.js";
import { isFloating } from "../../ir/dtype.js";
import type { Arg, Node, TensorType } from "../../ir/graph.js";
import { scalarTensor, type Tensor } from "../../ir/tensor.js";
import { inferNode } from "../../ops/index.js";

/** A rule cannot lower this node; the reason reaches the user with the node's location. */
export class RewriteRefused extends Error {}

export function refuse(reason: string): never {
  throw new RewriteRefused(reason);
}

export type ScalarKind = "int" | "float" | "bool";

export interface ScalarLiteral {
  readonly value: number;
  readonly kind: ScalarKind;
}

/** A Python number held by an argument (Scalar or a number in a Tensor slot), or undefined. */
export function scalarOf(a: Arg | undefined): ScalarLiteral | undefined {
  if (!a) return undefined;
  if (a.kind === "int") return { value: a.value, kind: "int" };
  if (a.kind === "float") return { value: Number(a.value), kind: "float" };
  if (a.kind === "bool") return { value: a.value ? 1 : 0, kind: "bool" };
  return undefined;
}

/**
 * The dtype PyTorch computes in when a Python number meets a tensor of dtype `ref` (a "wrapped number": it
 * never raises the tensor's dtype within its category). A 0-d tensor of this dtype gives the same result type
 * and the same values, since TensorIterator casts the wrapped number to the common dtype anyway.
 */
export function wrappedDtype(kind: ScalarKind, ref: DType): DType {
  if (kind === "float") return isFloating(ref) ? ref : "float32";
  if (kind === "int") return ref === "bool" ? "int64" : ref;
  return ref;
}

export interface LoweredNode {
  /** The node as it will be dispatched. */
  readonly node: Node;
  /** The graph node it came from. */
  readonly source: Node;
  /** Rules applied on the way, outermost first. */
  readonly rules: readonly string[];
}

export interface RewriteContext {
  readonly source: Node;
  /** Options of the plan (TF32 for convolutions). */
  readonly allowTf32: boolean;
  typeOf(name: string): TensorType;
  /** A name no value uses yet. */
  fresh(base: string): string;
  /** A 0-d constant tensor (uploaded once when the runner is built); returns its value name. */
  scalarConstant(value: number, dtype: DType): string;
  /** Adds a node and lowers it again; returns its output names (fresh ones unless given). */
  emit(rule: string, op: string, args: Record<string, Arg>, outputs?: readonly string[]): string[];
  /** Adds a node exactly as given (no further rewriting). */
  keep(rule: string, node: Node): void;
  /** Binds `output` to the constant tensor `t` (the node computes nothing at run time). */
  bindConstant(output: string, t: Tensor): void;
}

export function tensorArg(name: string): Arg {
  return { kind: "tensor", name };
}

export const MAX_REWRITE_DEPTH = 8;

/** Collects the lowered nodes and constants of one segment; `lowerOne` is the per-node pipeline. */
export class SegmentRewriter {
  readonly nodes: LoweredNode[] = [];
  readonly constants: Record<string, Tensor> = {};
  private readonly types = new Map<string, TensorType>();
  private readonly used: Set<string>;
  private counter = 0;
  private root: Node | undefined;

  constructor(
    private readonly graphType: (name: string) => TensorType | undefined,
    usedNames: Iterable<string>,
    readonly allowTf32: boolean,
    private readonly lowerOne: (node: Node, cx: RewriteContext) => void,
  ) {
    this.used = new Set(usedNames);
  }

  typeOf(name: string): TensorType {
    const t = this.types.get(name) ?? this.graphType(name);
    if (!t) throw new TorchcError(`LibTorch fallback: value '${name}' has no type`, "graph.undefined-value");
    return t;
  }

  fresh(base: string): string {
    let name = base;
    while (this.used.has(name)) name = `${base}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  /** Lowers one graph node; throws RewriteRefused when no rule can make it dispatchable. */
  lower(node: Node): void {
    this.root = node;
    this.lowerAt(node, [], 0);
  }

  private lowerAt(node: Node, rules: readonly string[], depth: number): void {
    if (depth > MAX_REWRITE_DEPTH) refuse(`rewrites of ${node.op} did not settle`);
    const root = this.root ?? node;
    const cx: RewriteContext = {
      source: root,
      allowTf32: this.allowTf32,
      typeOf: (n) => this.typeOf(n),
      fresh: (b) => this.fresh(b),
      scalarConstant: (value, dtype) => this.addConstant(scalarTensor(dtype, value), `${root.name}_c`),
      emit: (rule, op, args, outputs) => {
        const made: Node = {
          name: this.fresh(`${root.name}_${op.split(".")[1] ?? "op"}`),
          op,
          args,
          outputs: [],
          meta: root.meta,
        };
        const types = inferNode(made, (n) => this.typeOf(n));
        const outs = outputs ? [...outputs] : types.map(() => this.fresh(`${root.name}_v`));
        outs.forEach((o, i) => {
          if (o !== "" && !this.graphType(o) && types[i]) this.types.set(o, types[i]);
        });
        this.lowerAt({ ...made, outputs: outs }, [...rules, rule], depth + 1);
        return outs;
      },
      keep: (rule, n) => {
        this.nodes.push({ node: n, source: root, rules: rule ? [...rules, rule] : [...rules] });
      },
      bindConstant: (output, t) => {
        this.constants[output] = t;
        if (!this.graphType(output)) this.types.set(output, { dtype: t.dtype, shape: t.shape });
      },
    };
    this.lowerOne(node, cx);
  }

  private addConstant(t: Tensor, base: string): string {
    const name = this.fresh(base);
    this.constants[name] = t;
    this.types.set(name, { dtype: t.dtype, shape: t.shape });
    return name;
  }
}

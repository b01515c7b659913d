import type { Arg, Node, TensorType, Weight } from "../../ir/graph.js";
import type { Tensor } from "../../ir/tensor.js";
import { inferOutputTypes } from "../op-catalogue.js";
import type { GraphView } from "./graph-view.js";
import type { BoundValue } from "./pattern.js";

/**
 * What a rewrite puts in place of the matched root node: new nodes (inserted where the root was), new
 * weights (folded constants), and for each root output the value that now stands for it. Root outputs
 * missing from `mapping` must be unused. Nodes the root consumed are pruned by the driver once unused.
 */
export interface Replacement {
  readonly nodes: readonly Node[];
  readonly values: Readonly<Record<string, TensorType>>;
  readonly weights: Readonly<Record<string, Weight>>;
  readonly mapping: Readonly<Record<string, string>>;
}

type ValueRef = string | BoundValue;
const nameOf = (v: ValueRef) => (typeof v === "string" ? v : v.name);

function isBoundValue(v: object): v is BoundValue {
  const t = (v as { type?: unknown }).type;
  return (
    typeof (v as { name?: unknown }).name === "string" && typeof t === "object" && t !== null && "dtype" in t
  );
}

/**
 * Collects the nodes and weights of one replacement. It is the only mutable object a rewrite touches, and
 * it lives for one callback; `replace()` returns a frozen Replacement. New nodes carry the root's
 * metadata, so error messages and traces still point at the user's source line.
 */
export class ReplacementBuilder {
  private readonly nodes: Node[] = [];
  private readonly values: Record<string, TensorType> = {};
  private readonly weights: Record<string, Weight> = {};
  private readonly taken = new Set<string>();

  constructor(
    private readonly graph: GraphView,
    private readonly root: Node,
  ) {}

  typeOf(v: ValueRef): TensorType {
    const name = nameOf(v);
    return this.values[name] ?? this.graph.typeOf(name);
  }

  /** A value or node name unused in the graph and in this replacement. */
  fresh(base: string): string {
    let name = base;
    for (let i = 1; this.graph.isNameTaken(name) || this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }

  /**
   * Adds a node and returns its output names. Output types are inferred by the op catalogue when not
   * given (pass them when the rewrite knows them, e.g. "same as the root's output").
   */
  nodeOutputs(op: string, args: Record<string, Arg>, types?: TensorType | readonly TensorType[]): string[] {
    const outTypes =
      types === undefined
        ? inferOutputTypes(op, args, (v) => this.typeOf(v))
        : "dtype" in types
          ? [types as TensorType]
          : (types as readonly TensorType[]);
    if (!outTypes)
      throw new Error(`rewrite of '${this.root.name}': cannot infer the output types of ${op}; pass them`);
    const name = this.fresh(op.split(".")[1] ?? "node");
    const outputs = outTypes.map((t, i) => {
      const v = this.fresh(outTypes.length === 1 ? name : `${name}_${i}`);
      this.values[v] = { dtype: t.dtype, shape: [...t.shape] };
      return v;
    });
    this.nodes.push({ name, op, args, outputs, meta: this.root.meta });
    return outputs;
  }

  /** Adds a single-output node and returns its output name. */
  node(op: string, args: Record<string, Arg>, type?: TensorType): string {
    return this.nodeOutputs(op, args, type === undefined ? undefined : [type])[0];
  }

  /** Adds a compile-time constant and returns its value name. */
  weight(base: string, tensor: Tensor, target = `folded:${this.root.name}`): string {
    const name = this.fresh(base);
    this.weights[name] = { kind: "constant", target, tensor };
    this.values[name] = { dtype: tensor.dtype, shape: [...tensor.shape] };
    return name;
  }

  /** Finishes: `v` replaces the root's first output, or a record maps several root outputs. */
  replace(v: ValueRef | Readonly<Record<string, ValueRef>>): Replacement {
    const mapping: Record<string, string> = {};
    if (typeof v === "string" || isBoundValue(v)) mapping[this.root.outputs[0]] = nameOf(v);
    else for (const [k, x] of Object.entries(v)) mapping[k] = nameOf(x);
    return Object.freeze({
      nodes: Object.freeze([...this.nodes]),
      values: Object.freeze({ ...this.values }),
      weights: Object.freeze({ ...this.weights }),
      mapping: Object.freeze(mapping),
    });
  }
}

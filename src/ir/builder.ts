import { freezeGraph } from "./frozen.js";
import type { Arg, Graph, Node, NodeMeta, TensorType, Weight } from "./graph.js";
import type { Tensor } from "./tensor.js";

/**
 * Assembles a graph step by step. The builder is the one mutable object; `build()` returns a frozen graph.
 * Output types come from the caller (frontends read them from the archive; passes use op shape inference).
 */
export class GraphBuilder {
  private readonly inputs: string[] = [];
  private outputs: string[] = [];
  private readonly nodes: Node[] = [];
  private readonly values: Record<string, TensorType> = {};
  private readonly weights: Record<string, Weight> = {};
  private readonly nodeNames = new Set<string>();
  private counter = 0;

  /** A name not yet used for a value or node, derived from `base`. */
  fresh(base: string): string {
    let name = base;
    while (name in this.values || this.nodeNames.has(name)) name = `${base}_${++this.counter}`;
    return name;
  }

  hasValue(name: string): boolean {
    return name in this.values;
  }

  typeOf(name: string): TensorType {
    const t = this.values[name];
    if (!t) throw new Error(`GraphBuilder: unknown value '${name}'`);
    return t;
  }

  addInput(name: string, type: TensorType): string {
    this.define(name, type);
    this.inputs.push(name);
    return name;
  }

  addWeight(name: string, weight: Weight): string {
    this.define(name, { dtype: weight.tensor.dtype, shape: weight.tensor.shape });
    this.weights[name] = weight;
    return name;
  }

  addConstant(name: string, tensor: Tensor): string {
    const n = this.fresh(name);
    return this.addWeight(n, { kind: "constant", target: n, tensor });
  }

  /** Appends a node whose outputs have the given types; returns the output names. */
  addNode(
    op: string,
    args: Record<string, Arg>,
    outputs: readonly { name: string; type: TensorType }[],
    meta: NodeMeta = {},
    nodeName?: string,
    subgraphs?: readonly Graph[],
  ): string[] {
    const name =
      nodeName && !this.nodeNames.has(nodeName)
        ? nodeName
        : this.fresh(nodeName ?? op.split(".")[1] ?? "node");
    this.nodeNames.add(name);
    for (const o of outputs) this.define(o.name, o.type);
    const node: Node = {
      name,
      op,
      args,
      outputs: outputs.map((o) => o.name),
      meta,
      ...(subgraphs ? { subgraphs } : {}),
    };
    this.nodes.push(node);
    return node.outputs.slice();
  }

  setOutputs(names: readonly string[]): void {
    this.outputs = [...names];
  }

  build(): Graph {
    return freezeGraph({
      inputs: [...this.inputs],
      outputs: [...this.outputs],
      nodes: [...this.nodes],
      values: { ...this.values },
      weights: { ...this.weights },
    });
  }

  private define(name: string, type: TensorType): void {
    if (name in this.values) throw new Error(`GraphBuilder: value '${name}' defined twice`);
    this.values[name] = { dtype: type.dtype, shape: [...type.shape] };
  }
}

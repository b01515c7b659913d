import type { Arg, Graph, Node, TensorType, Weight } from "../../ir/graph.js";
import { readsOf } from "../graph-reads.js";
import { argsWithDefaults } from "../op-catalogue.js";

/** Where a value comes from: the node that defines it and its position among that node's outputs. */
export interface Producer {
  readonly node: Node;
  readonly index: number;
}

/**
 * Read-only lookups over one graph version, built once per version: producers, users, types, weights.
 * Patterns and rewrites see the graph only through this.
 */
export class GraphIndex {
  private readonly producers = new Map<string, Producer>();
  private readonly users = new Map<string, Node[]>();
  private readonly positions = new Map<string, number>();
  private readonly outputSet: ReadonlySet<string>;
  private readonly names = new Set<string>();

  constructor(readonly graph: Graph) {
    this.outputSet = new Set(graph.outputs);
    for (const v of Object.keys(graph.values)) this.names.add(v);
    graph.nodes.forEach((node, position) => {
      this.names.add(node.name);
      this.positions.set(node.name, position);
      node.outputs.forEach((out, index) => {
        this.producers.set(out, { node, index });
      });
      for (const input of readsOf(node)) {
        const list = this.users.get(input);
        if (!list) this.users.set(input, [node]);
        else if (list[list.length - 1] !== node) list.push(node);
      }
    });
  }

  producerOf(value: string): Producer | undefined {
    return this.producers.get(value);
  }

  typeOf(value: string): TensorType {
    const t = this.graph.values[value];
    if (!t) throw new Error(`GraphIndex: value '${value}' has no type`);
    return t;
  }

  weightOf(value: string): Weight | undefined {
    return this.graph.weights[value];
  }

  /** Nodes that read `value`, each once, in graph order. */
  usersOf(value: string): readonly Node[] {
    return this.users.get(value) ?? [];
  }

  isGraphOutput(value: string): boolean {
    return this.outputSet.has(value);
  }

  /** True when `value` is read by nothing: no node and not a graph output. */
  isUnused(value: string): boolean {
    return this.usersOf(value).length === 0 && !this.isGraphOutput(value);
  }

  /** Exactly one reader, and that reader is a node (a graph output counts as a reader). */
  hasSingleUser(value: string): boolean {
    return this.usersOf(value).length === 1 && !this.isGraphOutput(value);
  }

  positionOf(node: Node): number {
    const p = this.positions.get(node.name);
    if (p === undefined) throw new Error(`GraphIndex: node '${node.name}' is not in this graph`);
    return p;
  }

  /** The node's arguments with schema defaults applied. */
  argsOf(node: Node): Readonly<Record<string, Arg>> {
    return argsWithDefaults(node);
  }

  /** Whether a name is taken by any value or node of this graph. */
  isNameTaken(name: string): boolean {
    return this.names.has(name);
  }
}

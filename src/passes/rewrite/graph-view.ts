import type { Arg, Node, TensorType, Weight } from "../../ir/graph.js";

/** Where a value comes from: the node that defines it and its position among that node's outputs. */
export interface Producer {
  readonly node: Node;
  readonly index: number;
}

/**
 * Read-only lookups over the graph a rule is matched against: producers, users, types, weights. Patterns
 * and rewrites see the graph only through this, so the driver can keep it current incrementally.
 */
export interface GraphView {
  producerOf(value: string): Producer | undefined;
  /** The value's static type; throws for an unknown value. */
  typeOf(value: string): TensorType;
  hasValue(value: string): boolean;
  weightOf(value: string): Weight | undefined;
  isGraphInput(value: string): boolean;
  isGraphOutput(value: string): boolean;
  /** Nodes that read `value`, each once, in graph order. */
  usersOf(value: string): readonly Node[];
  /** Read by nothing: no node and not a graph output. */
  isUnused(value: string): boolean;
  /** Exactly one reader, and that reader is a node (a graph output counts as a reader). */
  hasSingleUser(value: string): boolean;
  /** A number that increases along graph order (not an index: only comparisons are meaningful). */
  orderOf(node: Node): number;
  /** The node's arguments with schema defaults applied. */
  argsOf(node: Node): Readonly<Record<string, Arg>>;
  /** Whether a name is taken by any value or node. */
  isNameTaken(name: string): boolean;
}

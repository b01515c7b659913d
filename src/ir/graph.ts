import type { DType } from "./dtype.js";
import type { Shape, Tensor } from "./tensor.js";

/** The static type of a value: every value in a torchc graph is a tensor (a scalar is a 0-d tensor). */
export interface TensorType {
  readonly dtype: DType;
  readonly shape: Shape;
}

/**
 * One argument of an aten call, as the op's schema names it. Tensor arguments refer to values by name;
 * everything else is a literal, so a node is self-contained and passes can compare nodes structurally.
 */
export type Arg =
  | { readonly kind: "tensor"; readonly name: string }
  | { readonly kind: "tensors"; readonly names: readonly (string | null)[] }
  | { readonly kind: "none" }
  | { readonly kind: "int"; readonly value: number }
  | { readonly kind: "float"; readonly value: number }
  | { readonly kind: "bool"; readonly value: boolean }
  | { readonly kind: "ints"; readonly value: readonly number[] }
  | { readonly kind: "floats"; readonly value: readonly number[] }
  | { readonly kind: "bools"; readonly value: readonly boolean[] }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "dtype"; readonly value: DType }
  | { readonly kind: "device"; readonly value: string }
  | { readonly kind: "layout"; readonly value: string }
  | { readonly kind: "memoryFormat"; readonly value: string };

export type ArgKind = Arg["kind"];

/** Where a node came from in the user's program, for messages and reports. */
export interface NodeMeta {
  /** The full Python stack trace PyTorch recorded, if any. */
  readonly stackTrace?: string;
  /** The innermost user frame, `file:line in fn` + the source line, extracted from the stack trace. */
  readonly sourceLocation?: string;
  /** The nn.Module path that produced the node, e.g. `blocks.1.0.conv_dw`. */
  readonly modulePath?: string;
}

export interface Node {
  /** Unique within its graph. */
  readonly name: string;
  /** The op overload in dotted form: `aten.conv2d.default`, `aten.add.Tensor`. */
  readonly op: string;
  /** Arguments by schema name, in schema order. */
  readonly args: Readonly<Record<string, Arg>>;
  /** Names of the values this node defines, in the op's return order. */
  readonly outputs: readonly string[];
  readonly meta: NodeMeta;
  /** Nested graphs of control-flow nodes (`prim.If`: [then, else]; `prim.Loop`: [body]). */
  readonly subgraphs?: readonly Graph[];
}

export type WeightKind = "parameter" | "buffer" | "constant";

export interface Weight {
  readonly kind: WeightKind;
  /** The fully qualified name in the original module (`features.0.weight`). */
  readonly target: string;
  readonly tensor: Tensor;
}

/**
 * A dataflow graph in topological order. Values are defined exactly once: as a user input, as a weight,
 * or as a node output. Graphs are never mutated; a pass returns a new graph.
 */
export interface Graph {
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly nodes: readonly Node[];
  readonly values: Readonly<Record<string, TensorType>>;
  readonly weights: Readonly<Record<string, Weight>>;
}

export function tensorArg(name: string): Arg {
  return { kind: "tensor", name };
}

/** Value names a node reads, in argument order (duplicates kept). */
export function nodeInputs(node: Node): string[] {
  const out: string[] = [];
  for (const arg of Object.values(node.args)) {
    if (arg.kind === "tensor") out.push(arg.name);
    else if (arg.kind === "tensors") for (const n of arg.names) if (n !== null) out.push(n);
  }
  return out;
}

/** Replaces every use of value names in a node's arguments (a pure function of the node). */
export function renameNodeInputs(node: Node, rename: (name: string) => string): Node {
  let changed = false;
  const args: Record<string, Arg> = {};
  for (const [k, arg] of Object.entries(node.args)) {
    if (arg.kind === "tensor") {
      const n = rename(arg.name);
      if (n !== arg.name) changed = true;
      args[k] = n === arg.name ? arg : { kind: "tensor", name: n };
    } else if (arg.kind === "tensors") {
      const names = arg.names.map((x) => (x === null ? null : rename(x)));
      if (names.some((x, i) => x !== arg.names[i])) changed = true;
      args[k] = { kind: "tensors", names };
    } else {
      args[k] = arg;
    }
  }
  return changed ? { ...node, args } : node;
}

export function formatLocation(node: Node): string {
  const parts = [`node '${node.name}' (${node.op})`];
  if (node.meta.modulePath) parts.push(`in module '${node.meta.modulePath}'`);
  if (node.meta.sourceLocation) parts.push(`at ${node.meta.sourceLocation}`);
  return parts.join(" ");
}

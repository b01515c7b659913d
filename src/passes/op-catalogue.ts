// The passes' one door into src/ops: schema defaults, shape inference and reference evaluation.
import type { Arg, Node, TensorType } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import { evaluateNode, getOp, withDefaults } from "../ops/index.js";

/**
 * A node's arguments with the schema's defaults filled in, so patterns see `stride=[1, 1]` whether or
 * not the exporter wrote it. Unknown ops and records that do not fit the schema are returned as they are.
 */
export function argsWithDefaults(node: Node): Readonly<Record<string, Arg>> {
  let args = defaultsCache.get(node);
  if (!args) {
    args = node.args;
    if (getOp(node.op)) {
      try {
        args = Object.freeze(withDefaults(node.op, node.args));
      } catch {
        // A record that does not fit the schema is matched as written; the verifier reports it elsewhere.
      }
    }
    defaultsCache.set(node, args);
  }
  return args;
}

// Nodes are immutable, so their completed argument records can be cached by identity.
const defaultsCache = new WeakMap<Node, Readonly<Record<string, Arg>>>();

/** Output types of `op` applied to `args`, or undefined for an op the catalogue does not know. */
export function inferOutputTypes(
  op: string,
  args: Readonly<Record<string, Arg>>,
  typeOf: (value: string) => TensorType,
): TensorType[] | undefined {
  const def = getOp(op);
  return def ? def.infer(def.parse(args), typeOf) : undefined;
}

/** Evaluates a node with the reference implementation, or undefined for an op the catalogue does not know. */
export function evaluateOutputs(node: Node, read: (value: string) => Tensor): Tensor[] | undefined {
  return getOp(node.op) ? evaluateNode(node, read) : undefined;
}

export function isKnownOp(op: string): boolean {
  return getOp(op) !== undefined;
}

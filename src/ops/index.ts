import { TorchcError, UnsupportedOpError } from "../errors.js";
import type { Arg, Node, TensorType } from "../ir/graph.js";
import { formatLocation } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import { ACTIVATION_OPS } from "./activation.js";
import { ATTENTION_OPS } from "./attention.js";
import { BATCHNORM_OPS } from "./batchnorm.js";
import { COMPARE_OPS } from "./compare.js";
import { COMPOSITE_OPS } from "./composite.js";
import { CONV_OPS } from "./conv.js";
import { CREATION_OPS } from "./creation.js";
import { ELEMENTWISE_OPS } from "./elementwise.js";
import { INDEXING_OPS } from "./indexing.js";
import { INPLACE_OPS, isInplaceOp, MUTATED_ARG } from "./inplace.js";
import { JOIN_OPS } from "./join.js";
import { MATMUL_OPS } from "./matmul.js";
import { MISC_OPS } from "./misc.js";
import { NORM_OPS } from "./norm.js";
import { PAD_OPS } from "./pad.js";
import { POOL_OPS } from "./pool.js";
import { QUANTIZE_OPS } from "./quantize.js";
import { QUANTIZED_LAYER_OPS } from "./quantized-layers.js";
import { REDUCE_OPS } from "./reduce.js";
import { RESIZE_OPS } from "./resize.js";
import { OpArgError } from "./schema.js";
import { SOFTMAX_OPS } from "./softmax.js";
import type { OpDef, TypeOf, ValueOf } from "./types.js";
import { VIEW_OPS } from "./view.js";

export { type InterpretOptions, interpret } from "./interpret.js";
export { ArgReader, OpArgError, type Operand, parseSchema, type ScalarValue } from "./schema.js";
export type { ArgSpec, OpDef, SchemaType, TypeOf, ValueOf } from "./types.js";

/** The one op table: every aten overload torchc can type and run on the CPU, keyed by dotted overload name. */
export const OPS = Object.freeze({
  ...CONV_OPS,
  ...BATCHNORM_OPS,
  ...MATMUL_OPS,
  ...ELEMENTWISE_OPS,
  ...COMPARE_OPS,
  ...ACTIVATION_OPS,
  ...REDUCE_OPS,
  ...SOFTMAX_OPS,
  ...NORM_OPS,
  ...POOL_OPS,
  ...VIEW_OPS,
  ...JOIN_OPS,
  ...INDEXING_OPS,
  ...ATTENTION_OPS,
  ...CREATION_OPS,
  ...PAD_OPS,
  ...RESIZE_OPS,
  ...MISC_OPS,
  ...COMPOSITE_OPS,
  ...INPLACE_OPS,
  ...QUANTIZE_OPS,
  ...QUANTIZED_LAYER_OPS,
});

export type OpName = keyof typeof OPS;
export const OP_NAMES: readonly OpName[] = Object.freeze(Object.keys(OPS).sort() as OpName[]);

export function isOpName(s: string): s is OpName {
  return Object.hasOwn(OPS, s);
}

export function getOp(name: string): OpDef<unknown> | undefined {
  return isOpName(name) ? (OPS[name] as OpDef<unknown>) : undefined;
}

/** The functional op an in-place op stands for (`aten.relu_.default` → `aten.relu.default`). */
export function functionalVariant(name: string): OpName | undefined {
  const def = getOp(name);
  return def && isInplaceOp(def) ? def.functional : undefined;
}

/**
 * The value an in-place node overwrites (its `self` argument), or undefined for functional ops. After such a
 * node, readers of that value must see the node's result; `interpret` does this.
 */
export function mutatedValue(node: Node): string | undefined {
  const def = getOp(node.op);
  if (!def || !isInplaceOp(def)) return undefined;
  const a = node.args[MUTATED_ARG];
  return a?.kind === "tensor" ? a.name : undefined;
}

function resolve(op: OpDef<unknown> | string): OpDef<unknown> {
  if (typeof op !== "string") return op;
  const def = getOp(op);
  if (!def) throw new UnsupportedOpError(`op '${op}' is not in torchc's op table`, op);
  return def;
}

/**
 * Binds call arguments to schema names: positional ones in schema order (TorchScript passes keyword-only
 * arguments positionally too), then keyword ones. The result is in schema order and holds only what was passed.
 */
export function normalizeArgs(
  op: OpDef<unknown> | string,
  positional: readonly Arg[],
  named: Readonly<Record<string, Arg>> = {},
): Record<string, Arg> {
  const def = resolve(op);
  if (positional.length > def.schema.length) {
    throw new OpArgError(
      def.name,
      def.schema[def.schema.length - 1]?.name ?? "(none)",
      `${positional.length} positional arguments for ${def.schema.length} parameters`,
    );
  }
  const bound: Record<string, Arg> = {};
  positional.forEach((a, i) => {
    bound[def.schema[i].name] = a;
  });
  for (const [k, a] of Object.entries(named)) {
    if (!def.schema.some((s) => s.name === k)) throw new OpArgError(def.name, k, "not in the schema");
    if (k in bound) throw new OpArgError(def.name, k, "given both positionally and by name");
    bound[k] = a;
  }
  const out: Record<string, Arg> = {};
  for (const s of def.schema) if (s.name in bound) out[s.name] = bound[s.name];
  return out;
}

/** Every schema argument, the given ones as they are and the rest at their defaults (required ones must be given). */
export function withDefaults(
  op: OpDef<unknown> | string,
  args: Readonly<Record<string, Arg>>,
): Record<string, Arg> {
  const def = resolve(op);
  const out: Record<string, Arg> = {};
  for (const k of Object.keys(args))
    if (!def.schema.some((s) => s.name === k)) throw new OpArgError(def.name, k, "not in the schema");
  for (const s of def.schema) {
    const a = args[s.name] ?? s.default;
    if (a === undefined) throw new OpArgError(def.name, s.name, "required but missing");
    out[s.name] = a;
  }
  return out;
}

function nodeOp(node: Node): OpDef<unknown> {
  const def = getOp(node.op);
  if (!def)
    throw new UnsupportedOpError(
      `no reference implementation for ${node.op}: ${formatLocation(node)}`,
      node.op,
    );
  return def;
}

/** Re-throws argument and shape errors with the node's location, keeping their code. */
function located<T>(node: Node, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TorchcError && !e.message.includes(formatLocation(node))) {
      e.message = `${e.message} (${formatLocation(node)})`;
    }
    throw e;
  }
}

/** Output types of a node; control-flow nodes take them from their blocks (If: the then-block; Loop: the body). */
export function inferNode(node: Node, typeOf: TypeOf): TensorType[] {
  if (node.op === "prim.If" || node.op === "prim.Loop") {
    const sub = node.subgraphs?.[0];
    if (!sub)
      throw new TorchcError(`${node.op} has no blocks: ${formatLocation(node)}`, "graph.control-flow");
    const outs = node.op === "prim.If" ? sub.outputs : sub.outputs.slice(1);
    return outs.map((o) => sub.values[o] ?? typeOf(o));
  }
  const def = nodeOp(node);
  return located(node, () => def.infer(def.parse(node.args), typeOf));
}

export function evaluateNode(node: Node, valueAt: ValueOf): Tensor[] {
  const def = nodeOp(node);
  return located(node, () => def.evaluate(def.parse(node.args), valueAt));
}

/**
 * Rewrites that make a node callable on one GPU before any Scalar handling: in-place ops become their
 * functional op (the runner rebinds the mutated value, so segment inputs, weights and constants are never
 * written), device moves become dtype casts, TorchScript-only `aten::to` overloads become dispatcher ones,
 * and assertion-only nodes are dropped. Each entry says why.
 */
import type { Arg, Node } from "../../ir/graph.js";
import { functionalVariant, getOp, inferNode, withDefaults } from "../../ops/index.js";
import { MUTATED_ARG } from "../../ops/inplace.js";
import { emitFilled } from "./filled.js";
import { type RewriteContext, refuse, tensorArg } from "./rewrite-context.js";

export interface OpRewrite {
  readonly reason: string;
  readonly rewrite: (node: Node, cx: RewriteContext) => void;
}

function arg(node: Node, name: string): Arg {
  return withDefaults(node.op, node.args)[name];
}

function selfName(node: Node, name = "self"): string {
  const a = node.args[name];
  if (a?.kind !== "tensor") refuse(`argument '${name}' must be a tensor`);
  return a.name;
}

/** `to` without a device move: a cast (or the tensor itself when no dtype is given). */
function castOrAlias(node: Node, cx: RewriteContext, dtype: Arg, copy: Arg | undefined, rule: string): void {
  const self = tensorArg(selfName(node));
  const copying = copy?.kind === "bool" && copy.value;
  if (dtype.kind === "none") {
    cx.emit(rule, copying ? "aten.clone.default" : "aten.alias.default", { self }, node.outputs);
    return;
  }
  cx.emit(rule, "aten.to.dtype", { self, dtype, ...(copy ? { copy } : {}) }, node.outputs);
}

/** Factories with no tensor input take their device from a Device argument, which cannot be encoded. */
function filledWith(value: number): OpRewrite {
  return {
    reason:
      "no tensor input to take a device from: clone(expand(0-d GPU constant, shape)) of the static output type",
    rewrite: (node, cx) =>
      emitFilled(cx, `${node.op}→filled`, value, cx.typeOf(node.outputs[0]), node.outputs),
  };
}

export const OP_REWRITES: Readonly<Record<string, OpRewrite>> = {
  "aten.zeros.default": filledWith(0),
  "aten.ones.default": filledWith(1),
  // Its contents are undefined: zeros are as good as any.
  "aten.empty.memory_format": filledWith(0),
  "aten._assert_tensor_metadata.default": {
    reason:
      "an export-time assertion with no result; its device and strides describe the exporting process, not this GPU",
    rewrite: () => {},
  },
  "aten.to.device": {
    reason:
      "the segment runs on one GPU: moving to a device is only a cast (the Device argument cannot be encoded)",
    rewrite: (node, cx) => castOrAlias(node, cx, arg(node, "dtype"), arg(node, "copy"), "to.device→to.dtype"),
  },
  "aten.to.prim_Device": {
    reason:
      "a TorchScript-only overload (not in the c10 dispatcher); on one GPU it is a cast or the tensor itself",
    rewrite: (node, cx) =>
      castOrAlias(node, cx, arg(node, "dtype"), arg(node, "copy"), "to.prim_Device→to.dtype"),
  },
  "aten.to.prim_dtype": {
    reason: "a TorchScript-only overload (not in the c10 dispatcher); `to.dtype` computes the same",
    rewrite: (node, cx) =>
      castOrAlias(node, cx, arg(node, "dtype"), arg(node, "copy"), "to.prim_dtype→to.dtype"),
  },
  "aten._scaled_dot_product_flash_attention_for_cpu.default": {
    reason: "a CPU-only kernel",
    rewrite: () => refuse("aten._scaled_dot_product_flash_attention_for_cpu has no CUDA kernel"),
  },
};

/**
 * An in-place node as its functional op, cast back to the mutated tensor's dtype where the functional result
 * differs (in-place ops compute into `self`). Returns false for functional nodes.
 */
export function functionalize(node: Node, cx: RewriteContext): boolean {
  const functional = functionalVariant(node.op);
  if (!functional) return false;
  const def = getOp(functional);
  if (!def) refuse(`${functional} is not in the op table`);
  const first = def.schema[0].name;
  const args: Record<string, Arg> = {};
  for (const [k, v] of Object.entries(node.args)) args[k === MUTATED_ARG ? first : k] = v;
  const [result] = inferNode({ ...node, op: functional, args }, (n) => cx.typeOf(n));
  const want = cx.typeOf(node.outputs[0]);
  if (result.dtype === want.dtype) {
    cx.emit("functionalize", functional, args, node.outputs);
  } else {
    const [t] = cx.emit("functionalize", functional, args);
    cx.emit(
      "functionalize (cast to self's dtype)",
      "aten.to.dtype",
      { self: tensorArg(t), dtype: { kind: "dtype", value: want.dtype } },
      node.outputs,
    );
  }
  return true;
}

/**
 * Rewrites that make a node callable on one GPU before any Scalar handling: in-place ops become their
 * functional op (the runner rebinds the mutated value, so segment inputs, weights and constants are never
 * written), device moves become dtype casts, TorchScript-only `aten::to` overloads become dispatcher ones,
 * and assertion-only nodes are dropped. Each entry says why.
 */
import type { Arg, Node } from "../../ir/graph.js";
import { functionalVariant, getOp, inferNode, withDefaults } from "../../ops/index.js";
import { MUTATED_ARG } from "../../ops/inplace.js";
import { type Rule, ruleSet } from "../../passes/rewrite/rule.js";
import { emitFilled } from "./filled.js";
import { type LoweringContext, loweringRule } from "./lowering-rule.js";
import { refuse, tensorArg } from "./rewrite-context.js";

function arg(node: Node, name: string): Arg {
  return withDefaults(node.op, node.args)[name];
}

function selfName(node: Node, name = "self"): string {
  const a = node.args[name];
  if (a?.kind !== "tensor") refuse(`argument '${name}' must be a tensor`);
  return a.name;
}

/** `to` without a device move: a cast (or the tensor itself when no dtype is given). */
function castOrAlias(node: Node, cx: LoweringContext): void {
  const dtype = arg(node, "dtype");
  const copy = arg(node, "copy");
  const self = tensorArg(selfName(node));
  const copying = copy?.kind === "bool" && copy.value;
  if (dtype.kind === "none") {
    cx.emit(copying ? "aten.clone.default" : "aten.alias.default", { self }, node.outputs);
    return;
  }
  cx.emit("aten.to.dtype", { self, dtype, ...(copy ? { copy } : {}) }, node.outputs);
}

/** The fill value of factories with no tensor input (empty's contents are undefined: zeros are as good). */
const FACTORY_FILL: Readonly<Record<string, number>> = {
  "aten.zeros.default": 0,
  "aten.ones.default": 1,
  "aten.empty.memory_format": 0,
};

export const OP_RULES: readonly Rule[] = ruleSet(
  loweringRule({
    name: "factory→filled",
    doc: "no tensor input to take a device from (the Device argument cannot be encoded): clone(expand(0-d GPU constant, shape)) of the static output type",
    ops: Object.keys(FACTORY_FILL),
    lower: (node, cx) => emitFilled(cx, FACTORY_FILL[node.op], cx.typeOf(node.outputs[0]), node.outputs),
  }),
  loweringRule({
    name: "drop _assert_tensor_metadata",
    doc: "an export-time assertion with no result; its device and strides describe the exporting process, not this GPU",
    ops: "aten._assert_tensor_metadata.default",
    lower: () => {},
  }),
  loweringRule({
    name: "to.device→to.dtype",
    doc: "the segment runs on one GPU: moving to a device is only a cast (the Device argument cannot be encoded)",
    ops: "aten.to.device",
    lower: castOrAlias,
  }),
  loweringRule({
    name: "to.prim_Device→to.dtype",
    doc: "a TorchScript-only overload (not in the c10 dispatcher); on one GPU it is a cast or the tensor itself",
    ops: "aten.to.prim_Device",
    lower: castOrAlias,
  }),
  loweringRule({
    name: "to.prim_dtype→to.dtype",
    doc: "a TorchScript-only overload (not in the c10 dispatcher); `to.dtype` computes the same",
    ops: "aten.to.prim_dtype",
    lower: castOrAlias,
  }),
  loweringRule({
    name: "refuse CPU-only flash attention",
    doc: "a CPU-only kernel",
    ops: "aten._scaled_dot_product_flash_attention_for_cpu.default",
    lower: () => refuse("aten._scaled_dot_product_flash_attention_for_cpu has no CUDA kernel"),
  }),
);

/**
 * An in-place node as its functional op, cast back to the mutated tensor's dtype where the functional result
 * differs (in-place ops compute into `self`).
 */
export const FUNCTIONALIZE: Rule = loweringRule({
  name: "functionalize",
  doc: "in-place op → its functional op (the runner rebinds the mutated value), cast back to self's dtype where they differ",
  lower: (node, cx) => {
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
      cx.emit(functional, args, node.outputs);
    } else {
      const [t] = cx.emit(functional, args);
      cx.emit(
        "aten.to.dtype",
        { self: tensorArg(t), dtype: { kind: "dtype", value: want.dtype } },
        node.outputs,
      );
    }
  },
});

/**
 * FX graphs put Python numbers straight into Tensor slots (`aten.add.Tensor(x, 3)`, `mul.Tensor(x, 0.5)`).
 * PyTorch wraps such a number into a 0-d tensor whose dtype never raises the other operand's dtype within its
 * category; a 0-d constant of `wrappedDtype(...)` on the GPU behaves the same, so the node is rewritten to read
 * one (uploaded once with the segment's weights).
 */
import type { DType } from "../../ir/dtype.js";
import type { Arg, Node } from "../../ir/graph.js";
import type { LoweringContext } from "./lowering-rule.js";
import { callSchema } from "./op-schema.js";
import { scalarOf, tensorArg, wrappedDtype } from "./rewrite-context.js";

/** Arguments that select rather than compute (a condition or mask): they do not decide the compute dtype. */
const SELECTORS = new Set(["condition", "mask"]);

/** The dtype a number in `node` is promoted against: another tensor operand's, else the node's result. */
export function referenceDtype(node: Node, cx: LoweringContext, except?: string): DType {
  const found = callSchema(node.op);
  for (const s of "schema" in found ? found.schema : []) {
    if (s.name === except || SELECTORS.has(s.name) || !s.type.startsWith("Tensor")) continue;
    const a = node.args[s.name];
    if (a?.kind === "tensor") return cx.typeOf(a.name).dtype;
  }
  return cx.typeOf(node.outputs[0]).dtype;
}

/** A 0-d constant standing for the number in `a` next to `node`'s other operands; its value name. */
export function numberConstant(node: Node, cx: LoweringContext, a: Arg, except?: string): string | undefined {
  const s = scalarOf(a);
  if (!s) return undefined;
  return cx.scalarConstant(s.value, wrappedDtype(s.kind, referenceDtype(node, cx, except)));
}

/** `node` with every number in a Tensor/Tensor? slot replaced by a 0-d constant, or undefined if it has none. */
export function replaceNumberOperands(node: Node, cx: LoweringContext): Node | undefined {
  const def = callSchema(node.op);
  if (!("schema" in def)) return undefined;
  let args: Record<string, Arg> | undefined;
  for (const s of def.schema) {
    if (s.type !== "Tensor" && s.type !== "Tensor?") continue;
    const a = node.args[s.name];
    if (!a || !scalarOf(a)) continue;
    const c = numberConstant(node, cx, a, s.name);
    if (c === undefined) continue;
    args ??= { ...node.args };
    args[s.name] = tensorArg(c);
  }
  return args ? { ...node, args } : undefined;
}

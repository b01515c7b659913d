import { functionalVariant, OP_NAMES, type OpName } from "../ops/index.js";
import { cast } from "./impl/tensors.js";
import type { AnyCandidate, ConverterCandidate } from "./types.js";

/**
 * Candidates for in-place overloads (`relu_`, `add_.Tensor`, …), derived from their functional op's: the
 * catalogue parses an in-place node into the functional op's record, and the result is cast to the mutated
 * tensor's dtype. The partitioner rewrites later reads of the mutated value to the node's result
 * (see partition/functionalize.ts), so inside an engine an in-place node is just a functional one.
 */
export function inplaceCandidates(functional: readonly AnyCandidate[]): AnyCandidate[] {
  const byOp = new Map<string, AnyCandidate[]>();
  for (const c of functional) byOp.set(c.op, [...(byOp.get(c.op) ?? []), c]);
  const out: AnyCandidate[] = [];
  for (const op of OP_NAMES) {
    const f = functionalVariant(op);
    if (!f) continue;
    for (const c of byOp.get(f) ?? []) {
      // The records are the same type (the in-place def reuses the functional parse); TypeScript cannot see it.
      const base = c as ConverterCandidate<OpName>;
      const derived: ConverterCandidate<OpName> = {
        ...base,
        op,
        notes: `in-place form of ${f}${base.notes ? `; ${base.notes}` : ""}`,
        convert: (node, args, net) =>
          base
            .convert(node, args, net)
            .map((t, i) => (t === null ? null : cast(net.net, t, net.typeOf(node.outputs[i]).dtype))),
      };
      out.push(Object.freeze(derived) as AnyCandidate);
    }
  }
  return out;
}

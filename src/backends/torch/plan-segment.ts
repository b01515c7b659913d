/**
 * Plans a whole fallback segment for LibTorch: every node is lowered by the rule set `libtorch-lowering`
 * (lowering-rules.ts: op rewrites, in-place → functional, numbers in Tensor slots → 0-d constants, Scalar
 * rewrites, convolutions with TF32 off) and then planned with planDispatch. Pure: the result names the constants to upload and the dispatcher calls to make, in order.
 * Every node that cannot be run is reported with its location and reason, before any native call.
 */
import { TorchcError, UnsupportedOpError } from "../../errors.js";
import type { Graph, Node, TensorType } from "../../ir/graph.js";
import { formatLocation, renameNodeInputs } from "../../ir/graph.js";
import type { Tensor } from "../../ir/tensor.js";
import { mutatedValue } from "../../ops/index.js";
import type { Trace } from "../../passes/rewrite/trace.js";
import type { DispatchPlan } from "./encoded-arg.js";
import { isUnsupported } from "./encoded-arg.js";
import { libtorchLowering } from "./lowering-rules.js";
import { planDispatch } from "./plan-dispatch.js";
import { RewriteRefused, SegmentRewriter } from "./rewrite-context.js";

export interface FallbackPlanOptions {
  /** Let cuDNN convolutions use TF32 (PyTorch's default). Off by default: fp32 results within 1e-4 of CPU. */
  readonly allowTf32?: boolean;
}

export interface PlanStep {
  /** The node as dispatched (after rewrites). */
  readonly node: Node;
  /** The graph node it implements. */
  readonly source: Node;
  /** Rewrite rules applied on the way. */
  readonly rules: readonly string[];
  readonly call: DispatchPlan;
}

export interface PlanOutput {
  /** The segment output's name. */
  readonly name: string;
  /** The value holding it at the end (differs after an in-place op rebinds the name). */
  readonly value: string;
  readonly type: TensorType;
}

export interface FallbackPlan {
  readonly steps: readonly PlanStep[];
  /** Constants made by rewrites (0-d scalars, folded creation ops): uploaded once with the weights. */
  readonly constants: Readonly<Record<string, Tensor>>;
  readonly inputs: readonly { name: string; type: TensorType }[];
  readonly weights: readonly string[];
  readonly outputs: readonly PlanOutput[];
  /** Every lowering rule that fired (the `libtorch-lowering` pass), for `--trace-passes`. */
  readonly trace: Trace;
}

export interface UnsupportedNode {
  readonly node: Node;
  readonly reason: string;
}

/** Plans `graph` (a segment's standalone graph), or lists every node that cannot run on LibTorch. */
export function planFallback(
  graph: Graph,
  opts: FallbackPlanOptions = {},
): FallbackPlan | { readonly unsupported: readonly UnsupportedNode[] } {
  const unsupported: UnsupportedNode[] = [];
  const used = [
    ...Object.keys(graph.values),
    ...Object.keys(graph.weights),
    ...graph.nodes.map((n) => n.name),
  ];
  const rw = new SegmentRewriter((n) => graph.values[n], used, libtorchLowering(opts.allowTf32 === true));
  // In-place ops: later readers of the mutated value (and of earlier results aliasing it) see the new result.
  const rename = new Map<string, string>();
  const aliases = new Map<string, Set<string>>();
  for (const original of graph.nodes) {
    const node = rename.size ? renameNodeInputs(original, (x) => rename.get(x) ?? x) : original;
    try {
      rw.lower(node);
    } catch (e) {
      if (!(e instanceof RewriteRefused || e instanceof TorchcError)) throw e;
      unsupported.push({ node: original, reason: e.message });
    }
    const mutated = mutatedValue(original);
    const result = original.outputs[0];
    if (mutated !== undefined && result) {
      const group = aliases.get(mutated) ?? new Set([mutated]);
      group.add(result);
      for (const m of group) {
        aliases.set(m, group);
        if (m !== result) rename.set(m, result);
      }
    }
  }
  const steps: PlanStep[] = [];
  for (const lowered of rw.nodes) {
    const call = planDispatch(lowered.node, { typeOf: (n) => graph.values[n] });
    if (isUnsupported(call)) unsupported.push({ node: lowered.source, reason: call.unsupported });
    else steps.push({ ...lowered, call });
  }
  if (unsupported.length > 0) return { unsupported };
  return {
    steps,
    constants: rw.constants,
    inputs: graph.inputs.map((name) => ({ name, type: graph.values[name] })),
    weights: Object.keys(graph.weights),
    outputs: graph.outputs.map((name) => ({
      name,
      value: rename.get(name) ?? name,
      type: graph.values[name],
    })),
    trace: rw.trace(),
  };
}

/** planFallback, throwing one UnsupportedOpError that lists every node LibTorch cannot run here. */
export function planFallbackOrThrow(
  graph: Graph,
  opts: FallbackPlanOptions = {},
  where = "LibTorch fallback",
): FallbackPlan {
  const plan = planFallback(graph, opts);
  if ("steps" in plan) return plan;
  const lines = plan.unsupported.map((u) => `  ${formatLocation(u.node)}: ${u.reason}`);
  throw new UnsupportedOpError(
    `${where}: ${plan.unsupported.length} node(s) cannot run through PyTorch's stable C shim:\n${lines.join("\n")}`,
    plan.unsupported[0].node.op,
  );
}

import type { Graph } from "../ir/graph.js";
import { rewriteToFixedPoint } from "./rewrite/driver.js";
import type { RuleSet } from "./rewrite/rule.js";
import type { TraceRecorder } from "./rewrite/trace.js";

/** What every pass gets besides the graph: the trace it records its changes into. */
export interface PassContext {
  readonly trace: TraceRecorder;
}

/** One named stage of the lowering pipeline: a pure function from graph to graph. */
export interface Pass {
  readonly name: string;
  /** One line, shown by `torchc passes` and in docs. */
  readonly doc: string;
  run(graph: Graph, ctx: PassContext): Graph;
}

/** A pass that runs a rule set to a fixed point (see rewriteToFixedPoint for the traversal order). */
export function rulePass(
  name: string,
  doc: string,
  rules: RuleSet,
  options: { maxSteps?: number } = {},
): Pass {
  return Object.freeze({
    name,
    doc,
    rules,
    run: (graph: Graph, ctx: PassContext) =>
      rewriteToFixedPoint(graph, rules, { pass: name, trace: ctx.trace, ...options }),
  });
}

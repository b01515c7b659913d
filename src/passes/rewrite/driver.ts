import { TorchcError } from "../../errors.js";
import type { Graph, Node } from "../../ir/graph.js";
import type { GraphView } from "./graph-view.js";
import type { Rule, RuleSet } from "./rule.js";
import type { TraceRecorder } from "./trace.js";
import { WorkingGraph } from "./working-graph.js";

export interface RewriteOptions {
  /** Name recorded in the trace. */
  readonly pass?: string;
  readonly trace?: TraceRecorder;
  /** Most rewrites before giving up (a rule set that never settles is a bug). Default: 10 000 + 20 per node. */
  readonly maxSteps?: number;
  /**
   * Names taken outside the graph being rewritten (a caller rewriting one node of a bigger graph at a time):
   * new values and nodes never get them.
   */
  readonly reservedNames?: (name: string) => boolean;
}

/** The rule set keeps rewriting: almost always two rules undoing each other. */
export class RewriteLimitError extends TorchcError {
  constructor(pass: string, steps: number, recent: readonly string[]) {
    super(
      `pass '${pass}' did not settle after ${steps} rewrites; last rules fired: ${recent.join(", ")}`,
      "passes.no-fixed-point",
    );
    this.name = "RewriteLimitError";
  }
}

/** Rules of a set by the root op they can match; rules on any op are merged in, keeping list order. */
function indexByRootOp(rules: RuleSet): (op: string) => readonly Rule[] {
  const cache = new Map<string, readonly Rule[]>();
  return (op) => {
    let list = cache.get(op);
    if (!list) {
      list = rules.filter((r) => r.pattern.ops === undefined || r.pattern.ops.includes(op));
      cache.set(op, list);
    }
    return list;
  };
}

/**
 * Applies a rule set until no rule matches anywhere (a fixed point).
 *
 * Traversal: forward sweeps in topological (graph) order. At each node the rules whose root op fits are
 * tried in list order and the first replacement wins; the sweep then continues at the first new node, so
 * a replacement is itself rewritten before later nodes (relu(relu(relu(x))) folds in one sweep). A rewrite
 * can enable matches at earlier nodes (it changes how often a value is used), so sweeps repeat until one
 * changes nothing.
 *
 * Rules never mutate anything: they return Replacements. The driver applies them to private bookkeeping
 * (WorkingGraph) in time proportional to each replacement, and builds one fresh frozen graph at the end;
 * the input graph is never touched, and comes back as is when no rule fired.
 */
export function rewriteToFixedPoint(graph: Graph, rules: RuleSet, options: RewriteOptions = {}): Graph {
  const pass = options.pass ?? "rewrite";
  const maxSteps = options.maxSteps ?? 10_000 + 20 * graph.nodes.length;
  const candidates = indexByRootOp(rules);
  const work = new WorkingGraph(graph, options.reservedNames);
  const recent: string[] = [];
  let steps = 0;
  for (let changed = true; changed; ) {
    changed = false;
    for (let slot = work.first(); slot; ) {
      const node = slot.node;
      const fired = tryRules(candidates(node.op), node, work);
      if (!fired) {
        slot = work.next(slot);
        continue;
      }
      if (++steps > maxSteps) throw new RewriteLimitError(pass, maxSteps, recent);
      recent.push(fired.rule.name);
      if (recent.length > 8) recent.shift();
      options.trace?.fired(pass, fired.rule, node);
      slot = work.replace(slot, fired.replacement, fired.rule.name);
      changed = true;
    }
  }
  return work.toGraph();
}

function tryRules(rules: readonly Rule[], node: Node, view: GraphView) {
  for (const rule of rules) {
    const replacement = rule.apply(node, view);
    if (replacement) return { rule, replacement };
  }
  return undefined;
}

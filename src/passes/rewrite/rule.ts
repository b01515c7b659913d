import type { Arg, Node, TensorType } from "../../ir/graph.js";
import type { GraphView } from "./graph-view.js";
import type { AnyPattern, Bound, BoundNode, BoundValue, Captures, NodePattern } from "./pattern.js";
import { type Replacement, ReplacementBuilder } from "./replacement.js";

/** What a rewrite may use besides its captures: read-only graph lookups and a replacement builder. */
export interface RewriteContext {
  readonly graph: GraphView;
  /** A builder for new nodes and weights; its nodes take the root's place. */
  build(): ReplacementBuilder;
  /** The root's first output is replaced by an existing value; no new nodes. */
  replaceWith(v: string | BoundValue): Replacement;
  /** The root's first output is replaced by the output of one new node (types inferred if not given). */
  replaceWithNode(op: string, args: Record<string, Arg>, type?: TensorType): Replacement;
}

/** A rewrite rule, type-erased so rules with different captures live in one list. */
export interface Rule {
  readonly name: string;
  /** One line: "relu6(x) ⇒ hardtanh(x, 0, 6)". */
  readonly doc: string;
  readonly pattern: NodePattern<unknown>;
  /** Where the rule was written (`src/passes/…/file.ts:line`), for traces. */
  readonly location: string;
  /** The replacement for `node`, or undefined when the pattern does not match or the rewrite declines. */
  apply(node: Node, graph: GraphView): Replacement | undefined;
}

export type RuleSet = readonly Rule[];

export interface RuleSpec<C extends Captures> {
  readonly name: string;
  readonly doc: string;
  /** The root pattern: the node the rule replaces. */
  readonly pattern: NodePattern<unknown>;
  /** Sub-patterns whose bindings the rewrite receives, by field name (typed). */
  readonly captures?: C;
  /** Where the rule is written, when `rule()` is called by a helper rather than by the rule's own module. */
  readonly location?: string;
  /** Returns the replacement, or undefined to decline the match. `root` is always provided. */
  rewrite(match: Bound<C> & { readonly root: BoundNode }, ctx: RewriteContext): Replacement | undefined;
}

function reachable(root: AnyPattern): Set<AnyPattern> {
  const seen = new Set<AnyPattern>();
  const stack = [root];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    stack.push(...p.parts);
  }
  return seen;
}

/**
 * `file:line` of the code that called `rule()`, skipping frames in files whose path contains one of `skip`
 * (helpers that build rules for a table, so the trace points at the table entry).
 */
export function callerLocation(skip: readonly string[] = []): string {
  const frames = (new Error().stack ?? "").split("\n").slice(1);
  const skipped = (f: string) =>
    f.includes("/rewrite/rule.") || f.includes("node:internal") || skip.some((s) => f.includes(s));
  const frame = frames.find((f) => !skipped(f)) ?? "";
  const m = /\(?((?:file:\/\/)?[^()\s]+):(\d+):\d+\)?\s*$/.exec(frame);
  if (!m) return "?";
  const file = m[1].replace(/^file:\/\//, "");
  const cwd = typeof process !== "undefined" ? `${process.cwd()}/` : "";
  const rel = cwd && file.startsWith(cwd) ? file.slice(cwd.length) : file.split("/").slice(-3).join("/");
  return `${rel}:${m[2]}`;
}

/**
 * Defines a rule. Every capture must be bound whenever the pattern matches (outside `either`/`optional`
 * branches): a capture that is not is reported here, when the module loads, not when the rule fires.
 */
export function rule<C extends Captures = Record<never, AnyPattern>>(spec: RuleSpec<C>): Rule {
  const captures = (spec.captures ?? {}) as C;
  const inTree = reachable(spec.pattern);
  for (const [field, p] of Object.entries(captures)) {
    if (!inTree.has(p))
      throw new Error(`rule '${spec.name}': capture '${field}' is not always bound by the pattern`);
  }
  const location = spec.location ?? callerLocation();
  return Object.freeze({
    name: spec.name,
    doc: spec.doc,
    pattern: spec.pattern,
    location,
    apply(node: Node, graph: GraphView): Replacement | undefined {
      const bindings = spec.pattern.matchNode(node, graph, new Map());
      if (!bindings) return undefined;
      const match: Record<string, unknown> = { root: bindings.get(spec.pattern) };
      for (const [field, p] of Object.entries(captures)) match[field] = bindings.get(p);
      const ctx: RewriteContext = {
        graph,
        build: () => new ReplacementBuilder(graph, node),
        replaceWith: (v) => new ReplacementBuilder(graph, node).replace(v),
        replaceWithNode: (op, args, type) => {
          const b = new ReplacementBuilder(graph, node);
          return b.replace(b.node(op, args, type));
        },
      };
      return spec.rewrite(match as Bound<C> & { root: BoundNode }, ctx);
    },
  });
}

/** Concatenates rule sets (first listed is tried first), rejecting two rules with one name. */
export function ruleSet(...sets: readonly (Rule | RuleSet)[]): RuleSet {
  const out: Rule[] = [];
  const names = new Set<string>();
  for (const r of sets.flat()) {
    if (names.has(r.name)) throw new Error(`ruleSet: two rules are named '${r.name}'`);
    names.add(r.name);
    out.push(r);
  }
  return Object.freeze(out);
}

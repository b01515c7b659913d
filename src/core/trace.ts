/** One change a pass made: which rule fired on which node. */
export interface TraceEntry {
  readonly pass: string;
  readonly rule: string;
  /** Where the rule is written, `src/passes/…:line` (rules of non-rule passes have none). */
  readonly ruleLocation?: string;
  /** The node the rule matched (its name before the rewrite) and its op. */
  readonly node: string;
  readonly op: string;
  /** Where the node came from in the user's program: module path and source line. */
  readonly source?: string;
  readonly detail?: string;
}

export interface PassSummary {
  readonly pass: string;
  /** This run's entries are `entries.slice(firstEntry, firstEntry + changes)`. */
  readonly firstEntry: number;
  readonly nodesBefore: number;
  readonly nodesAfter: number;
  readonly changes: number;
  readonly ms: number;
}

/** What the passes (and the runners' own lowerings) changed, in order: `--trace-passes` prints it. */
export interface Trace {
  readonly entries: readonly TraceEntry[];
  readonly passes: readonly PassSummary[];
}

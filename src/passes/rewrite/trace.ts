import type { PassSummary, Trace, TraceEntry } from "../../core/trace.js";
import type { Node } from "../../ir/graph.js";

// The trace's types are a contract between the passes, the runners that lower on their own (the LibTorch
// fallback) and the runtime's report: they live in src/core.
export type { PassSummary, Trace, TraceEntry } from "../../core/trace.js";

/** Collects trace entries while passes run (append-only); `snapshot()` freezes what was recorded. */
export class TraceRecorder {
  private readonly entries: TraceEntry[] = [];
  private readonly passes: PassSummary[] = [];

  record(entry: TraceEntry): void {
    this.entries.push(Object.freeze(entry));
  }

  /** Records that `rule` changed `node` during `pass`. */
  fired(pass: string, rule: { name: string; location?: string }, node: Node, detail?: string): void {
    this.record({
      pass,
      rule: rule.name,
      ...(rule.location ? { ruleLocation: rule.location } : {}),
      node: node.name,
      op: node.op,
      ...(sourceOf(node) ? { source: sourceOf(node) } : {}),
      ...(detail ? { detail } : {}),
    });
  }

  summarize(summary: PassSummary): void {
    this.passes.push(Object.freeze(summary));
  }

  /** Entries recorded from position `first` on (a caller's own share of the trace). */
  since(first: number): readonly TraceEntry[] {
    return this.entries.slice(first);
  }

  /** Changes recorded so far (for a pass to count its own). */
  get size(): number {
    return this.entries.length;
  }

  snapshot(): Trace {
    return Object.freeze({
      entries: Object.freeze([...this.entries]),
      passes: Object.freeze([...this.passes]),
    });
  }
}

/**
 * `base` followed by `more` (e.g. the pipeline's trace, then the LibTorch lowering of each fallback segment,
 * recorded when the segment's runner is built); summaries of `more` point at its entries' new positions.
 */
export function appendTrace(base: Trace, ...more: readonly Trace[]): Trace {
  const entries = [...base.entries];
  const passes = [...base.passes];
  for (const t of more) {
    const offset = entries.length;
    entries.push(...t.entries);
    for (const p of t.passes) passes.push(Object.freeze({ ...p, firstEntry: p.firstEntry + offset }));
  }
  return Object.freeze({ entries: Object.freeze(entries), passes: Object.freeze(passes) });
}

function sourceOf(node: Node): string | undefined {
  const parts: string[] = [];
  if (node.meta.modulePath) parts.push(`in ${node.meta.modulePath}`);
  if (node.meta.sourceLocation) parts.push(`at ${node.meta.sourceLocation.split("\n")[0]}`);
  return parts.length > 0 ? parts.join(" ") : undefined;
}

/** Text for `--trace-passes`: one header line per pass run, one indented line per change. */
export function formatTrace(trace: Trace): string {
  const lines: string[] = [];
  const runs: { header: string; entries: readonly TraceEntry[] }[] = trace.passes.map((s) => ({
    header: `pass ${s.pass}: ${s.changes} changes, ${s.nodesBefore} → ${s.nodesAfter} nodes, ${s.ms.toFixed(1)} ms`,
    entries: trace.entries.slice(s.firstEntry, s.firstEntry + s.changes),
  }));
  if (runs.length === 0) {
    for (const pass of new Set(trace.entries.map((e) => e.pass))) {
      const entries = trace.entries.filter((e) => e.pass === pass);
      runs.push({ header: `pass ${pass}: ${entries.length} changes`, entries });
    }
  }
  for (const run of runs) {
    lines.push(run.header);
    const width = Math.min(40, Math.max(0, ...run.entries.map((e) => e.rule.length)));
    for (const e of run.entries) {
      const where = [`${e.node} (${e.op})`, e.source, e.detail].filter(Boolean).join(" ");
      lines.push(`  ${e.rule.padEnd(width)}  ${where}${e.ruleLocation ? `  [${e.ruleLocation}]` : ""}`);
    }
  }
  return lines.join("\n");
}

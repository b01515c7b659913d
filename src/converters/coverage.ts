import { OPS } from "../ops/index.js";
import type { ConverterRegistry } from "./registry.js";

export interface CoverageRow {
  readonly op: string;
  readonly candidates: readonly {
    readonly name: string;
    readonly priority: number;
    readonly notes?: string;
  }[];
  /** Why an op of the catalogue has no converter, or the candidates' notes. */
  readonly notes: string;
}

/** One row per op of the catalogue (and per registered op outside it), sorted by op name. */
export function describeCoverage(registry: ConverterRegistry): CoverageRow[] {
  const ops = new Set<string>([...Object.keys(OPS), ...registry.byOp.keys()]);
  return [...ops].sort().map((op) => {
    const list = registry.byOp.get(op) ?? [];
    const candidates = list.map((c) => ({
      name: c.name,
      priority: c.priority,
      ...(c.notes ? { notes: c.notes } : {}),
    }));
    let notes = list
      .map((c) => c.notes)
      .filter((n): n is string => !!n)
      .join("; ");
    if (list.length === 0) notes = "no converter: runs in LibTorch (fallback)";
    else if (!(op in OPS)) notes = `not in the op catalogue${notes ? `; ${notes}` : ""}`;
    return { op, candidates, notes };
  });
}

/** The table `torchc converters` prints. */
export function formatCoverage(rows: readonly CoverageRow[]): string {
  const covered = rows.filter((r) => r.candidates.length > 0).length;
  const width = Math.max(...rows.map((r) => r.op.length), 2);
  const lines = rows.map((r) => {
    const cands = r.candidates.map((c) => `${c.name}(${c.priority})`).join(", ") || "—";
    return `${r.op.padEnd(width)}  ${cands}${r.notes ? `  # ${r.notes}` : ""}`;
  });
  return [
    `${"op".padEnd(width)}  converters (priority)`,
    ...lines,
    "",
    `${covered} of ${rows.length} ops have a converter`,
  ].join("\n");
}

import type { Node } from "../ir/graph.js";
import { nodeInputs } from "../ir/graph.js";
import { getOp, type OpName } from "../ops/index.js";
import type { AnyCandidate, ConvertContext, ConverterCandidate } from "./types.js";

/** Candidates per op overload, highest priority first (ties keep table order). Immutable. */
export interface ConverterRegistry {
  readonly byOp: ReadonlyMap<string, readonly AnyCandidate[]>;
}

/** Builds a registry by concatenating per-family tables; nothing registers itself on import. */
export function buildRegistry(...tables: readonly (readonly AnyCandidate[])[]): ConverterRegistry {
  const byOp = new Map<string, AnyCandidate[]>();
  for (const table of tables) {
    for (const c of table) {
      const list = byOp.get(c.op) ?? [];
      if (list.some((x) => x.name === c.name))
        throw new Error(`converter '${c.name}' for ${c.op} is registered twice`);
      list.push(c);
      byOp.set(c.op, list);
    }
  }
  // Array.prototype.sort is stable, so equal priorities keep registration order.
  for (const list of byOp.values()) list.sort((a, b) => b.priority - a.priority);
  return Object.freeze({ byOp });
}

export interface Refusal {
  readonly converter: string;
  readonly reason: string;
}

export type Selection =
  | { readonly ok: true; readonly candidate: AnyCandidate; readonly args: unknown }
  | { readonly ok: false; readonly reason: string; readonly refusals: readonly Refusal[] };

function fail(reason: string, refusals: readonly Refusal[] = []): Selection {
  return { ok: false, reason, refusals };
}

/** The dtype check every converter shares: the engine must hold each tensor the node reads or writes. */
function dtypeSupport(node: Node, ctx: ConvertContext): string | null {
  const named = [
    ...nodeInputs(node).map((v) => ["input", v] as const),
    ...node.outputs.map((v) => ["output", v] as const),
  ];
  for (const [role, v] of named) {
    const t = ctx.graph.values[v];
    if (t && !ctx.caps.dtypes.has(t.dtype))
      return `dtype ${t.dtype} not supported by ${ctx.caps.name} (${role} '${v}')`;
  }
  return null;
}

/**
 * Picks the converter for a node: the first candidate, by priority, whose `supports()` accepts it. When none
 * does, the reason explains it for the partition report: each candidate's refusal, in order.
 */
export function selectConverter(registry: ConverterRegistry, node: Node, ctx: ConvertContext): Selection {
  if (node.subgraphs && node.subgraphs.length > 0) return fail(`control flow (${node.op}) runs in LibTorch`);
  const def = getOp(node.op);
  if (!def) return fail(`${node.op} is not in torchc's op catalogue`);
  const candidates = registry.byOp.get(node.op);
  if (!candidates || candidates.length === 0) return fail(`no converter for ${node.op}`);
  let args: unknown;
  try {
    args = def.parse(node.args);
  } catch (e) {
    return fail(`its arguments do not fit the schema: ${(e as Error).message}`);
  }
  const dtype = dtypeSupport(node, ctx);
  if (dtype) return fail(dtype);
  const refusals: Refusal[] = [];
  for (const c of candidates) {
    // The one place a candidate meets a record typed only at run time: the op name ties them together.
    const s = (c as ConverterCandidate<OpName>).supports(node, args as never, ctx);
    if (s.ok) return { ok: true, candidate: c, args };
    refusals.push({ converter: c.name, reason: s.reason });
  }
  const reason =
    refusals.length === 1
      ? refusals[0].reason
      : refusals.map((r) => `${r.converter}: ${r.reason}`).join("; ");
  return fail(reason, refusals);
}

import { graphContext } from "../converters/context.js";
import { type ConverterRegistry, selectConverter } from "../converters/registry.js";
import type { EngineCapabilities } from "../converters/types.js";
import type { Graph, Node } from "../ir/graph.js";

/** Where one node runs and, for a fallback, why. */
export type Placement =
  | { readonly kind: "engine"; readonly converter: string }
  | { readonly kind: "fallback"; readonly reason: string }
  /** A node with nested blocks (`prim.If`, `prim.Loop`): a segment of its own. */
  | { readonly kind: "control" };

export interface ClassifyOptions {
  readonly registry: ConverterRegistry;
  readonly caps?: EngineCapabilities;
  readonly torchExecutedOps?: readonly string[];
}

/** Decides each node on its own: the user's torchExecutedOps first, then the converter registry. */
export function classifyNodes(graph: Graph, options: ClassifyOptions): Map<Node, Placement> {
  const ctx = graphContext(graph, options.caps);
  const forced = new Set(options.torchExecutedOps ?? []);
  const out = new Map<Node, Placement>();
  for (const node of graph.nodes) {
    if (node.subgraphs && node.subgraphs.length > 0) {
      out.set(node, { kind: "control" });
      continue;
    }
    if (forced.has(node.op)) {
      out.set(node, { kind: "fallback", reason: "in torchExecutedOps" });
      continue;
    }
    const sel = selectConverter(options.registry, node, ctx);
    out.set(
      node,
      sel.ok ? { kind: "engine", converter: sel.candidate.name } : { kind: "fallback", reason: sel.reason },
    );
  }
  return out;
}

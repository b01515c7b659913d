import { ArchiveError, TorchcError } from "../errors.js";
import { limits } from "../frontends/limits.js";
import { getOp, inferNode } from "../ops/index.js";
import { DTYPE_BYTES } from "./dtype.js";
import { formatLocation, type Graph, type TensorType } from "./graph.js";
import { checkGraph } from "./verify.js";

/**
 * Verifies a graph read from a file before anything else sees it, reporting what the file got wrong as one
 * line that names the node: the structural invariants of `checkGraph` (order, duplicates, self-reads, unknown
 * values), value sizes within the memory budget, and each node's declared output types against what its op's
 * schema infers from its inputs. Only top-level nodes of ops in the op table are inferred (`inferTypes: false`
 * skips this for frontends whose output types already come from the same inference, like TorchScript's;
 * `checkStructure: false` skips `checkGraph` for a frontend that enforces the same invariants as it reads).
 */
export function verifyLoadedGraph(
  graph: Graph,
  file: string,
  code = "archive.bad-graph",
  opts: { readonly inferTypes?: boolean; readonly checkStructure?: boolean } = {},
): Graph {
  const fail = (detail: string): never => {
    throw new ArchiveError(file, detail, code);
  };
  const problems = opts.checkStructure === false ? [] : checkGraph(graph);
  if (problems.length > 0)
    fail(
      `the graph is not well formed: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more problems)` : ""}`,
    );
  const budget = limits().maxMemory;
  for (const name of Object.keys(graph.values)) {
    const t = graph.values[name];
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (!(bytes <= budget))
      fail(
        `value '${name}' is ${t.dtype}[${t.shape.join(", ")}], larger than the memory budget (raise it with --max-memory or TORCHC_MAX_MEMORY)`,
      );
  }
  const typeOf = (n: string): TensorType => {
    const t = graph.values[n];
    if (!t) throw new TorchcError(`unknown value '${n}'`, "graph.unknown-value");
    return t;
  };
  if (opts.inferTypes === false) return graph;
  for (const node of graph.nodes) {
    if (node.subgraphs || !getOp(node.op)) continue;
    let inferred: TensorType[];
    try {
      inferred = inferNode(node, typeOf);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      const where = formatLocation(node);
      return fail(
        `${where} does not fit its op's schema: ${why.includes(where) ? why.replace(` (${where})`, "") : why}`,
      );
    }
    node.outputs.forEach((out, i) => {
      const declared = graph.values[out];
      const got = inferred[i];
      if (!got) return;
      if (declared.dtype !== got.dtype || declared.shape.join() !== got.shape.join())
        fail(
          `${formatLocation(node)} declares output '${out}' as ${declared.dtype}[${declared.shape.join(", ")}] but its op gives ${got.dtype}[${got.shape.join(", ")}] for these inputs`,
        );
    });
  }
  return graph;
}

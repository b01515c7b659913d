import { ArchiveError, TorchcError } from "../errors.js";
import { DTYPE_BYTES } from "../ir/dtype.js";
import { formatLocation, type Graph, type TensorType } from "../ir/graph.js";
import { checkGraph } from "../ir/verify.js";
import { sameShape } from "../ops/data.js";
import { getOp } from "../ops/index.js";
import { limits } from "./limits.js";

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
  const values = graph.values;
  for (const name of Object.keys(values)) {
    const t = values[name];
    const shape = t.shape;
    let bytes = 1;
    for (let i = 0; i < shape.length; i++) bytes *= shape[i];
    bytes *= DTYPE_BYTES[t.dtype];
    if (!(bytes <= budget))
      fail(
        `value '${name}' is ${t.dtype}[${shape.join(", ")}], larger than the memory budget (raise it with --max-memory or TORCHC_MAX_MEMORY)`,
      );
  }
  if (opts.inferTypes === false) return graph;
  const typeOf = (n: string): TensorType => {
    const t = values[n];
    if (!t) throw new TorchcError(`unknown value '${n}'`, "graph.unknown-value");
    return t;
  };
  for (const node of graph.nodes) {
    if (node.subgraphs) continue;
    const def = getOp(node.op);
    if (!def) continue;
    let got: TensorType[];
    try {
      // inferNode without its wrapper: the message is worded below the same way, with the node's location
      got = def.infer(def.parse(node.args), typeOf);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      const where = formatLocation(node);
      return fail(
        `${where} does not fit its op's schema: ${why.includes(where) ? why.replace(` (${where})`, "") : why}`,
      );
    }
    const outputs = node.outputs;
    for (let i = 0; i < outputs.length; i++) {
      const t = got[i];
      if (!t) continue;
      const declared = values[outputs[i]];
      if (declared.dtype !== t.dtype || !sameShape(declared.shape, t.shape))
        fail(
          `${formatLocation(node)} declares output '${outputs[i]}' as ${declared.dtype}[${declared.shape.join(", ")}] but its op gives ${t.dtype}[${t.shape.join(", ")}] for these inputs`,
        );
    }
  }
  return graph;
}

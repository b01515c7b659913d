import { DTYPE_BYTES } from "./dtype.js";
import { type Graph, nodeInputs } from "./graph.js";
import { numel } from "./tensor.js";

export class GraphVerificationError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(
      `graph is not well formed:\n  ${problems.slice(0, 20).join("\n  ")}${problems.length > 20 ? `\n  … and ${problems.length - 20} more` : ""}`,
    );
    this.name = "GraphVerificationError";
  }
}

/**
 * Checks the invariants every pass relies on: each value defined once before use, every value typed,
 * weights matching their declared types, outputs defined. Returns the list of problems (empty when sound).
 */
export function checkGraph(graph: Graph, outer: ReadonlySet<string> = new Set()): string[] {
  const problems: string[] = [];
  const defined = new Set<string>(outer);
  const define = (name: string, where: string) => {
    if (defined.has(name) && !outer.has(name)) problems.push(`value '${name}' is defined twice (${where})`);
    if (!(name in graph.values)) problems.push(`value '${name}' has no type (${where})`);
    defined.add(name);
  };
  for (const name of graph.inputs) define(name, "input");
  for (const [name, w] of Object.entries(graph.weights)) {
    define(name, "weight");
    const t = graph.values[name];
    if (t && (t.dtype !== w.tensor.dtype || t.shape.join() !== w.tensor.shape.join())) {
      problems.push(
        `weight '${name}' holds ${w.tensor.dtype}[${w.tensor.shape}] but is typed ${t.dtype}[${t.shape}]`,
      );
    }
    if (w.tensor.data.byteLength !== numel(w.tensor.shape) * DTYPE_BYTES[w.tensor.dtype]) {
      problems.push(
        `weight '${name}' has ${w.tensor.data.byteLength} bytes of data for shape [${w.tensor.shape}]`,
      );
    }
  }
  const nodeNames = new Set<string>();
  for (const node of graph.nodes) {
    if (nodeNames.has(node.name)) problems.push(`node name '${node.name}' is used twice`);
    nodeNames.add(node.name);
    for (const input of nodeInputs(node)) {
      if (!defined.has(input))
        problems.push(`node '${node.name}' (${node.op}) reads '${input}' before it is defined`);
    }
    node.subgraphs?.forEach((sub, i) => {
      for (const p of checkGraph(sub, defined)) problems.push(`in block ${i} of '${node.name}': ${p}`);
    });
    for (const out of node.outputs) define(out, `output of node '${node.name}'`);
  }
  for (const out of graph.outputs)
    if (!defined.has(out)) problems.push(`graph output '${out}' is never defined`);
  for (const [name, t] of Object.entries(graph.values)) {
    if (t.shape.some((d) => !Number.isInteger(d) || d < 0))
      problems.push(`value '${name}' has a bad shape [${t.shape}]`);
  }
  return problems;
}

export function verifyGraph(graph: Graph): Graph {
  const problems = checkGraph(graph);
  if (problems.length > 0) throw new GraphVerificationError(problems);
  return graph;
}

import { DTYPE_BYTES } from "./dtype.js";
import type { Graph, TensorType } from "./graph.js";
import { numel } from "./tensor.js";

export interface GraphSummary {
  readonly inputs: { name: string; type: TensorType }[];
  readonly outputs: { name: string; type: TensorType }[];
  readonly parameters: { count: number; elements: number; bytes: number };
  readonly buffers: { count: number; elements: number; bytes: number };
  readonly constants: { count: number; elements: number; bytes: number };
  readonly nodes: number;
  /** Op → number of nodes, most frequent first. */
  readonly ops: [string, number][];
}

export function summarizeGraph(graph: Graph): GraphSummary {
  const tally = () => ({ count: 0, elements: 0, bytes: 0 });
  const groups = { parameter: tally(), buffer: tally(), constant: tally() };
  for (const w of Object.values(graph.weights)) {
    const g = groups[w.kind];
    const n = numel(w.tensor.shape);
    g.count++;
    g.elements += n;
    g.bytes += n * DTYPE_BYTES[w.tensor.dtype];
  }
  const hist = new Map<string, number>();
  const visit = (g: Graph) => {
    for (const node of g.nodes) {
      hist.set(node.op, (hist.get(node.op) ?? 0) + 1);
      node.subgraphs?.forEach(visit);
    }
  };
  visit(graph);
  return {
    inputs: graph.inputs.map((name) => ({ name, type: graph.values[name] })),
    outputs: graph.outputs.map((name) => ({ name, type: graph.values[name] })),
    parameters: groups.parameter,
    buffers: groups.buffer,
    constants: groups.constant,
    nodes: [...hist.values()].reduce((a, b) => a + b, 0),
    ops: [...hist.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])),
  };
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(2)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function formatSummary(s: GraphSummary): string {
  const t = (x: TensorType) => `${x.dtype}[${x.shape.join(", ")}]`;
  const lines: string[] = [];
  lines.push("inputs:");
  for (const i of s.inputs) lines.push(`  ${i.name}: ${t(i.type)}`);
  lines.push("outputs:");
  for (const o of s.outputs) lines.push(`  ${o.name}: ${t(o.type)}`);
  lines.push(
    `parameters: ${s.parameters.elements.toLocaleString("en-US")} in ${s.parameters.count} tensors (${formatBytes(s.parameters.bytes)})`,
  );
  lines.push(
    `buffers: ${s.buffers.elements.toLocaleString("en-US")} in ${s.buffers.count} tensors (${formatBytes(s.buffers.bytes)})`,
  );
  if (s.constants.count > 0)
    lines.push(`constants: ${s.constants.count} tensors (${formatBytes(s.constants.bytes)})`);
  lines.push(`nodes: ${s.nodes}`);
  lines.push("ops:");
  const width = Math.max(...s.ops.map(([op]) => op.length), 0);
  for (const [op, n] of s.ops) lines.push(`  ${op.padEnd(width)}  ${n}`);
  return lines.join("\n");
}

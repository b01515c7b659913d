import type { Arg, Graph, TensorType } from "./graph.js";

export function formatType(t: TensorType): string {
  return `${t.dtype}[${t.shape.join(", ")}]`;
}

export function formatArg(arg: Arg): string {
  switch (arg.kind) {
    case "tensor":
      return `%${arg.name}`;
    case "tensors":
      return `[${arg.names.map((n) => (n === null ? "None" : `%${n}`)).join(", ")}]`;
    case "none":
      return "None";
    case "int":
    case "float":
      return String(arg.value);
    case "bool":
      return arg.value ? "True" : "False";
    case "ints":
    case "floats":
      return `[${arg.value.join(", ")}]`;
    case "bools":
      return `[${arg.value.map((b) => (b ? "True" : "False")).join(", ")}]`;
    case "string":
      return JSON.stringify(arg.value);
    case "dtype":
      return `torch.${arg.value}`;
    case "device":
    case "layout":
    case "memoryFormat":
      return arg.value;
  }
}

export interface PrintOptions {
  /** Print weight declarations (one line each). Default: true. */
  weights?: boolean;
  indent?: string;
}

/** Readable text, one node a line: `%out: float32[1, 8] = aten.relu.default(self=%x)`. */
export function printGraph(graph: Graph, options: PrintOptions = {}): string {
  const ind = options.indent ?? "";
  const lines: string[] = [];
  const sig = graph.inputs.map((n) => `%${n}: ${formatType(graph.values[n])}`).join(", ");
  lines.push(`${ind}graph(${sig}) {`);
  if (options.weights !== false) {
    for (const [name, w] of Object.entries(graph.weights)) {
      lines.push(
        `${ind}  %${name}: ${formatType(graph.values[name])} = ${w.kind}(${JSON.stringify(w.target)})`,
      );
    }
  }
  for (const node of graph.nodes) {
    const outs = node.outputs
      .map((o) => `%${o}: ${graph.values[o] ? formatType(graph.values[o]) : "?"}`)
      .join(", ");
    const args = Object.entries(node.args)
      .map(([k, a]) => `${k}=${formatArg(a)}`)
      .join(", ");
    lines.push(`${ind}  ${outs} = ${node.op}(${args})`);
    node.subgraphs?.forEach((sub, i) => {
      lines.push(`${ind}    block ${i}:`);
      lines.push(printGraph(sub, { ...options, indent: `${ind}    ` }));
    });
  }
  lines.push(`${ind}  return (${graph.outputs.map((o) => `%${o}`).join(", ")})`);
  lines.push(`${ind}}`);
  return lines.join("\n");
}

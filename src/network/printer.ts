import { formatType } from "../ir/printer.js";
import type { Layer } from "./layers/index.js";
import type { Network } from "./network.js";

function formatValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(formatValue).join(", ")}]`;
  if (v !== null && typeof v === "object") {
    return `{${Object.entries(v)
      .map(([k, x]) => `${k}: ${formatValue(x)}`)
      .join(", ")}}`;
  }
  return String(v);
}

/** The attributes of a layer as `key=value`, in declaration order. */
export function formatLayerAttributes(layer: Layer): string {
  return Object.entries(layer)
    .filter(([k]) => k !== "type" && k !== "name" && k !== "inputs" && k !== "output")
    .map(([k, v]) => `${k}=${formatValue(v)}`)
    .join(" ");
}

/** One layer a line: `%conv1/convolution: float32[1, 8, 4, 4] = convolution(%x, %w) stride=[1, 1] …`. */
export function formatNetwork(net: Network): string {
  const lines = [`network(${net.inputs.map((i) => `%${i}: ${formatType(net.tensors[i])}`).join(", ")}) {`];
  for (const layer of net.layers) {
    const attrs = formatLayerAttributes(layer);
    const args = layer.inputs.map((i) => `%${i}`).join(", ");
    lines.push(
      `  %${layer.output}: ${formatType(net.tensors[layer.output])} = ${layer.type}(${args})${attrs ? ` ${attrs}` : ""}`,
    );
  }
  lines.push(`  return (${net.outputs.map((o) => `%${o}`).join(", ")})`, "}");
  return lines.join("\n");
}

import { DTYPE_BYTES } from "../ir/dtype.js";
import { numel } from "../ir/tensor.js";
import { inferLayer } from "./layers/index.js";
import type { Network } from "./network.js";

/**
 * Checks what backends rely on: tensors defined once before use, every layer's recorded output type equal
 * to its shape rule, constant data matching its layer, outputs defined. Returns the problems found.
 */
export function checkNetwork(net: Network): string[] {
  const problems: string[] = [];
  const defined = new Set<string>();
  const names = new Set<string>();
  for (const input of net.inputs) {
    if (!net.tensors[input]) problems.push(`input '${input}' has no type`);
    defined.add(input);
  }
  for (const layer of net.layers) {
    if (names.has(layer.name)) problems.push(`layer name '${layer.name}' is used twice`);
    names.add(layer.name);
    const missing = layer.inputs.filter((i) => !defined.has(i));
    if (missing.length > 0) {
      problems.push(
        `layer '${layer.name}' reads ${missing.map((m) => `'${m}'`).join(", ")} before definition`,
      );
      continue;
    }
    if (defined.has(layer.output)) problems.push(`tensor '${layer.output}' is defined twice`);
    defined.add(layer.output);
    try {
      const t = inferLayer(
        layer,
        layer.inputs.map((i) => net.tensors[i]),
      );
      const rec = net.tensors[layer.output];
      if (!rec || rec.dtype !== t.dtype || rec.shape.join() !== t.shape.join()) {
        problems.push(
          `layer '${layer.name}' produces ${t.dtype}[${t.shape}] but its tensor is typed ${rec?.dtype}[${rec?.shape}]`,
        );
      }
    } catch (e) {
      problems.push(`layer '${layer.name}': ${(e as Error).message}`);
    }
    if (layer.type === "constant") {
      const c = net.constants[layer.weight];
      if (!c) problems.push(`constant layer '${layer.name}' refers to missing weight '${layer.weight}'`);
      else if (c.dtype !== layer.dtype || c.shape.join() !== layer.shape.join()) {
        problems.push(
          `weight '${layer.weight}' is ${c.dtype}[${c.shape}], its layer says ${layer.dtype}[${layer.shape}]`,
        );
      } else if (c.data.byteLength !== numel(c.shape) * DTYPE_BYTES[c.dtype]) {
        problems.push(`weight '${layer.weight}' has ${c.data.byteLength} bytes for [${c.shape}]`);
      }
    }
  }
  for (const out of net.outputs) if (!defined.has(out)) problems.push(`output '${out}' is never defined`);
  return problems;
}

export function verifyNetwork(net: Network): Network {
  const problems = checkNetwork(net);
  if (problems.length > 0) throw new Error(`network is not well formed:\n  ${problems.join("\n  ")}`);
  return net;
}

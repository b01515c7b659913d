import type { Segment } from "../core/segment.js";
import { TorchcError } from "../errors.js";
import type { Graph, Node } from "../ir/graph.js";
import { formatLocation } from "../ir/graph.js";
import { formatType } from "../ir/printer.js";
import type { Network } from "../network/network.js";
import type { OpName } from "../ops/index.js";
import { SegmentConversion } from "./conversion-net.js";
import { type ConverterRegistry, selectConverter } from "./registry.js";
import type { ConverterCandidate, EngineCapabilities } from "./types.js";

/** A converter that produced the wrong type or failed: a bug in torchc, reported with the node. */
export class ConverterError extends TorchcError {
  constructor(node: Node, converter: string, detail: string) {
    super(`converter '${converter}' for ${formatLocation(node)}: ${detail}`, "converter.bug");
    this.name = "ConverterError";
  }
}

export interface ConvertOptions {
  readonly registry: ConverterRegistry;
  readonly caps?: EngineCapabilities;
}

/**
 * Converts the nodes of an engine segment into one Network whose inputs and outputs carry the segment's value
 * names. Every output type is checked against the graph, so a converter bug fails at its node.
 */
export function convertNodes(
  graph: Graph,
  nodes: readonly Node[],
  inputs: readonly string[],
  outputs: readonly string[],
  options: ConvertOptions,
): Network {
  const conv = new SegmentConversion(graph, options.caps);
  for (const v of inputs) conv.bind(v, conv.net.addInput(v, graph.values[v]));
  for (const node of nodes) {
    const sel = selectConverter(options.registry, node, conv);
    if (!sel.ok)
      throw new TorchcError(`cannot convert ${formatLocation(node)}: ${sel.reason}`, "converter.unsupported");
    const c = sel.candidate as ConverterCandidate<OpName>;
    let results: readonly (string | null)[];
    try {
      results = conv.net.withScope(node.name, () => c.convert(node, sel.args as never, conv));
    } catch (e) {
      // Layer shape errors included: a converter that builds an ill-typed layer is a torchc bug.
      throw new ConverterError(node, c.name, (e as Error).message);
    }
    if (results.length !== node.outputs.length) {
      throw new ConverterError(
        node,
        c.name,
        `returned ${results.length} tensors for ${node.outputs.length} outputs`,
      );
    }
    node.outputs.forEach((value, i) => {
      const t = results[i];
      if (t === null) {
        if (conv.isUsed(value))
          throw new ConverterError(node, c.name, `left output '${value}' unproduced but it is used`);
        return;
      }
      const got = conv.net.typeOf(t);
      const want = graph.values[value];
      if (got.dtype !== want.dtype || got.shape.join() !== want.shape.join()) {
        throw new ConverterError(
          node,
          c.name,
          `output '${value}' is ${formatType(got)}, the graph says ${formatType(want)}`,
        );
      }
      conv.bind(value, t);
    });
  }
  return conv.net.build(outputs.map((v) => ({ tensor: conv.input(v), as: v })));
}

/** The Network for one engine segment of `graph` (see `partitionGraph`). */
export function convertSegment(graph: Graph, segment: Segment, options: ConvertOptions): Network {
  if (segment.kind !== "engine") throw new Error(`segment ${segment.index} is a fallback segment`);
  return convertNodes(graph, segment.nodes, segment.inputs, segment.outputs, options);
}

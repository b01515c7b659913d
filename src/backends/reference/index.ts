import type { Tensor } from "../../ir/tensor.js";
import type { Network } from "../../network/network.js";
import { runNetworkReference } from "../../network/reference/index.js";
import { interpret } from "../../ops/interpret.js";
import type { Segment } from "../../partition/segment.js";
import { type Backend, gather, type SegmentRunner } from "../../runtime/segment-runner.js";

/**
 * The CPU backend: engine segments run their converted Network through the layer reference interpreter,
 * fallback segments run their aten nodes through the op reference table. Slow, exact, available everywhere.
 */
export const referenceBackend: Backend = {
  name: "reference",
  async engine(segment: Segment, network: Network): Promise<SegmentRunner> {
    return {
      segment,
      description: `reference layers (${network.layers.length} layers)`,
      async run(values) {
        const outs = runNetworkReference(
          network,
          gather(values, network.inputs, `engine segment ${segment.index}`),
        );
        return new Map(network.outputs.map((n, i) => [n, outs[i]] as [string, Tensor]));
      },
    };
  },
  async fallback(segment: Segment): Promise<SegmentRunner> {
    const g = segment.graph;
    return {
      segment,
      description: `aten reference interpreter (${g.nodes.length} nodes)`,
      async run(values) {
        const outs = interpret(g, gather(values, g.inputs, `fallback segment ${segment.index}`));
        return new Map(g.outputs.map((n, i) => [n, outs[i]] as [string, Tensor]));
      },
    };
  },
};

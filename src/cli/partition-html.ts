import { writeFileSync } from "node:fs";
import { planCudaEngine } from "../backends/cuda/plan.js";
import { convertSegment } from "../converters/index.js";
import type { ConverterRegistry } from "../converters/registry.js";
import { InputError } from "../errors.js";
import { formatType } from "../ir/printer.js";
import type { Network } from "../network/network.js";
import { formatLayerAttributes } from "../network/printer.js";
import { renderPartitionHtml, type SegmentDetails } from "../partition/html-report.js";
import type { Partition } from "../partition/index.js";

/** One line per layer, constants left out (they are the weights). */
function layerLines(net: Network): string[] {
  return net.layers
    .filter((l) => l.type !== "constant")
    .map((l) => {
      const attrs = formatLayerAttributes(l);
      const args = l.inputs.map((i) => `%${i}`).join(", ");
      return `%${l.output}: ${formatType(net.tensors[l.output])} = ${l.type}(${args})${attrs ? ` ${attrs}` : ""}`;
    });
}

const why = (e: unknown) => (e instanceof Error ? e.message.split("\n")[0] : String(e));

/**
 * Each engine segment's layers (the converters, as compile runs them) and its CUDA kernel schedule. The schedule
 * is the host-only plan, made without a GPU on the assumption that cuDNN and cuBLASLt take every convolution
 * and matmul; on the GPU a refused one becomes a generated kernel instead.
 */
export function segmentDetails(
  partition: Partition,
  registry: ConverterRegistry,
  precision: "fp32" | "fp16",
): Map<number, SegmentDetails> {
  const out = new Map<number, SegmentDetails>();
  for (const s of partition.segments) {
    if (s.kind !== "engine") continue;
    let net: Network;
    try {
      net = convertSegment(partition.graph, s, { registry });
    } catch (e) {
      out.set(s.index, { note: `the converters failed: ${why(e)}` });
      continue;
    }
    const layers = layerLines(net);
    try {
      const kernels = planCudaEngine(net, { precision }).summary;
      out.set(s.index, {
        layers,
        kernels,
        note: `kernel steps: the CUDA backend's ${precision} schedule, planned without a GPU assuming cuDNN and cuBLASLt accept every convolution and matmul`,
      });
    } catch (e) {
      out.set(s.index, { layers, note: `no kernel schedule: ${why(e)}` });
    }
  }
  return out;
}

/** Writes the partition report page; a path that cannot be written is a one-line user error. */
export function writePartitionHtml(
  path: string,
  title: string,
  partition: Partition,
  registry: ConverterRegistry,
  precision: "fp32" | "fp16",
): void {
  const html = renderPartitionHtml({
    title,
    graph: partition.graph,
    segments: partition.segments,
    report: partition.report,
    details: segmentDetails(partition, registry, precision),
  });
  try {
    writeFileSync(path, html);
  } catch (e) {
    throw new InputError(
      `--html ${path}: cannot write (${(e as NodeJS.ErrnoException).code ?? why(e)})`,
      "cli.output",
    );
  }
}

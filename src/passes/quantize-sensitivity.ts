// Per-layer quantization sensitivity: quantize one site alone (every other layer stays float32), run the graph
// on the CPU reference interpreter over a few calibration batches, and measure how far the outputs move from
// the float32 outputs. The layers whose lone quantization moves the output most are the ones worth keeping in
// float (mixed precision by sensitivity; the decision is in quantize-keep.ts, the wiring in
// runtime/calibration-sensitivity.ts).
import { isFloating } from "../ir/dtype.js";
import { type Graph, nodeInputs } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import { nums } from "../ops/data.js";
import { interpret } from "../ops/interpret.js";
import { insertQuantization, type QuantPrecision, quantizationSites } from "./quantize-insert.js";

/**
 * How an output's distance from float32 is measured, over all outputs of all batches taken as one vector:
 * "cosine" is 1 − cos(quantized, float32) (scale-free; for small independent errors it adds up over layers,
 * since it is ≈ ½‖e⊥‖²/‖y‖²); "relative-max" is max|quantized − float32| / max|float32|, the measure
 * `torchc verify` applies (for small errors the whole model's is at most the layers' sum, to first order).
 */
export type SensitivityMetric = "cosine" | "relative-max";
export const SENSITIVITY_METRICS: readonly SensitivityMetric[] = ["cosine", "relative-max"];

/** Accumulates one metric over many output tensors. */
class Distance {
  private dot = 0;
  private aa = 0;
  private bb = 0;
  private maxErr = 0;
  private maxRef = 0;

  add(got: Tensor, ref: Tensor): void {
    if (!isFloating(ref.dtype)) return;
    const a = nums(got);
    const b = nums(ref);
    for (let i = 0; i < b.length; i++) {
      this.dot += a[i] * b[i];
      this.aa += a[i] * a[i];
      this.bb += b[i] * b[i];
      this.maxErr = Math.max(this.maxErr, Math.abs(a[i] - b[i]));
      this.maxRef = Math.max(this.maxRef, Math.abs(b[i]));
    }
  }

  value(metric: SensitivityMetric): number {
    if (metric === "relative-max") {
      if (this.maxRef === 0) return this.maxErr === 0 ? 0 : 1;
      return this.maxErr / this.maxRef;
    }
    if (this.aa === 0 && this.bb === 0) return 0;
    if (this.aa === 0 || this.bb === 0) return 1;
    // Rounding can push cos a hair past 1; a negative distance would sort below an exact zero.
    return Math.max(0, 1 - this.dot / Math.sqrt(this.aa * this.bb));
  }
}

/** The outputs of `graph` on every batch (the float32 reference when `graph` is the unquantized one). */
export function run(graph: Graph, batches: readonly (readonly Tensor[])[]): Tensor[][] {
  return batches.map((inputs) => interpret(graph, inputs));
}

/** The metric between two runs' outputs (batch by batch, output by output). */
export function outputDistance(
  got: readonly (readonly Tensor[])[],
  ref: readonly (readonly Tensor[])[],
  metric: SensitivityMetric,
): number {
  const d = new Distance();
  ref.forEach((outs, b) => {
    outs.forEach((r, k) => {
      d.add(got[b][k], r);
    });
  });
  return d.value(metric);
}

/** What the sensitivity runs need: the fp32-lowered graph, its calibrated ranges and the batches. */
export interface SensitivityInput {
  readonly graph: Graph;
  readonly amax: ReadonlyMap<string, number>;
  readonly precision: QuantPrecision;
  readonly batches: readonly (readonly Tensor[])[];
  readonly metric: SensitivityMetric;
  /** The float32 graph's outputs on the batches (`run(graph, batches)`), computed once. */
  readonly reference: readonly (readonly Tensor[])[];
}

/** The part of `quantized` from its first node that differs from `graph` on, as a graph of the values it reads. */
function suffixOf(graph: Graph, quantized: Graph, site: string): Graph {
  let i = 0;
  while (
    i < graph.nodes.length &&
    quantized.nodes[i].name === graph.nodes[i].name &&
    graph.nodes[i].name !== site
  )
    i++;
  const nodes = quantized.nodes.slice(i);
  const defined = new Set(nodes.flatMap((n) => n.outputs));
  const reads = [...nodes.flatMap((n) => nodeInputs(n)), ...quantized.outputs];
  const inputs = [...new Set(reads)].filter((v) => !defined.has(v) && !(v in quantized.weights));
  return { ...quantized, inputs, nodes };
}

/** The float32 run of one batch, keeping the values in `wanted`. */
function capture(graph: Graph, inputs: readonly Tensor[], wanted: ReadonlySet<string>): Map<string, Tensor> {
  const values = new Map<string, Tensor>();
  graph.inputs.forEach((n, k) => {
    values.set(n, inputs[k]);
  });
  interpret(graph, inputs, {
    onNode: (node, outs) => {
      node.outputs.forEach((o, k) => {
        if (wanted.has(o)) values.set(o, outs[k]);
      });
    },
  });
  return values;
}

/**
 * Each site's score: the output distance when that site alone is quantized. Everything before a site computes
 * what float32 does, so only the graph from the site on is run again, on the float32 run's values (graphs with
 * control flow, whose blocks read outer values implicitly, are run whole). About half an interpreter pass over
 * the batches per site on a chain of layers.
 */
export function measureSensitivity(
  input: SensitivityInput,
  onSite?: (done: number, total: number) => void,
): Map<string, number> {
  const { graph, amax, precision, batches, metric, reference } = input;
  const names = quantizationSites(graph).map((s) => s.node);
  const whole = graph.nodes.some((n) => n.subgraphs?.length);
  const runs = names.map((site) => {
    const q = insertQuantization(graph, amax, precision, new Set(names.filter((n) => n !== site)));
    return whole ? q : suffixOf(graph, q, site);
  });
  const wanted = new Set(runs.flatMap((g) => g.inputs));
  const dist = names.map(() => new Distance());
  batches.forEach((inputs, b) => {
    const values = whole ? undefined : capture(graph, inputs, wanted);
    runs.forEach((g, k) => {
      const ins = values ? g.inputs.map((v) => values.get(v) as Tensor) : inputs;
      interpret(g, ins).forEach((o, j) => {
        dist[k].add(o, reference[b][j]);
      });
      onSite?.(b * names.length + k + 1, batches.length * names.length);
    });
  });
  return new Map(names.map((n, k) => [n, dist[k].value(metric)]));
}

/** The whole model's output distance with every site quantized except those in `keep`. */
export function wholeModelDistance(input: SensitivityInput, keep: ReadonlySet<string>): number {
  const { graph, amax, precision, batches, metric, reference } = input;
  const quantized = insertQuantization(graph, amax, precision, keep);
  return outputDistance(run(quantized, batches), reference, metric);
}

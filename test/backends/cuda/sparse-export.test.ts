/**
 * 2:4 detection on the graphs torch.export writes for nn.Linear, through the host part of compile(): the
 * default passes at fp16, the partition, the segment's Network, the engine plan and the sparse selection (with
 * sparse "unavailable", so no library is called and every eligible layer is listed with that reason).
 *
 * The first H100 run compiled prune_2_4.py's single-Linear models with the default minBlockSize (5): their
 * three nodes (cast, linear, cast) went to the LibTorch fallback whole, so no weight was ever checked and the
 * report listed no layer. These tests pin both halves: the default partition leaves no engine, and with the
 * whole graph in an engine the pruned weight is found, in both export forms.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { MatmulStep } from "../../../src/backends/cuda/fuse/steps.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import type { EngineMatmul } from "../../../src/backends/cuda/sparse-select.js";
import { chooseSparseMatmuls } from "../../../src/backends/cuda/sparse-select.js";
import { convertSegment } from "../../../src/converters/index.js";
import { loadModel } from "../../../src/frontends/load-model.js";
import type { Graph } from "../../../src/ir/graph.js";
import { tensorFromNumbers, toFloat64Array } from "../../../src/ir/tensor.js";
import { type PartitionOptions, partitionGraph } from "../../../src/partition/partition.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { normalizePrecisions } from "../../../src/runtime/options.js";
import { MODELS } from "../../helpers.js";
import { ints, TestGraph } from "../../passes/graphs.js";
import { prune24 } from "./sparse-nets.js";

const UNAVAILABLE = "no GPU in this test";

/** What compile() would find at fp16: the partition, and per engine segment the sparse summary. */
function sparseOf(graph: Graph, partition: PartitionOptions) {
  const { graph: lowered } = runPipeline(
    graph,
    defaultPipeline({ enabledPrecisions: normalizePrecisions(["fp16"]) }),
  );
  const p = partitionGraph(lowered, partition);
  const summaries = p.segments
    .filter((s) => s.kind === "engine")
    .map((s) => {
      const plan = planCudaEngine(convertSegment(p.graph, s), { precision: "fp16" });
      const steps = plan.steps.filter((st): st is MatmulStep => st.kind === "matmul");
      // a stand-in for each dense plan: with sparse unavailable the selection only lists, never times
      const matmuls = new Map(steps.map((st) => [st, {} as EngineMatmul]));
      return chooseSparseMatmuls(
        plan,
        matmuls,
        { mode: "prefer", unavailable: UNAVAILABLE },
        1 << 20,
        () => {},
      );
    });
  return { partition: p, summaries };
}

/** nn.Linear(k, n) with a 2:4-pruned weight on x [m, k], as torch.export writes it (p_weight, p_bias, x). */
function exportedLinear(m: number, k: number, n: number, form: "linear" | "permute+addmm"): Graph {
  const g = new TestGraph();
  const dense = Array.from({ length: n * k }, (_, i) => Math.sin(i * 0.37) * 0.05);
  const pruned = prune24(tensorFromNumbers("float32", [n, k], dense));
  const w = g.weight("p_weight", [n, k], { values: Array.from(toFloat64Array(pruned)) });
  const b = g.weight("p_bias", [n], { lo: -0.1, hi: 0.1 });
  const x = g.input("x", [m, k]);
  // torch.export's default IR keeps aten.linear; after run_decompositions() it is permute + addmm
  const y =
    form === "linear"
      ? g.node("aten.linear.default", { input: x, weight: w, bias: b })
      : g.node("aten.addmm.default", {
          self: b,
          mat1: x,
          mat2: g.node("aten.permute.default", { self: w, dims: ints([1, 0]) }),
        });
  return g.build(y);
}

describe("2:4 detection on torch.export's nn.Linear", () => {
  it("with the default minBlockSize the single-Linear graph runs in the fallback whole: nothing is checked", () => {
    const { partition, summaries } = sparseOf(exportedLinear(1024, 768, 768, "linear"), {});
    expect(partition.segments.map((s) => s.kind)).toEqual(["fallback"]);
    expect(partition.report.fallbackNodes.map((f) => f.op)).toEqual([
      "aten._to_copy.default",
      "aten.linear.default",
      "aten._to_copy.default",
    ]);
    expect(partition.report.fallbackNodes[0]!.reason).toMatch(/fewer than minBlockSize \(5\)/);
    expect(summaries).toEqual([]);
  });

  it.each(["linear", "permute+addmm"] as const)(
    "finds the pruned weight of aten %s at M=1024 N=768 K=768, bias in the epilogue",
    (form) => {
      const { partition, summaries } = sparseOf(exportedLinear(1024, 768, 768, form), {
        requireFullCompilation: true,
      });
      expect(partition.segments.map((s) => s.kind)).toEqual(["engine"]);
      expect(summaries).toHaveLength(1);
      const s = summaries[0]!;
      expect(s.weightsChecked).toBe(1);
      expect(s.layers).toHaveLength(1);
      expect(s.layers[0]).toMatchObject({ shape: "M=1024 N=768 K=768", ran: "dense", reason: UNAVAILABLE });
    },
  );

  it("the same weight unpruned is checked and not listed", () => {
    const g = new TestGraph();
    const w = g.weight("p_weight", [64, 64]);
    const b = g.weight("p_bias", [64]);
    const y = g.node("aten.linear.default", { input: g.input("x", [32, 64]), weight: w, bias: b });
    const { summaries } = sparseOf(g.build(y), { requireFullCompilation: true });
    expect(summaries[0]).toMatchObject({ weightsChecked: 1, layers: [] });
  });

  it("finds every pruned Linear of the exported mlp fixture (aten.linear with p_* parameters), and says M=4 is not aligned", async () => {
    const model = await loadModel(join(MODELS, "mlp.pt2"));
    const graph = model.graph;
    // fc1's K = 20 is not a multiple of 4 (stays dense, not eligible); fc2..fc4 are pruned as prune_2_4.py does
    for (const name of ["p_fc2_weight", "p_fc3_weight", "p_fc4_weight"]) {
      const w = graph.weights[name]!.tensor;
      (w.data as Float32Array).set(prune24(w).data as Float32Array); // the loaded graph is frozen, its data is not
    }
    const { summaries } = sparseOf(graph, { minBlockSize: 1 });
    const layers = summaries.flatMap((s) => s?.layers ?? []);
    expect(summaries.reduce((a, s) => a + (s?.weightsChecked ?? 0), 0)).toBe(4);
    expect(layers.map((l) => [l.shape, l.ran])).toEqual([
      ["M=4 N=48 K=64", "dense"],
      ["M=4 N=32 K=48", "dense"],
      ["M=4 N=10 K=32", "dense"],
    ]);
    for (const l of layers) expect(l.reason).toMatch(/^shape not aligned: M=4/);
  });
});

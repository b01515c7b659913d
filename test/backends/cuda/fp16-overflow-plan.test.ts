// The CUDA engine honours the float32 islands fp16Overflow leaves in an fp16 graph: with keepFloat32 (what the
// backend sets for fp16Overflow: "keep-fp32") the plan stores and computes them in float32, and the emulated
// fp16 engine gives a finite result within fp16 tolerance of the float32 reference interpreter. Without it the
// plan stores every float tensor in half precision and the engine returns inf, as PyTorch eager fp16 does.
import { describe, expect, it } from "vitest";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { convertGraph } from "../../../src/converters/index.js";
import type { Graph } from "../../../src/ir/graph.js";
import { type Tensor, toFloat64Array } from "../../../src/ir/tensor.js";
import type { Network } from "../../../src/network/network.js";
import { interpret } from "../../../src/ops/interpret.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { compareTensors } from "../../../src/util/compare.js";
import { randomTensor } from "../../passes/graphs.js";
import {
  invertedResidualGraph,
  overflowingConvGraph,
  overflowingGraph,
} from "../../passes/overflow-graphs.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const values = (t: Tensor) => Array.from(toFloat64Array(t));
const x = (seed: number) => randomTensor([1, 256], seed, 0, 1);

function lowered(graph: Graph, sample: Tensor = x(3)): Graph {
  const passes = defaultPipeline({
    enabledPrecisions: ["float16", "float32"],
    fp16Overflow: { mode: "keep-fp32", samples: [[sample]] },
  });
  return runPipeline(graph, passes).graph;
}

/** The names of the nodes whose output the lowered graph keeps in float32. */
const float32Nodes = (low: Graph) =>
  low.nodes.filter((n) => low.values[n.outputs[0]].dtype === "float32").map((n) => n.name);

/**
 * For seeds 3 and 11: the emulated fp16 engine with keepFloat32 is finite and within 1e-2 (relative to the
 * largest reference magnitude) of the float32 interpreter on `graph`; without keepFloat32 it is not finite.
 */
function expectFiniteOnlyWithKeepFloat32(graph: Graph, net: Network, sample: (seed: number) => Tensor): void {
  for (const seed of [3, 11]) {
    const inputs = { [net.inputs[0]]: sample(seed) };
    const [want] = interpret(graph, [sample(seed)]);
    const got = emulateEngine(net, inputs, { precision: "fp16", keepFloat32: true }).outputs[0];
    expect(values(got).every(Number.isFinite)).toBe(true);
    expect(compareTensors(got, want).relative).toBeLessThan(1e-2);
    const half = emulateEngine(net, inputs, { precision: "fp16" }).outputs[0];
    expect(values(half).every(Number.isFinite)).toBe(false);
  }
}

describe("fp16 engine with float32 islands", () => {
  it("the plan stores the kept nodes' tensors in float32 only with keepFloat32", () => {
    const net = convertGraph(lowered(overflowingGraph()));
    const storage = (keepFloat32: boolean) => {
      const infos = planCudaEngine(net, { precision: "fp16", keepFloat32 }).infos;
      return (t: string) => infos.get(t)?.storage;
    };
    const kept = storage(true);
    const plain = storage(false);
    expect(kept("proj/matmul")).toBe("float32");
    expect(kept("total/sum")).toBe("float32");
    expect(kept("scale_up/mul")).toBe("float16");
    expect(kept("out/add")).toBe("float16");
    expect(plain("proj/matmul")).toBe("float16");
  });

  it.skipIf(!hasGxx())(
    "emulated: finite and within 1e-2 of the float32 reference; inf without keepFloat32",
    () => {
      const graph = overflowingGraph();
      const net = convertGraph(lowered(graph));
      expectFiniteOnlyWithKeepFloat32(graph, net, x);
    },
    120_000,
  );

  it.skipIf(!hasGxx())(
    "emulated conv block (channels-last fp32 conv island): finite, within 1e-2; NaN without keepFloat32",
    () => {
      const graph = overflowingConvGraph();
      const xc = (seed: number) => randomTensor([1, 16, 8, 8], seed, 0, 1);
      const low = lowered(graph, xc(3));
      const kept = float32Nodes(low);
      expect(kept).toEqual(expect.arrayContaining(["expand", "project", "pool", "scale_down"]));
      expect(kept).not.toContain("scale_up");
      const net = convertGraph(low);
      const infos = planCudaEngine(net, { precision: "fp16", keepFloat32: true }).infos;
      const convOut = [...infos.values()].find((i) => i.name.startsWith("expand/"));
      expect(convOut?.storage).toBe("float32");
      expectFiniteOnlyWithKeepFloat32(graph, net, xc);
    },
    120_000,
  );

  it.skipIf(!hasGxx())(
    "emulated inverted residual: fp32 expand and residual add around an fp16 depthwise conv; inf without",
    () => {
      const graph = invertedResidualGraph();
      const xr = (seed: number) => randomTensor([1, 16, 6, 6], seed, 0.5, 1);
      const low = lowered(graph, xr(3));
      const f32 = float32Nodes(low);
      expect(f32).toEqual(expect.arrayContaining(["expand", "expand_relu6", "residual", "pool"]));
      expect(f32).not.toContain("depthwise");
      expect(f32).not.toContain("project");
      expect(f32).not.toContain("scale_down"); // it reads the mean, 6.3e4: within range
      const net = convertGraph(low);
      expectFiniteOnlyWithKeepFloat32(graph, net, xr);
    },
    120_000,
  );
});

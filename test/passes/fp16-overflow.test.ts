// fp16 overflow: a graph whose hidden values exceed 65504 gives inf in the reference fp16 run; keeping the nodes
// the analysis names in float32 gives a finite result within fp16 tolerance of the float32 reference.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Graph } from "../../src/ir/graph.js";
import { type Tensor, toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/interpret.js";
import { assignPrecision } from "../../src/passes/assign-precision.js";
import {
  FP16_MAX,
  Fp16OverflowError,
  formatKeptNodes,
  fp16OverflowPass,
  keepOverflowInFloat32,
} from "../../src/passes/fp16-overflow.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";
import { compareTensors } from "../../src/util/compare.js";
import { inputsFor, randomTensor } from "./graphs.js";
import { overflowingGraph, tameGraph } from "./overflow-graphs.js";
import { buildRandomGraph, recipes } from "./random-graphs.js";

const FP16 = { enabledPrecisions: ["float16", "float32"] } as const;

const sample = (graph: Graph, seed = 3): Tensor[] =>
  graph.inputs.map((n) => randomTensor(graph.values[n].shape, seed, 0, 1));

const values = (t: Tensor) => Array.from(toFloat64Array(t));
const allFinite = (t: Tensor) => values(t).every(Number.isFinite);

describe("fp16 overflow analysis", () => {
  it("the reference fp16 run of the plain assignment overflows (the premise)", () => {
    const graph = overflowingGraph();
    const inputs = sample(graph);
    const fp32 = interpret(graph, inputs)[0];
    expect(allFinite(fp32)).toBe(true);
    const fp16 = interpret(assignPrecision(graph, FP16), inputs)[0];
    expect(allFinite(fp16)).toBe(false);
  });

  it("keeps the overflowing nodes in float32: finite, within fp16 tolerance of the float32 reference", () => {
    const graph = overflowingGraph();
    const inputs = sample(graph);
    const r = keepOverflowInFloat32(graph, FP16, { samples: [inputs] });
    expect(r.finite).toBe(true);
    // proj makes values beyond 65504; norm, total read them; total makes 3e7; scale_down reads it.
    expect(r.kept.map((k) => k.node)).toEqual(["proj", "norm", "total", "scale_down"]);
    const proj = r.kept[0];
    expect(proj.op).toBe("aten.mm.default");
    expect(proj.maxAbs).toBeGreaterThan(FP16_MAX);
    expect(proj.source).toMatch(/model\.py/);
    // The unrelated scale-up and the final add still compute in float16.
    const dtypeOut = (name: string) =>
      r.graph.values[r.graph.nodes.find((n) => n.name === name)!.outputs[0]].dtype;
    expect(dtypeOut("scale_up")).toBe("float16");
    expect(dtypeOut("proj")).toBe("float32");
    expect(dtypeOut("out")).toBe("float16");
    // Golden: the float32 reference interpreter on the original graph, on a second input too.
    for (const seed of [3, 11]) {
      const x = sample(graph, seed);
      const want = interpret(graph, x)[0];
      const got = interpret(r.graph, x)[0];
      expect(allFinite(got)).toBe(true);
      expect(compareTensors(got, want).relative).toBeLessThan(1e-2); // max |got − want| / max |want|
    }
    expect(formatKeptNodes(r)).toMatch(/proj \(aten\.mm\.default\) max \|x\| 1\.\d+e\+5 at model\.py/);
  });

  it("pins readers of an inserted cast that overflows when only the float16 run shows it", () => {
    const graph = overflowingGraph();
    // A limit above every value: the float32 pass pins nothing, so the float16 runs must find it all.
    const r = keepOverflowInFloat32(graph, FP16, { samples: [sample(graph)], maxMagnitude: 1e12 });
    expect(r.finite).toBe(true);
    expect(r.kept.every((k) => k.reason === "fp16-overflow")).toBe(true);
    expect(r.kept.map((k) => k.node)).toContain("proj");
    expect(r.runs).toBeGreaterThan(2);
  });

  it("never changes a graph that does not overflow", () => {
    for (const graph of [tameGraph(), overflowingGraph()]) {
      const x = graph.inputs.map((n) => randomTensor(graph.values[n].shape, 5, -1e-3, 1e-3));
      const plain = assignPrecision(graph, FP16);
      const r = keepOverflowInFloat32(graph, FP16, { samples: [x] });
      expect(r.kept).toEqual([]);
      expect(r.graph).toEqual(plain);
    }
  });

  it("as the pipeline's assign-precision: keep-fp32 records the nodes, error names the first", () => {
    const graph = overflowingGraph();
    const samples = [sample(graph)];
    let seen: ReturnType<typeof keepOverflowInFloat32> | undefined;
    const passes = defaultPipeline({
      enabledPrecisions: ["float16", "float32"],
      fp16Overflow: { mode: "keep-fp32", samples, onResult: (r) => (seen = r) },
    });
    const { graph: out, trace } = runPipeline(graph, passes);
    expect(passes.map((p) => p.name)).toContain("assign-precision");
    expect(seen?.kept.length).toBe(4);
    expect(trace.entries.filter((e) => e.rule === "keep-float32-on-overflow").map((e) => e.node)).toEqual(
      seen?.kept.map((k) => k.node),
    );
    expect(allFinite(interpret(out, samples[0])[0])).toBe(true);
    const failing = fp16OverflowPass({ enabledPrecisions: ["float16"] }, { mode: "error", samples });
    expect(() => runPipeline(graph, [failing])).toThrow(Fp16OverflowError);
    expect(() => runPipeline(graph, [failing])).toThrow(
      /node 'proj' \(aten\.mm\.default\).*--fp16-overflow=keep-fp32/,
    );
  });

  it("property: on random conv/bn/activation/view graphs that do not overflow, the pipeline's graph is the same", () => {
    let quiet = 0;
    fc.assert(
      fc.property(recipes, (recipe) => {
        const graph = buildRandomGraph(recipe);
        const enabledPrecisions = ["float16", "float32"] as const;
        let kept = -1;
        const samples = [inputsFor(graph, 9)];
        const onResult = (r: { kept: readonly unknown[] }) => {
          kept = r.kept.length;
        };
        const passes = defaultPipeline({
          enabledPrecisions,
          fp16Overflow: { mode: "keep-fp32", samples, onResult },
        });
        const withOption = runPipeline(graph, passes).graph;
        const without = runPipeline(graph, defaultPipeline({ enabledPrecisions })).graph;
        expect(kept).toBeGreaterThanOrEqual(0);
        if (kept === 0) {
          quiet++;
          expect(withOption).toEqual(without);
        }
      }),
      { numRuns: Number(process.env.TORCHC_PROPERTY_RUNS ?? 40) },
    );
    expect(quiet).toBeGreaterThan(0);
  });
});

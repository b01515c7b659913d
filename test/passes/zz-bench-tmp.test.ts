import { it } from "vitest";
import { BATCH_NORM } from "../../src/passes/fold-batch-norm.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";
import { bool, float, int, ints, none, TestGraph } from "./graphs.js";
it("bench", () => {
  for (const blocks of [250, 1000]) {
  const g = new TestGraph();
  let v = g.input("x", [1, 8, 4, 4]);
  for (let i = 0; i < blocks; i++) {
    const c = g.node("aten.convolution.default", { input: v, weight: g.weight(`w${i}`, [8, 8, 1, 1]), bias: none, stride: ints([1, 1]), padding: ints([0, 0]), dilation: ints([1, 1]), transposed: bool(false), output_padding: ints([0, 0]), groups: int(1) });
    const [bn] = g.nodeOutputs(BATCH_NORM, { input: c, weight: g.weight(`g${i}`, [8]), bias: g.weight(`b${i}`, [8]), running_mean: g.weight(`m${i}`, [8]), running_var: g.weight(`v${i}`, [8], { lo: 0.5, hi: 2 }), momentum: float(0.1), eps: float(1e-5) });
    v = g.node("aten.mul.Tensor", { self: bn, other: g.node("aten.sigmoid.default", { self: bn }) });
  }
  const graph = g.build(v);
  const t = performance.now();
  const { graph: out, trace } = runPipeline(graph, defaultPipeline({ enabledPrecisions: ["float16"] }));
  console.log(graph.nodes.length, "→", out.nodes.length, "in", (performance.now() - t).toFixed(0), "ms;", trace.passes.map((p) => `${p.pass}:${p.ms.toFixed(0)}`).join(" "));
  }
});

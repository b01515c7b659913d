// keepFloat32 also keeps the float32 tensors assign-precision always makes (layer norm, softmax) in float32, in
// compiles with fp16Overflow: "keep-fp32". A pre-norm transformer block (no overflow) planned that way still runs
// through the emulated fp16 engine within fp16 tolerance of the float32 reference.
import { describe, expect, it } from "vitest";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { convertGraph } from "../../../src/converters/index.js";
import { type Tensor, toFloat64Array } from "../../../src/ir/tensor.js";
import { interpret } from "../../../src/ops/interpret.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { inputsFor } from "../../passes/graphs.js";
import { emulateEngine, hasGxx } from "./emulate.js";
import { preNormBlocksGraph } from "./transformer-graphs.js";

const values = (t: Tensor) => Array.from(toFloat64Array(t));

describe.skipIf(!hasGxx())("keepFloat32 on a transformer block", () => {
  it("layer norm and softmax islands stored in float32: within 1e-2 of the float32 reference", () => {
    const graph = preNormBlocksGraph({ B: 1, N: 9, C: 32, heads: 2, depth: 1 });
    const inputs = inputsFor(graph, 13);
    let kept = -1;
    const passes = defaultPipeline({
      enabledPrecisions: ["float16", "float32"],
      fp16Overflow: { mode: "keep-fp32", samples: [inputs], onResult: (r) => (kept = r.kept.length) },
    });
    const lowered = runPipeline(graph, passes).graph;
    expect(kept).toBe(0);
    const net = convertGraph(lowered);
    const f32 = (keepFloat32: boolean) =>
      [...planCudaEngine(net, { precision: "fp16", keepFloat32 }).infos.values()].filter(
        (i) => i.role === "activation" && i.storage === "float32",
      ).length;
    expect(f32(false)).toBe(0);
    expect(f32(true)).toBeGreaterThan(0);
    const named = Object.fromEntries(lowered.inputs.map((n, i) => [n, inputs[i]]));
    const [want] = interpret(graph, inputs);
    const [got] = emulateEngine(net, named, { precision: "fp16", keepFloat32: true }).outputs;
    const [a, b] = [values(got), values(want)];
    const err = Math.max(...a.map((v, i) => Math.abs(v - b[i]))) / Math.max(...b.map(Math.abs));
    expect(err).toBeLessThan(1e-2);
  }, 120_000);
});

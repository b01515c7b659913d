// Where a generated int8 convolution can also write its quantize's output (src/backends/cuda/igemm-quantize-copy.ts),
// on a scheduled residual block: conv c1 → ReLU r1, which a shortcut add reads in float and conv c2 reads through a
// quantize; the quantize is then a kernel of its own after c1, which c1 can take over unless a tensor alive in
// between shares q's bytes.
import { describe, expect, it } from "vitest";
import type { ConvStep } from "../../../src/backends/cuda/fuse/steps.js";
import { quantizeCopyAfter } from "../../../src/backends/cuda/igemm-quantize-copy.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { convertGraph } from "../../../src/converters/index.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { foldQuantizedLayers } from "../../../src/passes/quantize-fold.js";
import { insertQuantization, quantizationSites } from "../../../src/passes/quantize-insert.js";
import { residualBlock } from "../../quant/residual-block.js";

function plan() {
  const lowered = runPipeline(residualBlock(), defaultPipeline({})).graph;
  const amax = new Map(quantizationSites(lowered).map((s) => [s.input, 2]));
  const network = convertGraph(foldQuantizedLayers(insertQuantization(lowered, amax, "int8")));
  return planCudaEngine(network, { precision: "fp16", channelsLast: true, int8Convs: true });
}

describe("the int8 copy a generated convolution can write for its quantize", () => {
  const p = plan();
  const convs = [...p.steps.entries()].filter(([, s]) => s.kind === "conv") as [number, ConvStep][];

  it("is found after the convolution whose output a float reader and a quantize both read", () => {
    const [at, c1] = convs.find(([, s]) => s.layer.name.includes("c1"))!;
    expect(c1.int8).toBeDefined();
    const copy = quantizeCopyAfter(p, at);
    if (typeof copy === "string") throw new Error(copy);
    expect(copy.layer.type).toBe("quantize");
    expect(copy.layer.inputs[0]).toBe(c1.output);
    expect(p.infos.get(copy.q)!.storage).toBe("int8");
    // the copy is what a later int8 convolution reads
    expect(convs.some(([, s]) => s.int8 && s.x === copy.q)).toBe(true);
  });

  it("is refused where the output is read by an element kernel that does more than quantize", () => {
    const [at] = convs.find(([, s]) => s.layer.name.includes("c3"))!;
    // its output is staged and copied out to the network output by a relayout kernel
    expect(quantizeCopyAfter(p, at)).toMatch(/not a lone quantize/);
  });

  it("is refused when a tensor alive in between holds q's bytes", () => {
    const [at, c1] = convs.find(([, s]) => s.layer.name.includes("c1"))!;
    const copy = quantizeCopyAfter(p, at);
    if (typeof copy === "string") throw new Error(copy);
    // c1's output is alive from c1 on: give it q's offset (as a memory plan reusing those bytes would)
    const offsets = new Map(p.memory.offsets);
    offsets.set(c1.output, offsets.get(copy.q)!);
    const clashing = { ...p, memory: { ...p.memory, offsets } };
    expect(quantizeCopyAfter(clashing, at)).toMatch(new RegExp(`'${c1.output}' holds q's bytes`));
  });
});

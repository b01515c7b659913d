// Image stems over a few input channels padded with zero channels to 8 for cuDNN (plan/pad-stem-channels.ts,
// opt-in TORCHC_PAD_STEM_CHANNELS=1): the pad joins the input's cast in the first element kernel (no step is
// added), the convolution reads 8 channels, and the emulated engine computes the aten reference's numbers; other
// convolutions keep their channels, each with the reason.
import { afterEach, describe, expect, it } from "vitest";
import { paddedWeight, padStemRefusal } from "../../../src/backends/cuda/plan/pad-stem-channels.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { NetMaker } from "../../../src/backends/cuda/testing/nets.js";
import { convertGraph } from "../../../src/converters/index.js";
import type { Graph } from "../../../src/ir/graph.js";
import { tensorFromNumbers, toFloat64Array } from "../../../src/ir/tensor.js";
import type { ConvolutionLayer } from "../../../src/network/layers/index.js";
import { interpret } from "../../../src/ops/index.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { compareTensors } from "../../../src/util/compare.js";
import { inputsFor } from "../../passes/graphs.js";
import { AtenGraph, Is } from "./aten-graph.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

/** A ResNet-style stem: conv k×k / 2 (padded) + bias → relu → conv 3×3 to 8 channels. */
function stem(cin: number, k: number, image = 24): Graph {
  const g = new AtenGraph();
  const x = g.input("x", [2, cin, image, image]);
  const conv = (input: string, w: string, b: string | undefined, stride: number, pad: number) =>
    g.node("aten.convolution.default", {
      input,
      weight: w,
      bias: b === undefined ? { kind: "none" } : b,
      stride: Is([stride, stride]),
      padding: Is([pad, pad]),
      dilation: Is([1, 1]),
      transposed: { kind: "bool", value: false },
      output_padding: Is([0, 0]),
      groups: { kind: "int", value: 1 },
    });
  const w1 = g.weight("w1", [16, cin, k, k], { lo: -0.3, hi: 0.3 });
  const b1 = g.weight("b1", [16], { lo: -0.5, hi: 0.5 });
  const y = g.node("aten.relu.default", { self: conv(x, w1, b1, 2, Math.floor(k / 2)) });
  const w2 = g.weight("w2", [8, 16, 3, 3], { lo: -0.2, hi: 0.2 });
  return g.build(conv(y, w2, undefined, 1, 1));
}

function plan(graph: Graph, precision: "fp32" | "fp16") {
  const p = precision === "fp16" ? "float16" : "float32";
  const lowered = runPipeline(graph, defaultPipeline({ enabledPrecisions: [p] })).graph;
  return { lowered, plan: planCudaEngine(convertGraph(lowered), { precision }) };
}

/** The stem's conv step's input channels, and the step count. */
function stemShape(graph: Graph) {
  const { plan: p } = plan(graph, "fp16");
  const conv = p.steps.find((s) => s.kind === "conv");
  if (conv?.kind !== "conv") throw new Error(p.summary.join("\n"));
  return { channels: p.infos.get(conv.x)?.shape[1], steps: p.steps.length, summary: p.summary.join("\n") };
}

describe("stems padded to 8 input channels", () => {
  it("pads a 7×7 RGB stem: the conv reads 8 channels, with no step added", () => {
    process.env.TORCHC_DIRECT_STEM_MAX_MACS = "1000";
    const off = stemShape(stem(3, 7));
    expect(off.channels).toBe(3);
    process.env.TORCHC_PAD_STEM_CHANNELS = "1";
    const on = stemShape(stem(3, 7));
    expect(on.channels, on.summary).toBe(8);
    expect(on.steps, on.summary).toBe(off.steps);
  });

  it("leaves stems the direct kernel takes, 8-channel inputs, 1×1 and fp32 convolutions alone, with the reason", () => {
    process.env.TORCHC_PAD_STEM_CHANNELS = "1";
    const reason = (g: Graph, precision: "fp16" | "fp32" = "fp16") => {
      const net = convertGraph(plan(g, precision).lowered);
      const conv = net.layers.find(
        (l): l is ConvolutionLayer => l.type === "convolution",
      ) as ConvolutionLayer;
      return padStemRefusal(net, conv, true);
    };
    expect(reason(stem(3, 7))).toBe("the direct stem kernel takes it");
    process.env.TORCHC_DIRECT_STEM_MAX_MACS = "1000";
    expect(reason(stem(3, 7))).toBeNull();
    expect(reason(stem(8, 7))).toBe("8 input channels");
    expect(reason(stem(3, 1))).toBe("a 1×1 convolution");
    expect(reason(stem(3, 7), "fp32")).toBe("not a float16 convolution");
  });

  it("leaves NCHW plans and a stem whose output is the network's output alone", () => {
    process.env.TORCHC_DIRECT_STEM_MAX_MACS = "1000";
    process.env.TORCHC_PAD_STEM_CHANNELS = "1";
    const lowered = plan(stem(3, 7), "fp16").lowered;
    const nchw = planCudaEngine(convertGraph(lowered), { precision: "fp16", channelsLast: false });
    const conv = nchw.steps.find((s) => s.kind === "conv");
    expect(conv?.kind === "conv" && nchw.infos.get(conv.x)?.shape[1]).toBe(3);
    // a lone fp16 stem: the convolution writes the network's output (an NCHW layout)
    const m = new NetMaker(3, "float16");
    const alone = m.build([m.conv(m.input("x", [2, 3, 24, 24]), 16, 7, { stride: 2 })]);
    const layer = alone.layers.find(
      (l): l is ConvolutionLayer => l.type === "convolution",
    ) as ConvolutionLayer;
    expect(alone.outputs).toContain(layer.output);
    expect(padStemRefusal(alone, layer, true)).toBe("its output is a network output");
    const planned = planCudaEngine(alone, { precision: "fp16" });
    expect(planned.steps.filter((st) => st.kind === "element")).toHaveLength(0);
  });

  it("puts the weight's channels first and zeros after them", () => {
    const w = tensorFromNumbers("float32", [2, 3, 1, 2], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    const p = paddedWeight(w, [2, 3, 1, 2]);
    expect(p.shape).toEqual([2, 8, 1, 2]);
    const v = Array.from(toFloat64Array(p));
    expect(v.slice(0, 16)).toEqual([1, 2, 3, 4, 5, 6, ...new Array(10).fill(0)]);
    expect(v.slice(16)).toEqual([7, 8, 9, 10, 11, 12, ...new Array(10).fill(0)]);
  });

  for (const [cin, k] of [
    [3, 7],
    [1, 3],
    [4, 5],
  ] as const) {
    it.skipIf(!hasGxx())(
      `${cin}-channel ${k}×${k} stem: the emulated engine computes the aten reference's numbers`,
      () => {
        process.env.TORCHC_DIRECT_STEM_MAX_MACS = "1000";
        process.env.TORCHC_PAD_STEM_CHANNELS = "1";
        const graph = stem(cin, k);
        const inputs = inputsFor(graph, 7);
        const [want] = interpret(graph, inputs);
        const { lowered, plan: p } = plan(graph, "fp16");
        const conv = p.steps.find((s) => s.kind === "conv");
        expect(conv?.kind === "conv" && p.infos.get(conv.x)?.shape[1]).toBe(8);
        const named = Object.fromEntries(lowered.inputs.map((n, i) => [n, inputs[i]]));
        const { outputs } = emulateEngine(convertGraph(lowered), named, { precision: "fp16" });
        expect(compareTensors(outputs[0], want).relative).toBeLessThan(1e-2);
      },
      120_000,
    );
  }
});

// Patch-embedding convolutions in fp16 engines (plan/patchify.ts): the stem of a ViT becomes one element kernel
// (the input's cast and the patch copy together) and a cuBLASLt matmul with its bias, and computes what the aten
// reference computes; other convolutions keep cuDNN, each with the reason.
import { describe, expect, it } from "vitest";
import { patchifyRefusal } from "../../../src/backends/cuda/plan/patchify.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { convertGraph } from "../../../src/converters/index.js";
import type { Graph } from "../../../src/ir/graph.js";
import type { ConvolutionLayer } from "../../../src/network/layers/index.js";
import { interpret } from "../../../src/ops/index.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { compareTensors } from "../../../src/util/compare.js";
import { inputsFor } from "../../passes/graphs.js";
import { AtenGraph, Is } from "./aten-graph.js";
import { emulateEngine, hasGxx } from "./emulate.js";

interface Stem {
  readonly cin: number;
  readonly image: readonly [number, number];
  readonly kernel: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding?: readonly [number, number];
  readonly bias: boolean;
}

/** conv → flatten(2) → transpose(1, 2) → linear, as a ViT's patch embedding feeds its first block. */
function stem(s: Stem): Graph {
  const g = new AtenGraph();
  const x = g.input("x", [2, s.cin, ...s.image]);
  const w = g.weight("w", [24, s.cin, ...s.kernel], { lo: -0.2, hi: 0.2 });
  const b = s.bias ? g.weight("b", [24], { lo: -0.5, hi: 0.5 }) : undefined;
  const conv = g.node("aten.convolution.default", {
    input: x,
    weight: w,
    bias: b === undefined ? { kind: "none" } : b,
    stride: Is(s.stride),
    padding: Is(s.padding ?? [0, 0]),
    dilation: Is([1, 1]),
    transposed: { kind: "bool", value: false },
    output_padding: Is([0, 0]),
    groups: { kind: "int", value: 1 },
  });
  const flat = g.node("aten.flatten.using_ints", { self: conv, start_dim: { kind: "int", value: 2 } });
  const tokens = g.node("aten.transpose.int", {
    self: flat,
    dim0: { kind: "int", value: 1 },
    dim1: { kind: "int", value: 2 },
  });
  const lw = g.weight("lw", [16, 24], { lo: -0.2, hi: 0.2 });
  return g.build(g.node("aten.linear.default", { input: tokens, weight: lw }));
}

function plan(graph: Graph, precision: "fp32" | "fp16") {
  const p = precision === "fp16" ? "float16" : "float32";
  const lowered = runPipeline(graph, defaultPipeline({ enabledPrecisions: [p] })).graph;
  return { lowered, plan: planCudaEngine(convertGraph(lowered), { precision }) };
}

const VIT: Stem = { cin: 3, image: [32, 32], kernel: [8, 8], stride: [8, 8], bias: true };
const SWIN: Stem = { cin: 3, image: [16, 24], kernel: [4, 4], stride: [4, 4], bias: false };

describe("patch-embedding convolutions as a patch copy and a matmul", () => {
  for (const [name, s] of [
    ["ViT 8×8/8 with bias", VIT],
    ["Swin 4×4/4 without bias, non-square image", SWIN],
  ] as const) {
    it(`${name}: fp16 plans no convolution; the cast and the patch copy are one kernel`, () => {
      const { plan: p } = plan(stem(s), "fp16");
      const summary = p.summary.join("\n");
      expect(
        p.steps.filter((st) => st.kind === "conv"),
        summary,
      ).toHaveLength(0);
      expect(p.steps[0].kind, summary).toBe("element");
      expect(p.steps[1].kind, summary).toBe("matmul");
      expect(p.steps.filter((st) => st.kind === "element").length, summary).toBeLessThanOrEqual(2);
    });

    it.skipIf(!hasGxx())(
      `${name}: the emulated engine computes the aten reference's numbers`,
      () => {
        const graph = stem(s);
        const inputs = inputsFor(graph, 5);
        const [want] = interpret(graph, inputs);
        for (const precision of ["fp32", "fp16"] as const) {
          const { lowered } = plan(graph, precision);
          const named = Object.fromEntries(lowered.inputs.map((n, i) => [n, inputs[i]]));
          const { outputs } = emulateEngine(convertGraph(lowered), named, { precision });
          expect(compareTensors(outputs[0], want).relative).toBeLessThan(precision === "fp32" ? 1e-5 : 1e-2);
        }
      },
      120_000,
    );
  }

  it("fp32 engines keep the same stem a convolution (cuDNN, or the direct kernel of small stems)", () => {
    const { plan: p } = plan(stem(VIT), "fp32");
    const direct = p.steps.some(
      (st) => st.kind === "element" && st.group.layers.some((l) => l.type === "convolution"),
    );
    expect(direct).toBe(true);
    process.env.TORCHC_DIRECT_STEM = "0";
    try {
      expect(plan(stem(VIT), "fp32").plan.steps.some((st) => st.kind === "conv")).toBe(true);
    } finally {
      delete process.env.TORCHC_DIRECT_STEM;
    }
  });

  it("a bfloat16 stem keeps its convolution: the engine's cuBLASLt matmuls take float16 and float32 only", () => {
    const { lowered } = plan(stem(VIT), "fp16");
    const net = convertGraph(lowered);
    const conv = net.layers.find((l): l is ConvolutionLayer => l.type === "convolution") as ConvolutionLayer;
    const x = conv.inputs[0];
    expect(patchifyRefusal(net, conv, true)).toBeNull();
    const bf16 = {
      ...net,
      tensors: { ...net.tensors, [x]: { ...net.tensors[x], dtype: "bfloat16" as const } },
    };
    expect(patchifyRefusal(bf16, conv, true)).toBe("not a float16 convolution");
  });

  it("says why other convolutions are not patch embeddings", () => {
    const reasons = [
      { ...VIT, cin: 8 },
      { ...VIT, padding: [1, 1] as const },
      { ...VIT, stride: [4, 4] as const },
      { ...VIT, image: [36, 32] as const },
    ].map((s) => {
      const { lowered } = plan(stem(s), "fp16");
      const net = convertGraph(lowered);
      const conv = net.layers.find((l): l is ConvolutionLayer => l.type === "convolution");
      expect(conv).toBeDefined();
      return patchifyRefusal(net, conv as ConvolutionLayer, true);
    });
    expect(reasons).toEqual([
      "8 input channels (cuDNN takes more than 4)",
      "padded or dilated",
      "stride differs from the kernel",
      "the image is not a whole number of patches",
    ]);
  });
});

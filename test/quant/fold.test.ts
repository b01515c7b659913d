// The fold of PT2E's Q/DQ patterns into torchc's quantized layers, and those layers' int8 reference.
import { describe, expect, it } from "vitest";
import type { Graph } from "../../src/ir/graph.js";
import { tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/index.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";
import { foldQuantizedLayers } from "../../src/passes/quantize-fold.js";
import { insertQuantization, quantizationSites } from "../../src/passes/quantize-insert.js";
import { quantizedReference } from "./reference.js";
import { images, tinyCnn } from "./tiny-cnn.js";

describe("torchc.quantized_linear reference (int32 accumulation, fp32 epilogue)", () => {
  it("matches the integer arithmetic worked by hand", () => {
    const tensors = {
      x: tensorFromNumbers("float32", [1, 3], [0.5, -1, 2]),
      w: tensorFromNumbers("int8", [2, 3], [1, 2, 3, -4, 0, 5]),
      s: tensorFromNumbers("float32", [2], [0.5, 0.25]),
      b: tensorFromNumbers("float32", [2], [0.1, -0.2]),
    };
    const y = quantizedReference("torchc.quantized_linear.default", tensors, { scale: 0.25 });
    // xq = 2, −4, 8; acc = 2 − 8 + 24 = 18 and −8 + 0 + 40 = 32; scales 0.25·0.5, 0.25·0.25
    const f = Math.fround;
    expect(Array.from(y)).toEqual([f(18 * 0.125 + f(0.1)), f(32 * 0.0625 + f(-0.2))]);
  });
});

describe("fold-quantized-layers", () => {
  const lowered = runPipeline(tinyCnn(), defaultPipeline({})).graph;
  const amax = new Map(quantizationSites(lowered).map((s) => [s.input, 1]));
  const qdq = insertQuantization(lowered, amax, "int8");

  it("turns every Q/DQ conv and linear into a quantized layer and agrees with the Q/DQ graph", () => {
    const folded = foldQuantizedLayers(qdq);
    const ops = folded.nodes.map((n) => n.op);
    expect(ops.filter((o) => o === "torchc.quantized_convolution.default")).toHaveLength(2);
    expect(ops.filter((o) => o === "torchc.quantized_linear.default")).toHaveLength(1);
    expect(ops).not.toContain("aten.convolution.default");
    for (const x of images(3, 77)) {
      const [a] = interpret(folded, [x]);
      const [b] = interpret(qdq, [x]);
      const [f] = interpret(lowered, [x]);
      const av = toFloat64Array(a);
      const bv = toFloat64Array(b);
      const scale = Math.max(...Array.from(bv, Math.abs));
      for (let i = 0; i < av.length; i++) expect(Math.abs(av[i] - bv[i])).toBeLessThanOrEqual(1e-5 * scale);
      // …and the quantization really happened
      expect(Array.from(av)).not.toEqual(Array.from(toFloat64Array(f)));
    }
  });

  it("leaves a layer alone when its quantize and dequantize disagree", () => {
    const edited: Graph = {
      ...qdq,
      nodes: qdq.nodes.map((n) =>
        n.op === "quantized_decomposed.dequantize_per_tensor.default"
          ? { ...n, args: { ...n.args, scale: { kind: "float", value: 0.5 } } }
          : n,
      ),
    };
    const folded = foldQuantizedLayers(edited);
    expect(folded.nodes.some((n) => n.op.startsWith("torchc."))).toBe(false);
  });

  it("is a no-op on a float graph", () => {
    expect(foldQuantizedLayers(lowered)).toBe(lowered);
  });
});

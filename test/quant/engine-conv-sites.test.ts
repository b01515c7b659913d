// Which convolution steps of a planned CUDA engine are quantized convolutions (src/backends/cuda/quant-conv-sites.ts):
// the int8 weight [K, C, R, S] and its per-channel scales come back exactly from the converter's float weight,
// the activation's parameters from its quantize → dequantize, and float convolutions are told apart.
import { describe, expect, it } from "vitest";
import type { ConvStep } from "../../src/backends/cuda/fuse/steps.js";
import { planCudaEngine } from "../../src/backends/cuda/plan.js";
import { int8ConvOperands } from "../../src/backends/cuda/quant-conv-operands.js";
import { quantizedConvSite } from "../../src/backends/cuda/quant-conv-sites.js";
import { convertGraph } from "../../src/converters/index.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";
import { foldQuantizedLayers } from "../../src/passes/quantize-fold.js";
import { insertQuantization, quantizationSites } from "../../src/passes/quantize-insert.js";
import { twoConvs } from "./two-convs.js";

describe("quantized convolution steps of a planned engine", () => {
  const lowered = runPipeline(twoConvs(), defaultPipeline({})).graph;
  const amax = new Map(quantizationSites(lowered).map((s) => [s.input, 2]));
  const graph = foldQuantizedLayers(insertQuantization(lowered, amax, "int8"));
  const qconvs = graph.nodes.filter((n) => n.op === "torchc.quantized_convolution.default");
  const weightOf = (name: string) => graph.weights[name].tensor;

  it("finds no int8 site in the float model", () => {
    const plan = planCudaEngine(convertGraph(lowered), { precision: "fp16" });
    const steps = plan.steps.filter((s): s is ConvStep => s.kind === "conv");
    expect(steps.length).toBeGreaterThan(0);
    for (const s of steps) expect(quantizedConvSite(s, plan)).toEqual({ kind: "float" });
  });

  for (const precision of ["fp32", "fp16"] as const)
    it(`recovers both convolutions' int8 weight, scales, activation and bias (${precision})`, () => {
      const plan = planCudaEngine(convertGraph(graph), { precision, channelsLast: true });
      const steps = plan.steps.filter((s): s is ConvStep => s.kind === "conv");
      const sites = steps.map((s) => quantizedConvSite(s, plan));
      const int8 = sites.flatMap((s) => (s.kind === "int8" ? [s.site] : []));
      const conv2 = int8.find((s) => s.k === 24);
      if (!conv2) throw new Error(JSON.stringify(sites.map((s) => (s.kind === "int8" ? s.site.k : s))));
      const node = qconvs.find((n) => weightOf((n.args.weight as { name: string }).name).shape[0] === 24)!;
      const w = weightOf((node.args.weight as { name: string }).name);
      const sw = weightOf((node.args.weight_scales as { name: string }).name);
      expect(Array.from(conv2.weight)).toEqual(Array.from(w.data as Int8Array));
      expect(Array.from(conv2.weightScales)).toEqual(Array.from(sw.data as Float32Array));
      expect(conv2.inputScale).toBe((node.args.input_scale as { value: number }).value);
      expect([conv2.inputZeroPoint, conv2.qmin, conv2.qmax]).toEqual([0, -128, 127]);
      expect([conv2.n, conv2.c, conv2.h, conv2.k, conv2.r, conv2.s]).toEqual([2, 32, 12, 24, 3, 3]);
      expect(conv2.stride).toEqual([2, 2]);
      expect(int8).toHaveLength(2);
      expect(conv2.padding).toEqual([1, 1]);
      expect(conv2.dtype).toBe(precision === "fp16" ? "float16" : "float32");
      expect(conv2.bias).not.toBeNull();
    });

  it("refuses an NCHW convolution with the reason", () => {
    const plan = planCudaEngine(convertGraph(graph), { precision: "fp32", channelsLast: false });
    const step = plan.steps.find(
      (s): s is ConvStep => s.kind === "conv" && quantizedConvSite(s, plan).kind !== "float",
    )!;
    expect(quantizedConvSite(step, plan)).toEqual({
      kind: "refused",
      reason: "the convolution is NCHW (int8 cuDNN convolutions are NHWC)",
    });
  });
});

describe("the device operands of int8 convolution steps", () => {
  const lowered = runPipeline(twoConvs(), defaultPipeline({})).graph;
  const amax = new Map(quantizationSites(lowered).map((s) => [s.input, 2]));
  const graph = foldQuantizedLayers(insertQuantization(lowered, amax, "int8"));
  const plan = planCudaEngine(convertGraph(graph), {
    precision: "fp16",
    channelsLast: true,
    int8Convs: true,
  });
  const [c1, c2] = plan.steps.filter((s): s is ConvStep => s.kind === "conv");

  it("a float-out step: KRSC weight, alpha = f32(sX · sW[k]), the layer's bias", () => {
    const site = quantizedConvSite(c2, plan);
    const ops = int8ConvOperands(c2, plan);
    if (site.kind !== "int8" || typeof ops === "string") throw new Error(JSON.stringify(ops));
    const q = site.site;
    const f = Math.fround;
    expect(Array.from(ops.scale)).toEqual(Array.from(q.weightScales, (s) => f(f(q.inputScale) * s)));
    expect(ops.bias).toEqual(q.bias);
    // w[k][c][r][s] lands at ((k·R + r)·S + s)·C + c
    const [k, c, r, s] = [5, 7, 2, 1];
    expect(ops.weight[((k * q.r + r) * q.s + s) * q.c + c]).toBe(
      q.weight[((k * q.c + c) * q.r + r) * q.s + s],
    );
  });

  it("an int8-out step: scale and bias divided by the next layer's input scale", () => {
    expect(c1.quantizeOutput).toBeDefined();
    const site = quantizedConvSite(c1, plan);
    const ops = int8ConvOperands(c1, plan);
    if (site.kind !== "int8" || typeof ops === "string") throw new Error(JSON.stringify(ops));
    const q = site.site;
    const sY = c1.quantizeOutput!.scale[0];
    expect(sY).toBe(c2.int8!.quantize.scale[0]);
    const f = Math.fround;
    expect(Array.from(ops.scale)).toEqual(Array.from(q.weightScales, (s) => f(f(f(q.inputScale) * s) / sY)));
    expect(Array.from(ops.bias!)).toEqual(Array.from(q.bias!, (b) => f(b / sY)));
  });
});

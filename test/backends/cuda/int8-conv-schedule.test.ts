// The scheduler's int8 convolutions (fuse/int8-conv-rule.ts, PlanOptions.int8Convs): a convolution whose input
// is dequantize(quantize(x)) reads quantize's stored int8 output and no kernel writes the dequantized floats;
// a convolution the library refuses in int8 gets its dequantize back as an element step; and the emulated
// engine computes the same outputs either way.
import { describe, expect, it } from "vitest";
import type { ConvStep } from "../../../src/backends/cuda/fuse/steps.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { int8ConvOperands } from "../../../src/backends/cuda/quant-conv-operands.js";
import { quantizedConvSite } from "../../../src/backends/cuda/quant-conv-sites.js";
import { convertGraph } from "../../../src/converters/index.js";
import { type Tensor, toFloat64Array } from "../../../src/ir/tensor.js";
import { defaultPipeline, runPipeline } from "../../../src/passes/pipeline.js";
import { foldQuantizedLayers } from "../../../src/passes/quantize-fold.js";
import { insertQuantization, quantizationSites } from "../../../src/passes/quantize-insert.js";
import { compareTensors } from "../../../src/util/compare.js";
import { int32ConvNhwc, nchwToNhwc, outSize } from "../../quant/conv-reference.js";
import { randomTensor } from "../../quant/tiny-cnn.js";

function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

import { twoConvs } from "../../quant/two-convs.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const lowered = runPipeline(twoConvs(), defaultPipeline({})).graph;
const amax = new Map(quantizationSites(lowered).map((s) => [s.input, 2]));
const network = () => convertGraph(foldQuantizedLayers(insertQuantization(lowered, amax, "int8")));

const elementLayers = (plan: ReturnType<typeof planCudaEngine>) =>
  plan.steps.flatMap((s) => (s.kind === "element" ? s.group.layers.map((l) => l.type) : []));

describe("int8 convolutions in the schedule", () => {
  for (const precision of ["fp32", "fp16"] as const)
    it(`reads quantize's int8 output and drops the dequantize (${precision})`, () => {
      const plan = planCudaEngine(network(), { precision, channelsLast: true, int8Convs: true });
      const convs = plan.steps.filter((s): s is ConvStep => s.kind === "conv");
      expect(convs).toHaveLength(2);
      for (const c of convs) {
        expect(c.int8?.quantize.type).toBe("quantize");
        const x = plan.infos.get(c.x)!;
        expect(x.storage).toBe("int8");
        expect(x.layout).toEqual([0, 2, 3, 1]);
        const site = quantizedConvSite(c, plan);
        expect(site.kind).toBe("int8");
      }
      expect(elementLayers(plan)).not.toContain("dequantize");
      // conv1 → relu ends in conv2's quantize: cuDNN writes conv2's int8 input; only the image is quantized by a kernel
      expect(convs.map((c) => c.quantizeOutput?.type)).toEqual(["quantize", undefined]);
      expect(plan.infos.get(convs[0].output)!.storage).toBe("int8");
      expect(convs[1].x).toBe(convs[0].output);
      expect(elementLayers(plan).filter((t) => t === "quantize")).toHaveLength(1);
    });

  it("writes float and quantizes in a kernel when the int8 output is refused", () => {
    const plan = planCudaEngine(network(), {
      precision: "fp16",
      channelsLast: true,
      int8Convs: true,
      convSupported: (s) => s.quantizeOutput === undefined,
    });
    const convs = plan.steps.filter((s): s is ConvStep => s.kind === "conv");
    expect(convs.map((c) => [c.int8 !== undefined, c.quantizeOutput !== undefined])).toEqual([
      [true, false],
      [true, false],
    ]);
    expect(elementLayers(plan).filter((t) => t === "quantize")).toHaveLength(2);
    expect(elementLayers(plan)).not.toContain("dequantize");
  });

  it("is off unless asked for", () => {
    const plan = planCudaEngine(network(), { precision: "fp16", channelsLast: true });
    expect(plan.steps.some((s) => s.kind === "conv" && s.int8)).toBe(false);
    expect(elementLayers(plan).filter((t) => t === "dequantize")).toHaveLength(2);
  });

  it("places the dequantize again for a convolution refused in int8", () => {
    const plan = planCudaEngine(network(), {
      precision: "fp16",
      channelsLast: true,
      int8Convs: true,
      convSupported: (s) => !(s.int8 && s.layer.name.includes("c2")),
    });
    const convs = plan.steps.filter((s): s is ConvStep => s.kind === "conv");
    expect(convs.map((c) => c.int8 !== undefined)).toEqual([true, false]);
    expect(elementLayers(plan).filter((t) => t === "dequantize")).toHaveLength(1);
  });

  it("quantizes a tensor two convolutions read once, and fuses the shortcut's add into the last one", () => {
    const lowered2 = runPipeline(twoConvs(true), defaultPipeline({})).graph;
    const amax2 = new Map(quantizationSites(lowered2).map((s) => [s.input, 2]));
    // as compile() lowers a quantized graph: the fold, then dead code removed
    const net = convertGraph(
      runPipeline(insertQuantization(lowered2, amax2, "int8"), defaultPipeline({})).graph,
    );
    // one quantize → dequantize per tensor, however many quantized layers read it
    expect(net.layers.filter((l) => l.type === "quantize")).toHaveLength(2);
    const plan = planCudaEngine(net, { precision: "fp16", channelsLast: true, int8Convs: true });
    const convs = plan.steps.filter((s): s is ConvStep => s.kind === "conv");
    // conv1 writes the int8 tensor both read; the shortcut's add and relu join the last one's epilogue
    expect(convs.map((c) => [c.int8 !== undefined, c.quantizeOutput !== undefined])).toEqual([
      [true, true],
      [true, false],
      [true, false],
    ]);
    expect(convs[1].x).toBe(convs[0].output);
    expect(convs[2].x).toBe(convs[0].output);
    expect(convs.at(-1)!.epilogue.map((o) => (o.kind === "act" ? o.fn : o.kind))).toEqual(["tensor", "relu"]);
  });

  // What the CPU cannot run is cuDNN; what it can check is that the operands the builder uploads (KRSC int8 weight,
  // scale and bias, divided by the next scale for an int8 output), put through the graph's arithmetic
  // (int32 sums, f32 scale, bias, relu, then round-half-even to int8), give each step's output as the plan means it.
  it.skipIf(!hasGxx())(
    "the builder's device operands compute each int8 step's output (host arithmetic)",
    () => {
      const net = convertGraph(
        runPipeline(insertQuantization(lowered, amax, "int8"), defaultPipeline({})).graph,
      );
      const x = randomTensor([2, 16, 12, 12], 7, 1.5);
      const seen = new Map<string, Tensor>();
      const run = emulateEngine(
        net,
        { x },
        {
          precision: "fp32",
          channelsLast: true,
          int8Convs: true,
          onStep: (_i, _d, written) => {
            for (const [t, v] of written) seen.set(t, v);
          },
        },
      );
      const convs = run.plan.steps.filter((s): s is ConvStep => s.kind === "conv");
      expect(convs.map((c) => c.quantizeOutput !== undefined)).toEqual([true, false]);
      for (const step of convs) {
        const ops = int8ConvOperands(step, run.plan);
        const site = quantizedConvSite(step, run.plan);
        if (typeof ops === "string" || site.kind !== "int8") throw new Error(String(ops));
        const q = site.site;
        const [xin, y] = [seen.get(step.x)!, seen.get(step.output)!];
        const { oh, ow } = outSize(q);
        const hw = q.h * q.w;
        const xq = Int8Array.from(nchwToNhwc(toFloat64Array(xin), q.n, q.c, hw));
        const acc = int32ConvNhwc(q, xq, ops.weight);
        const f = Math.fround;
        const got = Float64Array.from(acc, (a, i) => {
          const k = i % q.k;
          const v = Math.max(0, f(f(f(a) * ops.scale[k]) + (ops.bias ? ops.bias[k] : 0)));
          return step.quantizeOutput ? Math.min(127, roundHalfEven(v)) : v;
        });
        const want = nchwToNhwc(toFloat64Array(y), q.n, q.k, oh * ow);
        let differ = 0;
        let worst = 0;
        for (let i = 0; i < got.length; i++) {
          const d = Math.abs(got[i] - want[i]);
          if (d > 0) differ++;
          worst = Math.max(worst, d);
        }
        if (step.quantizeOutput) {
          // int8 out: at most one step, and only for a few values landing on a rounding boundary
          expect(worst).toBeLessThanOrEqual(1);
          expect(differ).toBeLessThan(got.length / 100);
        } else expect(worst).toBeLessThan(1e-5 * Math.max(...want.map(Math.abs)));
      }
    },
  );

  it.skipIf(!hasGxx())("computes what the float-input schedule computes (emulated, fp32 and fp16)", () => {
    const x = randomTensor([2, 16, 12, 12], 7, 1.5);
    const reference = emulateEngine(network(), { x }, { precision: "fp32", channelsLast: true }).outputs[0];
    const errors: Record<string, number> = {};
    for (const precision of ["fp32", "fp16"] as const)
      for (const int8Convs of [false, true]) {
        const run = emulateEngine(network(), { x }, { precision, channelsLast: true, int8Convs });
        expect(run.plan.steps.filter((s) => s.kind === "conv" && s.int8)).toHaveLength(int8Convs ? 2 : 0);
        errors[`${precision}${int8Convs ? " int8" : ""}`] = compareTensors(
          run.outputs[0],
          reference,
        ).relative;
      }
    // The same int8 values either way; in fp32 only a dequantize's rounding may differ by an ulp. In fp16 the
    // int8 path never rounds the dequantized input to half precision, so it is no further from fp32 than the
    // float-input path (both flip the odd value across a rounding boundary of the int8 grid after fp16 rounding).
    expect(errors.fp32).toBe(0);
    expect(errors["fp32 int8"]).toBeLessThan(1e-6);
    expect(errors["fp16 int8"]).toBeLessThanOrEqual(errors.fp16 * 1.5);
    expect(errors["fp16 int8"]).toBeLessThan(5e-3);
  });
});

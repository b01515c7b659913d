// int8 only where it pays (src/runtime/calibration-speed.ts): a fake probe stands in for the cuda backend's timing.
// Convolutions whose int8 time loses (or that have no int8 kernel) are left out of quantization entirely: no
// quantize/dequantize around them, their float weight; the faster ones are quantized; the report lists both times.
import { afterEach, describe, expect, it } from "vitest";
import { int8ProblemRefusal, problemSpec } from "../../src/backends/cuda/int8-conv-timing.js";
import type { Graph } from "../../src/ir/graph.js";
import { formatInt8Choice } from "../../src/passes/int8-speed-report.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";
import { foldQuantizedLayers } from "../../src/passes/quantize-fold.js";
import { calibrate } from "../../src/runtime/calibration.js";
import {
  backendInt8Probe,
  decideBySpeed,
  type Int8ConvProblem,
  type Int8ConvTiming,
  type Int8SpeedProbe,
  int8ConvProblem,
} from "../../src/runtime/calibration-speed.js";
import { compile } from "../../src/runtime/compile.js";
import { verifyCompiled } from "../../src/verify/verify.js";
import { outlierCnn } from "./outlier-cnn.js";
import { images, randomTensor } from "./tiny-cnn.js";
import { twoConvs } from "./two-convs.js";

/** x [2,16,12,12] → c1 3×3 16→32 → relu → c2, c3 (3×3 stride 2 32→24, the same problem) → add → relu. */
const lowered = (): Graph => runPipeline(twoConvs(true), defaultPipeline({})).graph;
const convNodes = (g: Graph) => g.nodes.filter((n) => n.op === "aten.convolution.default");

/** A probe answering from `answer`, recording what it was asked. */
function fakeProbe(answer: (p: Int8ConvProblem) => Int8ConvTiming): Int8SpeedProbe & {
  asked: Int8ConvProblem[][];
} {
  const asked: Int8ConvProblem[][] = [];
  return {
    floatName: "fp16",
    describe: "a fake timing",
    asked,
    time: (problems) => {
      asked.push([...problems]);
      return problems.map(answer);
    },
  };
}

/** c1 (16 input channels) loses in int8, the stride-2 32→24 problem wins. */
const c1Loses = (p: Int8ConvProblem): Int8ConvTiming =>
  p.c === 16 ? { int8Ms: 0.313, floatMs: 0.079 } : { int8Ms: 0.04, floatMs: 0.08 };

const data = [randomTensor([2, 16, 12, 12], 3, 1.5), randomTensor([2, 16, 12, 12], 4, 1.5)];

afterEach(() => {
  delete process.env.TORCHC_INT8_TIMED_CHOICE;
});

describe("the problems the probe times", () => {
  it("reads each convolution's geometry off the lowered graph, ReLU when a ReLU is its only reader", () => {
    const g = lowered();
    const [c1, c2, c3] = convNodes(g).map((n) => int8ConvProblem(g, n));
    expect(c1).toEqual({
      n: 2,
      c: 16,
      h: 12,
      w: 12,
      k: 32,
      r: 3,
      s: 3,
      stride: [1, 1],
      padding: [1, 1],
      dilation: [1, 1],
      groups: 1,
      bias: true,
      relu: true,
    });
    expect(c2).toEqual({ ...(c1 as object), c: 32, k: 24, stride: [2, 2], relu: false });
    expect(c3).toEqual(c2);
  });

  it("the cuda probe's specs and refusals: NHWC, int8 or float, the engine's int8 rules", () => {
    const g = lowered();
    const p = int8ConvProblem(g, convNodes(g)[1]) as Int8ConvProblem;
    const spec = problemSpec(p, "float16", true);
    expect(spec).toMatchObject({
      layout: "NHWC",
      dtype: "float16",
      int8: true,
      y: [2, 24, 6, 6],
      bias: true,
    });
    expect(problemSpec({ ...p, relu: true }, "float16", false)).toMatchObject({
      epilogue: [{ kind: "act", fn: "relu" }],
    });
    expect(problemSpec(p, "float16", false).int8).toBeUndefined();
    expect(int8ProblemRefusal(p, "float16")).toBeNull();
    expect(int8ProblemRefusal({ ...p, c: 3 }, "float16")).toMatch(/input channels 3 are not a multiple of 4/);
    expect(int8ProblemRefusal({ ...p, h: 2, w: 2 }, "float16")).toMatch(/1×1 output map/);
  });
});

describe("decideBySpeed", () => {
  it("times each distinct problem once and keeps the convolutions whose int8 time loses", async () => {
    const g = lowered();
    const probe = fakeProbe(c1Loses);
    const r = await decideBySpeed(g, probe);
    expect(probe.asked).toHaveLength(1);
    expect(probe.asked[0]).toHaveLength(2); // c2 and c3 are one problem
    const [c1, c2, c3] = convNodes(g).map((n) => n.name);
    expect(r.kept).toEqual([c1]);
    expect(r.layers.map((l) => [l.node, l.ran])).toEqual([
      [c1, "float"],
      [c2, "int8"],
      [c3, "int8"],
    ]);
    expect(r.layers[0]).toMatchObject({
      int8Ms: 0.313,
      floatMs: 0.079,
      reason: "timing lost: int8 0.3130 ms vs fp16 0.0790 ms",
      shape: "2×16×12×12 → 32, 3×3 stride 1",
    });
  });

  it("int8 must win by the margin; no int8 kernel keeps float, an untimed problem keeps int8", async () => {
    const g = lowered();
    const [c1, c2] = convNodes(g).map((n) => n.name);
    const close = await decideBySpeed(
      g,
      fakeProbe((p) => (p.c === 16 ? { int8Ms: 0.097, floatMs: 0.1 } : { int8Ms: 0.09, floatMs: 0.1 })),
    );
    expect(close.kept).toEqual([c1]); // 3% faster is not enough; 10% is
    const other = await decideBySpeed(
      g,
      fakeProbe((p) => (p.c === 16 ? { refused: "cuDNN has no engine" } : { untimed: "capture failed" })),
    );
    expect(other.kept).toEqual([c1]);
    expect(other.layers.find((l) => l.node === c1)?.reason).toBe("no int8 kernel: cuDNN has no engine");
    expect(other.layers.find((l) => l.node === c2)).toMatchObject({
      ran: "int8",
      reason: "not timed: capture failed",
    });
  });

  it("a probe that fails as a whole leaves every convolution in int8, with the reason", async () => {
    const g = lowered();
    const r = await decideBySpeed(g, {
      floatName: "fp16",
      describe: "a failing probe",
      time: () => {
        throw new Error("CUDA_ERROR_OUT_OF_MEMORY\nmore");
      },
    });
    expect(r.kept).toEqual([]);
    expect(r.layers.map((l) => l.reason)).toEqual(Array(3).fill("not timed: CUDA_ERROR_OUT_OF_MEMORY"));
  });

  it("does not time the layers in the skip set (kept by sensitivity)", async () => {
    const g = lowered();
    const [c1] = convNodes(g).map((n) => n.name);
    const probe = fakeProbe(c1Loses);
    const r = await decideBySpeed(g, probe, new Set([c1]));
    expect(probe.asked[0]).toHaveLength(1);
    expect(r.layers.map((l) => l.node)).not.toContain(c1);
    expect(r.kept).toEqual([]);
  });

  it("the report lists every convolution, kept ones with both times", async () => {
    const g = lowered();
    const text = formatInt8Choice(await decideBySpeed(g, fakeProbe(c1Loses)));
    const lines = text.split("\n");
    expect(lines[0]).toMatch(
      /^quantization: 1 of 3 convolutions kept in fp16 for speed \(int8 only where it times at least 5% faster; a fake timing, 2 distinct problems timed; TORCHC_INT8_TIMED_CHOICE=0 turns this off\)$/,
    );
    expect(lines[1]).toMatch(
      /node '.*' \(aten\.convolution\.default\).*\[2×16×12×12 → 32, 3×3 stride 1\]: kept in fp16: timing lost: int8 0\.3130 ms vs fp16 0\.0790 ms$/,
    );
    expect(lines[2]).toMatch(
      /\[2×32×12×12 → 24, 3×3 stride 2\]: int8: int8 0\.0400 ms vs fp16 0\.0800 ms, 2\.00× faster$/,
    );
    expect(lines[4]).toBe(
      "  the 3 timed convolutions sum to 0.1590 ms as chosen, against 0.3930 ms all in int8 and 0.2390 ms all in fp16",
    );
  });
});

describe("calibrate with a speed probe", () => {
  const producers = (g: Graph) => new Map(g.nodes.flatMap((n) => n.outputs.map((o) => [o, n.op] as const)));
  const argName = (a: unknown) => (a as { name: string }).name;

  it("leaves the losing convolution unquantized (no quantize/dequantize around it) and quantizes the rest", async () => {
    const g = lowered();
    const reports: unknown[] = [];
    const r = await calibrate(
      g,
      "int8",
      { data, algorithm: "minmax", onInt8Choice: (x) => reports.push(x) },
      undefined,
      fakeProbe(c1Loses),
    );
    expect(reports).toEqual([r.speed]);
    const [c1, c2, c3] = convNodes(g).map((n) => n.name);
    expect(r.speed?.kept).toEqual([c1]);
    const q = r.graph;
    const made = producers(q);
    const conv = (name: string) => q.nodes.find((n) => n.name === name)!;
    // c1 reads the graph input and its float weight as before
    expect(argName(conv(c1).args.input)).toBe("x");
    expect(argName(conv(c1).args.weight)).toBe(argName(g.nodes.find((n) => n.name === c1)!.args.weight));
    // c2 and c3 read dequantize(quantize(relu)) and a dequantized int8 weight
    for (const c of [c2, c3]) {
      expect(made.get(argName(conv(c).args.input))).toBe(
        "quantized_decomposed.dequantize_per_tensor.default",
      );
      expect(made.get(argName(conv(c).args.weight))).toBe(
        "quantized_decomposed.dequantize_per_channel.default",
      );
    }
    // nothing quantizes the input c1 reads
    const quantizes = q.nodes.filter((n) => n.op === "quantized_decomposed.quantize_per_tensor.default");
    expect(quantizes.map((n) => argName(n.args.input))).not.toContain("x");
    // after the quantized-layer fold: c1 is an ordinary convolution, the others torchc's quantized ones
    const folded = foldQuantizedLayers(q);
    expect(folded.nodes.filter((n) => n.op === "aten.convolution.default")).toHaveLength(1);
    expect(folded.nodes.filter((n) => n.op === "torchc.quantized_convolution.default")).toHaveLength(2);
  });

  it("changes nothing without a probe, for fp8, or with TORCHC_INT8_TIMED_CHOICE=0", async () => {
    const g = lowered();
    const plain = await calibrate(g, "int8", { data, algorithm: "minmax" });
    expect(plain.speed).toBeUndefined();
    const probe = fakeProbe(c1Loses);
    const fp8 = await calibrate(g, "fp8", { data, algorithm: "minmax" }, undefined, probe);
    expect(fp8.speed).toBeUndefined();
    process.env.TORCHC_INT8_TIMED_CHOICE = "0";
    const off = await calibrate(g, "int8", { data, algorithm: "minmax" }, undefined, probe);
    expect(off.speed).toBeUndefined();
    expect(probe.asked).toHaveLength(0);
    expect(off.graph.nodes.map((n) => n.op)).toEqual(plain.graph.nodes.map((n) => n.op));
  });

  it("keeps both the sensitivity decision's layers and the speed choice's", async () => {
    const g = lowered();
    const [c1, c2, c3] = convNodes(g).map((n) => n.name);
    // every problem wins in int8 except c2/c3's, which lose: the sensitivity decision keeps c1 anyway
    const probe = fakeProbe((p) =>
      p.c === 16 ? { int8Ms: 0.01, floatMs: 0.1 } : { int8Ms: 0.2, floatMs: 0.1 },
    );
    const r = await calibrate(
      g,
      "int8",
      { data, algorithm: "minmax", sensitivity: { keep: 1, batches: 2 } },
      undefined,
      probe,
    );
    const bySensitivity = r.sensitivity?.kept ?? [];
    expect(bySensitivity).toHaveLength(1);
    expect(r.speed?.layers.map((l) => l.node)).not.toContain(bySensitivity[0]);
    const floatConvs = foldQuantizedLayers(r.graph)
      .nodes.filter((n) => n.op === "aten.convolution.default")
      .map((n) => n.name)
      .sort();
    expect(floatConvs).toEqual([...new Set([...bySensitivity, c2, c3])].sort());
    expect([c1, c2, c3]).toEqual(expect.arrayContaining(floatConvs));
  });
});

describe("the backend's probe", () => {
  it("none for the reference backend, none with the choice off, none without int8 kernels", async () => {
    expect(await backendInt8Probe({ backend: "reference" }, {})).toBeUndefined();
    expect(
      await backendInt8Probe(
        { backend: "cuda" },
        { TORCHC_INT8_TIMED_CHOICE: "0", TORCHC_QUANT_KERNELS: "1" },
      ),
    ).toBeUndefined();
    // simulated int8 (no TORCHC_QUANT_KERNELS): nothing to choose between, and no GPU is touched
    expect(
      await backendInt8Probe({ backend: "cuda", enabledPrecisions: ["int8", "fp16"] }, {}),
    ).toBeUndefined();
  });
});

describe("torchc verify and the speed decision", () => {
  it("lists the convolutions kept for speed and fails when the compiled graph quantizes one of them", async () => {
    const calib = images(8, 1000);
    // The reference backend has no probe, so every convolution is quantized: a decision naming conv2 as kept
    // is one the compiled graph does not follow.
    const m = await compile(outlierCnn(), {
      backend: "reference",
      enabledPrecisions: ["int8"],
      calibration: { data: calib },
    });
    expect(m.report.int8Choice, "no speed decision without the cuda probe").toBeUndefined();
    const decision = (kept: string) => ({
      floatName: "fp16",
      describe: "a fake timing",
      margin: 0.05,
      problems: 1,
      kept: [kept],
      layers: [
        {
          node: kept,
          where: `node '${kept}'`,
          shape: "",
          ran: "float" as const,
          int8Ms: 0.3,
          floatMs: 0.08,
          reason: "timing lost",
        },
      ],
    });
    const bad = await verifyCompiled(m, [calib[0]], { tolerance: 1, int8Choice: decision("conv2") });
    expect(bad.ok).toBe(false);
    expect(bad.text).toMatch(
      /convolutions kept for speed the compiled graph still quantizes: conv2 \(FAILS\)/,
    );
    expect(bad.text).toMatch(/1 of 1 convolution kept in fp16 for speed/);
    // A layer the graph computes in float passes the check.
    const relu = m.graph.nodes.find((n) => n.op.startsWith("aten.relu"))?.name as string;
    const good = await verifyCompiled(m, [calib[0]], { tolerance: 1, int8Choice: decision(relu) });
    expect(good.text).toMatch(/convolutions kept for speed unquantized in the compiled graph: yes/);
    await m.dispose();
  });
});

// Mixed precision by sensitivity (issue 14) on the CPU: the per-layer measure finds the one int8-hostile layer of
// outlierCnn, keeping it unquantized brings the output back to float32's, the decision survives a cache round
// trip, and bad options are one clear error. Every error below is computed against float32 outputs of this run.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Graph } from "../../src/ir/graph.js";
import { type Tensor, toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/interpret.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";
import { insertQuantization, quantizationSites } from "../../src/passes/quantize-insert.js";
import { keptCount } from "../../src/passes/quantize-keep.js";
import { calibrate, type SensitivityOptions, type SensitivityReport } from "../../src/runtime/calibration.js";
import { compile } from "../../src/runtime/compile.js";
import type { CompileOptions } from "../../src/runtime/options.js";
import { randomInput } from "../../src/util/random-input.js";
import { verifyCompiled } from "../../src/verify/verify.js";
import { MODELS, tempDir } from "../helpers.js";
import { cosine, cosineOf } from "./cosine.js";
import { outlierCnn } from "./outlier-cnn.js";
import { images, tinyCnn } from "./tiny-cnn.js";

const calib = images(24, 1000);
const held = images(6, 5000);
const lowered = (g: Graph) => runPipeline(g, defaultPipeline({})).graph;

async function outputs(graph: Graph, options: CompileOptions = {}): Promise<Tensor[]> {
  const m = await compile(graph, { backend: "reference", ...options });
  const outs: Tensor[] = [];
  for (const x of held) outs.push((await m.run([x]))[0]);
  return outs;
}

/** The worst 1 − cos over the held-out inputs. */
const worst = (got: Tensor[], ref: Tensor[]) => Math.max(...got.map((g, i) => 1 - cosine(g, ref[i])));

const int8 = (calibration: object, graph = outlierCnn()) =>
  compile(graph, { backend: "reference", enabledPrecisions: ["int8"], calibration });

describe("mixed precision by sensitivity (reference backend)", async () => {
  const fp32 = await outputs(outlierCnn());

  it("the fixture: float32 computes tinyCnn's function, and it depends on the input", async () => {
    const plain = await outputs(tinyCnn());
    expect(worst(fp32, plain)).toBeLessThan(1e-9);
    expect(cosine(fp32[0], fp32[1])).toBeLessThan(0.999);
  });

  it("ranks the layer with the outlier input channel first, by far, under both metrics", async () => {
    for (const metric of ["cosine", "relative-max"] as const) {
      const r = await calibrate(lowered(outlierCnn()), "int8", {
        data: calib,
        sensitivity: { keep: 0, metric },
      });
      const s = r.sensitivity as SensitivityReport;
      expect(s.layers.map((l) => l.node)).toEqual(["conv2", expect.any(String), expect.any(String)]);
      expect(s.layers[0].score).toBeGreaterThan(10 * s.layers[1].score);
      expect(s.kept).toEqual([]);
    }
  });

  it("keep 1 leaves that layer unquantized and brings the output back near float32", async () => {
    const opts = (keep: number) => ({
      enabledPrecisions: ["int8"] as const,
      calibration: { data: calib, algorithm: "minmax" as const, sensitivity: { keep } },
    });
    const m = await compile(outlierCnn(), { backend: "reference", ...opts(1) });
    const op = (name: string) => m.graph.nodes.find((n) => n.name === name)?.op;
    expect(op("conv2")).toBe("aten.convolution.default");
    expect(op("conv1")).toBe("torchc.quantized_convolution.default");
    expect(op("logits")).toBe("torchc.quantized_linear.default");
    const all = worst(await outputs(outlierCnn(), opts(0)), fp32);
    const kept = worst(await outputs(outlierCnn(), opts(1)), fp32);
    expect(all).toBeGreaterThan(0.1);
    expect(kept).toBeLessThan(5e-3);
    expect(kept).toBeLessThan(all / 100);
    // Still quantized elsewhere: not float32's numbers.
    const got = await outputs(outlierCnn(), opts(1));
    expect(Array.from(toFloat64Array(got[0]))).not.toEqual(Array.from(toFloat64Array(fp32[0])));
  });

  it("keep auto keeps the hostile layer only; a tiny target keeps all, a loose one none", async () => {
    const kept = async (sensitivity: SensitivityOptions) => {
      const r = await calibrate(lowered(outlierCnn()), "int8", { data: calib, sensitivity });
      return r.sensitivity?.kept;
    };
    expect(await kept({ keep: "auto" })).toEqual(["conv2"]);
    expect((await kept({ keep: "auto", target: 1e-12 }))?.length).toBe(3);
    expect(await kept({ keep: "auto", target: 10 })).toEqual([]);
  });

  it("the report and torchc verify name each kept layer with its score and rank", async () => {
    let report: SensitivityReport | undefined;
    const m = await compile(outlierCnn(), {
      backend: "reference",
      enabledPrecisions: ["int8", "fp16"],
      calibration: { data: calib, sensitivity: { keep: 1, batches: 3 }, onSensitivity: (r) => (report = r) },
    });
    expect(report?.batches).toBe(3);
    // compile()'s own report carries the decision, and compile(…, { verify }) checks it.
    expect(m.report.text).toMatch(/node 'conv2' \(aten\.convolution\.default\): kept in fp16: sensitivity/);
    const verified = await compile(outlierCnn(), {
      backend: "reference",
      enabledPrecisions: ["int8", "fp16"],
      calibration: { data: calib, sensitivity: { keep: 1, batches: 3 } },
      verify: { inputs: [held[0]], tolerance: 1 },
    });
    expect(verified.verification?.text).toMatch(/kept layers unquantized in the compiled graph: yes/);
    const v = await verifyCompiled(m, [held[0]], { tolerance: 1, sensitivity: report });
    expect(v.text).toMatch(
      /node 'conv2' \(aten\.convolution\.default\): kept in fp16: sensitivity \d\.\de-\d+, rank 1 of 3/,
    );
    expect(v.text).toMatch(/kept layers unquantized in the compiled graph: yes/);
    expect(v.ok).toBe(true);
    // A decision the compiled graph does not follow fails verification.
    const plain = await compile(outlierCnn(), {
      backend: "reference",
      enabledPrecisions: ["int8"],
      calibration: { data: calib },
    });
    const w = await verifyCompiled(plain, [held[0]], { tolerance: 1, sensitivity: report });
    expect(w.ok).toBe(false);
    expect(w.text).toMatch(/still quantizes: conv2 \(FAILS\)/);
  });

  it("works for fp8 too, and a keep beyond the layer count keeps them all", async () => {
    const r = await calibrate(lowered(outlierCnn()), "fp8", { data: calib, sensitivity: { keep: 9 } });
    expect(r.sensitivity?.precision).toBe("fp8");
    expect([...(r.sensitivity?.kept ?? [])].sort()).toEqual(["conv1", "conv2", "logits"]);
    // Nothing quantized is left: the graph is the float32 one.
    expect(r.graph.nodes.map((n) => n.op)).toEqual(lowered(outlierCnn()).nodes.map((n) => n.op));
  });

  it("each score is 1 − cos of the whole model's outputs with that layer alone quantized (residual net)", async () => {
    // Scores re-run only the graph from each layer on; here the whole graph runs, and cos is the test's own.
    const graph = lowered((await loadModel(join(MODELS, "tiny_resnet.pt2"))).graph);
    const batches = [0, 1, 2].map((i) => [randomInput(graph.values[graph.inputs[0]], 40 + i)]);
    const r = await calibrate(graph, "int8", { data: batches, sensitivity: { keep: 0, batches: 3 } });
    const amax = new Map(Object.entries(r.cache.tensors).map(([k, v]) => [k, v.amax]));
    const sites = quantizationSites(graph).map((s) => s.node);
    expect(sites.length).toBeGreaterThan(5);
    const flat = (g: Graph) =>
      batches.flatMap((b) => interpret(g, b).flatMap((t) => Array.from(toFloat64Array(t))));
    const ref = flat(graph);
    for (const site of sites) {
      const alone = insertQuantization(graph, amax, "int8", new Set(sites.filter((n) => n !== site)));
      const want = 1 - cosineOf(flat(alone), ref);
      const got = r.sensitivity?.layers.find((l) => l.node === site)?.score as number;
      expect(got).toBeGreaterThan(0);
      expect(Math.abs(got - want)).toBeLessThan(1e-9 + 1e-6 * want);
    }
  });

  it("uses at most `batches` calibration batches (default 8)", async () => {
    const r = await calibrate(lowered(outlierCnn()), "int8", { data: calib, sensitivity: { keep: 1 } });
    expect(r.sensitivity?.batches).toBe(8);
    expect(r.cache.batches).toBe(calib.length);
  });
});

describe("the calibration cache records the scores", () => {
  it("a compile from the cache alone makes the same decision, with identical graph and outputs", async () => {
    const cache = join(tempDir(), "scales.json");
    const first = await int8({ data: calib, cache, sensitivity: { keep: 1 } });
    const written = JSON.parse(readFileSync(cache, "utf8"));
    expect(written.sensitivity.metric).toBe("cosine");
    expect(written.sensitivity.precision).toBe("int8");
    expect(Object.keys(written.sensitivity.scores).sort()).toEqual(["conv1", "conv2", "logits"]);
    let report: SensitivityReport | undefined;
    const second = await int8({
      cache,
      sensitivity: { keep: 1 },
      onSensitivity: (r: SensitivityReport) => (report = r),
    });
    expect(report?.fromCache).toBe(true);
    expect(report?.kept).toEqual(["conv2"]);
    expect(JSON.stringify(second.graph.nodes)).toBe(JSON.stringify(first.graph.nodes));
    for (const x of held) {
      const [a] = await first.run([x]);
      const [b] = await second.run([x]);
      expect(Array.from(toFloat64Array(b))).toEqual(Array.from(toFloat64Array(a)));
    }
  });

  it("a cache without scores is an error without data, and gets them with data", async () => {
    const cache = join(tempDir(), "scales.json");
    await int8({ data: calib, cache });
    expect(JSON.parse(readFileSync(cache, "utf8")).sensitivity).toBeUndefined();
    await expect(int8({ cache, sensitivity: { keep: 1 } })).rejects.toThrow(
      /the cache '.*scales\.json' has no int8 cosine sensitivity scores; pass the calibration data once/,
    );
    let report: SensitivityReport | undefined;
    await int8({
      data: calib,
      cache,
      sensitivity: { keep: 1 },
      onSensitivity: (r: SensitivityReport) => (report = r),
    });
    expect(report?.kept).toEqual(["conv2"]);
    expect(Object.keys(JSON.parse(readFileSync(cache, "utf8")).sensitivity.scores)).toHaveLength(3);
    await expect(int8({ cache, sensitivity: { keep: 1, metric: "relative-max" } })).rejects.toThrow(
      /no int8 relative-max sensitivity scores \(it has int8 cosine ones\)/,
    );
    // int8 scores do not stand for fp8.
    const fp8 = compile(outlierCnn(), {
      backend: "reference",
      enabledPrecisions: ["fp8"],
      calibration: { cache, sensitivity: { keep: 1 } },
    });
    await expect(fp8).rejects.toThrow(/no fp8 cosine sensitivity scores \(it has int8 cosine ones\)/);
  });
});

describe("keep auto's rule", () => {
  it("keeps the most sensitive until the rest's summed score is at most the target", () => {
    // 0.5 + 0.3 + 0.1 + 0.05 = 0.95; without the first two the rest is 0.15.
    expect(keptCount([0.5, 0.3, 0.1, 0.05], "auto", 0.2)).toBe(2);
    expect(keptCount([0.5, 0.3, 0.1, 0.05], "auto", 1)).toBe(0);
    expect(keptCount([0.5, 0.3, 0.1, 0.05], "auto", 0)).toBe(4);
    expect(keptCount([0.5, 0.3], 5, 0)).toBe(2);
  });
});

describe("a damaged cache is one clear error", () => {
  it.each([
    [
      { precision: "int8", metric: "cosine", batches: 3, scores: { conv1: 1, conv2: "x", logits: 1 } },
      /no valid sensitivity score for layer 'conv2'/,
    ],
    [
      { precision: "int8", metric: "cosine", batches: 3, scores: { conv1: 1, logits: 1 } },
      /no valid sensitivity score for layer 'conv2'/,
    ],
    [
      { precision: "int8", metric: "cosine", batches: 3, scores: { conv1: 1, conv2: -1, logits: 1 } },
      /no valid sensitivity score/,
    ],
    [
      { precision: "int8", metric: "cosine", batches: "many", scores: { conv1: 1, conv2: 1, logits: 1 } },
      /no valid batch count/,
    ],
  ])("sensitivity %o", async (sensitivity, msg) => {
    const cache = join(tempDir(), "scales.json");
    await int8({ data: calib.slice(0, 4), cache });
    const c = JSON.parse(readFileSync(cache, "utf8"));
    writeFileSync(cache, JSON.stringify({ ...c, sensitivity }));
    await expect(int8({ cache, sensitivity: { keep: 1 } })).rejects.toThrow(msg);
  });
});

describe("sensitivity options are checked before anything runs", () => {
  it.each([
    [{ keep: -1 }, /keep must be a whole number of layers or "auto", got -1/],
    [{ keep: 1.5 }, /keep must be a whole number/],
    [{ keep: "all" }, /keep must be a whole number of layers or "auto", got "all"/],
    [{}, /keep must be/],
    [{ keep: 1, metric: "l2" }, /metric must be cosine or relative-max, got "l2"/],
    [{ keep: "auto", target: 0 }, /target must be a positive number/],
    [{ keep: 2, target: 1e-3 }, /target applies to keep "auto" only/],
    [{ keep: 1, batches: 0 }, /batches must be an integer from 1 to 64/],
    [{ keep: 1, batches: 65 }, /batches must be an integer from 1 to 64/],
    [{ keep: 1, layers: 2 }, /unknown field 'layers'/],
    [3, /expected \{ keep/],
  ])("refuses %o", async (sensitivity, msg) => {
    await expect(int8({ data: calib, sensitivity })).rejects.toThrow(msg);
  });

  it("needs int8 or fp8 enabled", async () => {
    await expect(
      compile(outlierCnn(), {
        backend: "reference",
        enabledPrecisions: ["fp16"],
        calibration: { data: calib, sensitivity: { keep: 1 } },
      }),
    ).rejects.toThrow(/sensitivity: needs int8 or fp8 in enabledPrecisions/);
  });
});

// Post-training quantization end to end on the CPU: calibrate a small CNN on the reference backend, check
// that int8 / fp8 stay close to fp32 while really changing the numbers, that the calibration cache
// round-trips to identical outputs, and that bad calibration input is one clear error.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { calibrate } from "../../src/runtime/calibration.js";
import { compile, loadCompiled } from "../../src/runtime/compile.js";
import { encodeNpy } from "../../src/util/npy.js";
import { tempDir } from "../helpers.js";
import { cosine } from "./cosine.js";
import { images, tinyCnn } from "./tiny-cnn.js";

const calib = images(24, 1000);
const held = images(6, 5000);

async function outputs(options: Parameters<typeof compile>[1], graph = tinyCnn()): Promise<Tensor[]> {
  const m = await compile(graph, { backend: "reference", ...options });
  const outs: Tensor[] = [];
  for (const x of held) outs.push((await m.run([x]))[0]);
  return outs;
}

async function* asyncBatches(ts: readonly Tensor[]) {
  for (const t of ts) yield t;
}

describe("int8 and fp8 post-training quantization (reference backend)", async () => {
  const fp32 = await outputs({});

  it("the reference itself depends on the input (a constant model would pass any check)", () => {
    expect(cosine(fp32[0], fp32[1])).toBeLessThan(0.999);
  });

  it.each(["minmax", "percentile", "entropy"] as const)(
    "int8 (%s) is close to fp32 and not identical",
    async (algorithm) => {
      const q = await outputs({ enabledPrecisions: ["int8"], calibration: { data: calib, algorithm } });
      for (let i = 0; i < held.length; i++) {
        expect(cosine(q[i], fp32[i])).toBeGreaterThan(0.995);
        expect(Array.from(toFloat64Array(q[i]))).not.toEqual(Array.from(toFloat64Array(fp32[i])));
      }
    },
  );

  it("fp8 E4M3 is close to fp32 and not identical", async () => {
    const q = await outputs({ enabledPrecisions: ["fp8"], calibration: { data: asyncBatches(calib) } });
    for (let i = 0; i < held.length; i++) {
      expect(cosine(q[i], fp32[i])).toBeGreaterThan(0.995);
      expect(Array.from(toFloat64Array(q[i]))).not.toEqual(Array.from(toFloat64Array(fp32[i])));
    }
  });

  it("quantizes both convolutions and the linear layer, keeping int8 weights", async () => {
    const m = await compile(tinyCnn(), {
      backend: "reference",
      enabledPrecisions: ["int8"],
      calibration: { data: calib, algorithm: "minmax" },
    });
    // inserted as PT2E's Q/DQ pattern, then folded into torchc's quantized layers
    const ops = m.graph.nodes.map((n) => n.op);
    expect(ops.filter((o) => o === "torchc.quantized_convolution.default")).toHaveLength(2);
    expect(ops.filter((o) => o === "torchc.quantized_linear.default")).toHaveLength(1);
    expect(Object.values(m.graph.weights).filter((w) => w.tensor.dtype === "int8")).toHaveLength(3);
  });

  it("a cache round-trips: compiled again from the cache alone, the graph and outputs are identical", async () => {
    const cache = join(tempDir(), "scales.json");
    let progress = 0;
    const first = await compile(tinyCnn(), {
      backend: "reference",
      enabledPrecisions: ["int8"],
      calibration: { data: calib, algorithm: "entropy", cache, onProgress: (n) => (progress = n) },
    });
    expect(progress).toBe(calib.length);
    const written = JSON.parse(readFileSync(cache, "utf8"));
    expect(written.format).toBe("torchc-calibration/1");
    expect(Object.keys(written.tensors)).toHaveLength(3);
    const second = await compile(tinyCnn(), {
      backend: "reference",
      enabledPrecisions: ["int8"],
      calibration: { cache },
    });
    expect(JSON.stringify(second.graph.nodes)).toBe(JSON.stringify(first.graph.nodes));
    for (const x of held) {
      const [a] = await first.run([x]);
      const [b] = await second.run([x]);
      expect(Array.from(toFloat64Array(b))).toEqual(Array.from(toFloat64Array(a)));
    }
  });

  it("reads a folder of .npy files, splitting a file of many samples into batches", async () => {
    const dir = tempDir();
    const all = new Float32Array(calib.length * 64);
    for (const [i, t] of calib.entries()) all.set(t.data as Float32Array, i * 64);
    writeFileSync(
      join(dir, "a.npy"),
      encodeNpy({ dtype: "float32", shape: [calib.length, 1, 8, 8], data: all }),
    );
    let n = 0;
    const r = await calibrate(tinyCnnLowered(), "int8", {
      data: dir,
      algorithm: "minmax",
      onProgress: (k) => (n = k),
    });
    expect(n).toBe(calib.length);
    // The same samples as an iterable give the same ranges.
    const s = await calibrate(tinyCnnLowered(), "int8", { data: calib, algorithm: "minmax" });
    expect(r.cache.tensors).toEqual(s.cache.tensors);
  });

  it("calibrating through an engine (the observed activations as extra outputs) gives the interpreter's ranges", async () => {
    const g = tinyCnnLowered();
    const viaInterpreter = await calibrate(g, "int8", { data: calib, algorithm: "minmax" });
    let built = 0;
    const viaEngine = await calibrate(g, "int8", { data: calib, algorithm: "minmax" }, async (observing) => {
      built++;
      expect(observing.outputs.length).toBeGreaterThan(g.outputs.length);
      return compile(observing, { backend: "reference", passes: [] });
    });
    expect(built).toBe(1);
    for (const [v, e] of Object.entries(viaInterpreter.cache.tensors))
      expect(viaEngine.cache.tensors[v].amax).toBeCloseTo(e.amax, 5);
  });

  it("a saved int8 module loads without calibrating again", async () => {
    const m = await compile(tinyCnn(), {
      backend: "reference",
      enabledPrecisions: ["int8"],
      calibration: { data: calib, algorithm: "minmax" },
    });
    const file = join(tempDir(), "q.torchc");
    m.save(file);
    const back = await loadCompiled(file);
    const [a] = await m.run([held[0]]);
    const [b] = await back.run([held[0]]);
    expect(Array.from(toFloat64Array(b))).toEqual(Array.from(toFloat64Array(a)));
  });

  describe("bad calibration input is one clear error", () => {
    const int8 = (calibration: object, graph = tinyCnn()) =>
      compile(graph, { backend: "reference", enabledPrecisions: ["int8"], calibration });

    it("an empty folder", async () => {
      await expect(int8({ data: tempDir() })).rejects.toThrow(/has no \.npy files/);
    });

    it("wrong shapes", async () => {
      const wrong = tensorFromNumbers("float32", [1, 1, 7, 8], new Array(56).fill(0.5));
      await expect(int8({ data: [wrong] })).rejects.toThrow(
        /batch 0 has shape \[1, 1, 7, 8\]; the model's input is \[1, 1, 8, 8\]/,
      );
    });

    it("the wrong dtype", async () => {
      const u8 = tensorFromNumbers("uint8", [1, 1, 8, 8], new Array(64).fill(3));
      await expect(int8({ data: [u8] })).rejects.toThrow(
        /batch 0 is uint8; the model's input 'x' is float32/,
      );
    });

    it("NaN in the data", async () => {
      const bad = {
        ...calib[1],
        data: (calib[1].data as Float32Array).map((v, i) => (i === 5 ? Number.NaN : v)),
      };
      await expect(int8({ data: [calib[0], bad] })).rejects.toThrow(/batch 1 has NaN at element 5/);
    });

    it("a cache from another model", async () => {
      const cache = join(tempDir(), "scales.json");
      await int8({ data: calib.slice(0, 4), cache });
      await expect(int8({ cache }, tinyCnn(2))).rejects.toThrow(/was made for another model/);
    });

    it("no data and no cache, and an unknown algorithm", async () => {
      await expect(int8({})).rejects.toThrow(/int8 needs calibration data/);
      await expect(int8({ cache: join(tempDir(), "missing.json") })).rejects.toThrow(
        /does not exist and no calibration data/,
      );
      await expect(int8({ data: calib, algorithm: "kl" })).rejects.toThrow(/unknown algorithm 'kl'/);
    });

    it("a missing folder and an empty iterable", async () => {
      const dir = join(tempDir(), "nope");
      await expect(int8({ data: dir })).rejects.toThrow(/does not exist/);
      mkdirSync(dir);
      await expect(int8({ data: [] })).rejects.toThrow(/yielded no batches/);
    });
  });
});

import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";

function tinyCnnLowered() {
  return runPipeline(tinyCnn(), defaultPipeline({})).graph;
}

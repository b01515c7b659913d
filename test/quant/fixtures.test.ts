// The fixture CNNs exported by PyTorch (fixtures/models) through int8 and fp8 PTQ on the reference backend,
// against PyTorch's stored fp32 output, and the torchc command's calibration flags.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../src/frontends/load-model.js";
import { type Tensor, toFloat64Array } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import { readNpy, writeNpy } from "../../src/util/npy.js";
import { MODELS, ROOT, tempDir } from "../helpers.js";
import { cosine } from "./cosine.js";
import { seeded } from "./tiny-cnn.js";

/** Calibration batches around the fixture input: it, and copies with seeded noise of 10 % of its spread. */
function around(x: Tensor, n: number): Tensor[] {
  const v = toFloat64Array(x);
  let spread = 0;
  for (const e of v) spread = Math.max(spread, Math.abs(e));
  return Array.from({ length: n }, (_, k) => {
    const r = seeded(31 + k);
    const data = Float32Array.from(v, (e) => (k === 0 ? e : e + 0.1 * spread * r()));
    return { dtype: "float32", shape: [...x.shape], data };
  });
}

const CNNS = ["tiny_resnet", "tiny_mobilenetv3", "tiny_efficientnet", "conv_zoo"].filter((m) =>
  existsSync(join(MODELS, `${m}.pt2`)),
);

describe.each(CNNS)("%s", (name) => {
  const input = readNpy(join(MODELS, `${name}.input.npy`));
  const want = readNpy(join(MODELS, `${name}.output.npy`));

  it.each(["int8", "fp8"] as const)("%s PTQ stays close to PyTorch's fp32 output", async (precision) => {
    const m = await compile(await loadModel(join(MODELS, `${name}.pt2`)), {
      backend: "reference",
      enabledPrecisions: [precision],
      calibration: { data: around(input, 4), algorithm: "minmax" },
    });
    const q = m.graph.nodes.filter((n) =>
      precision === "int8" ? n.op.startsWith("torchc.quantized_") : n.op === "aten.exp2.default",
    );
    expect(q.length).toBeGreaterThan(0);
    const [out] = await m.run([input]);
    expect(cosine(out, want)).toBeGreaterThan(0.98);
  });
});

describe("torchc compile --precision int8 --calibration-data", () => {
  it("calibrates from a folder, writes the cache, then compiles from the cache alone", () => {
    const data = tempDir();
    const input = readNpy(join(MODELS, "tiny_resnet.input.npy"));
    around(input, 3).forEach((t, i) => {
      writeNpy(join(data, `batch${i}.npy`), t);
    });
    const cache = join(tempDir(), "scales.json");
    const model = join(MODELS, "tiny_resnet.pt2");
    const run = (...extra: string[]) =>
      spawnSync(
        process.execPath,
        [join(ROOT, "bin", "torchc.js"), "compile", model, "--precision", "int8", ...extra],
        {
          encoding: "utf8",
          timeout: 120_000,
        },
      );
    const first = run(
      "--calibration-data",
      data,
      "--calibration-cache",
      cache,
      "--calibration-algorithm",
      "percentile",
    );
    expect(first.stderr).toContain("calibrating: 3 batches");
    expect(first.status).toBe(0);
    expect(JSON.parse(readFileSync(cache, "utf8")).algorithm).toBe("percentile");
    const second = run("--calibration-cache", cache);
    expect(second.status).toBe(0);
    expect(second.stderr).not.toContain("calibrating");
    const bad = run("--calibration-data", tempDir());
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/error: calibration: data folder '.*' has no \.npy files/);
  });
});

/**
 * One EfficientNet-B0 (timm, random weights) exported with a dynamic batch (torch.export, Dim 1..128) and
 * compiled once for batches 1–128 (opt 32, fp16) against static compiles of the same program at 1, 8, 32 and
 * 128 rows: at each batch the module's output matches PyTorch eager fp32 (max|err|/max|ref| ≤ 1e-2) and its GPU
 * time per forward pass is within 15% of the static compile's. Prints one line per batch: dynamic ms, static
 * ms, ratio (and end-to-end run() medians). Also: the buckets share one copy of the weights, concurrent runs
 * at two sizes each get their own rows, and a batch outside the range is refused by name.
 * Runs under Node's test runner on the GPU machine: `bash scripts/gpu.sh test dynamic`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadModel } from "../../src/frontends/load-model.js";
import { numel, type Tensor } from "../../src/ir/tensor.js";
import { type CompiledModule, compile } from "../../src/runtime/compile.js";
import type { DynamicModule } from "../../src/runtime/dynamic-module.js";
import { compareTensors } from "../../src/util/compare.js";
import { readNpy } from "../../src/util/npy.js";
import { gpuReporter, openGpu, repoRoot } from "./support.js";

const ROOT = repoRoot("fixtures", "export_dynamic.py");
const BATCHES = [1, 8, 32, 128];
const RANGE = { min: 1, opt: 32, max: 128 };
const TOL = 1e-2;
const report = gpuReporter("dynamic");
const { skip } = openGpu();

/** The first `n` rows of a [N, …] tensor. */
function head(t: Tensor, n: number): Tensor {
  const per = numel(t.shape.slice(1));
  return {
    dtype: t.dtype,
    shape: [n, ...t.shape.slice(1)],
    data: t.data.slice(0, n * per) as Tensor["data"],
  };
}

/** Row `i` of a [N, …] tensor, as a [1, …] tensor. */
function row(t: Tensor, i: number): Tensor {
  const per = numel(t.shape.slice(1));
  return {
    dtype: t.dtype,
    shape: [1, ...t.shape.slice(1)],
    data: t.data.slice(i * per, (i + 1) * per) as Tensor["data"],
  };
}

/** Median wall ms of `reps` run() calls (host fp32 in, host fp32 out). */
async function endToEnd(m: CompiledModule, x: Tensor, reps = 20): Promise<number> {
  await m.run([x]);
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await m.run([x]);
    t.push(performance.now() - t0);
  }
  return t.sort((a, b) => a - b)[Math.floor((t.length - 1) / 2)];
}

describe("EfficientNet-B0 with a batch range 1–128 (opt 32), fp16", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "torchc-dynamic-"));
  let exported: ReturnType<typeof spawnSync> | undefined;
  let dynamic: DynamicModule | undefined;
  let input: Tensor;
  let why: string | false = false;
  const timings: Record<number, { dynamic: number; static: number; weights: number }> = {};

  before(async () => {
    exported = spawnSync("python3", [join(ROOT, "fixtures", "export_dynamic.py"), dir, String(RANGE.max)], {
      encoding: "utf8",
      timeout: 300_000,
    });
    if (exported.status !== 0) {
      why = `export failed: ${String(exported.stderr).split("\n").slice(-3).join(" ")}`;
      return;
    }
    console.log(`[dynamic] ${String(exported.stdout).trim()}`);
    input = readNpy(join(dir, "input.npy"));
    const model = await loadModel(join(dir, "efficientnet_b0.dyn.pt2"));
    assert.ok(model.dynamic, "the archive has a symbolic batch");
    const t0 = performance.now();
    dynamic = (await compile(model, {
      backend: "cuda",
      enabledPrecisions: ["fp16"],
      inputs: [{ minShape: [1, 3, 224, 224], optShape: [32, 3, 224, 224], maxShape: [128, 3, 224, 224] }],
    })) as DynamicModule;
    report("compiled", { ms: Math.round(performance.now() - t0), buckets: dynamic.range.buckets });
    console.log(dynamic.report.text.split("\n").slice(-1)[0]);
  });

  after(async () => {
    await dynamic?.dispose();
  });

  for (const b of BATCHES) {
    it(`batch ${b}: matches PyTorch, GPU time within 15% of a static compile at ${b}`, async () => {
      assert.ok(!why, why || "");
      const m = dynamic as DynamicModule;
      const x = head(input, b);
      const want = readNpy(join(dir, `output_${b}.npy`));
      if (b > 1)
        assert.ok(
          compareTensors(row(want, 0), row(want, 1)).relative > 1e-2,
          "PyTorch's rows differ (the check can see a row mix-up)",
        );
      const t0 = performance.now();
      const [y] = await m.run([x]);
      const firstMs = performance.now() - t0;
      const dyn = compareTensors(y, want);
      assert.ok(dyn.shapeMatches, `output shape ${y.shape}`);
      assert.ok(dyn.relative <= TOL, `dynamic module at batch ${b}: ${dyn.relative} > ${TOL}`);
      const again = compareTensors((await m.run([x]))[0], want);
      assert.ok(again.relative <= TOL, "a second run at the same batch");

      const staticModule = await compile(await loadModel(join(dir, "efficientnet_b0.dyn.pt2")), {
        backend: "cuda",
        enabledPrecisions: ["fp16"],
        inputs: [{ shape: [b, 3, 224, 224] }],
      });
      try {
        const st = compareTensors((await staticModule.run([x]))[0], want);
        assert.ok(st.relative <= TOL, `static compile at batch ${b}: ${st.relative}`);
        // interleaved, so that clocks and neighbours affect both alike
        const d1 = m.benchmark([x], { reps: 100 }).medianMs;
        const s1 = staticModule.benchmark([x], { reps: 100 }).medianMs;
        const d2 = m.benchmark([x], { reps: 100 }).medianMs;
        const s2 = staticModule.benchmark([x], { reps: 100 }).medianMs;
        const d = Math.min(d1, d2);
        const s = Math.min(s1, s2);
        const e2eDynamic = await endToEnd(m, x);
        const e2eStatic = await endToEnd(staticModule, x);
        timings[b] = { dynamic: d, static: s, weights: staticModule.memory().weights };
        const line = {
          batch: b,
          dynamicMs: +d.toFixed(3),
          staticMs: +s.toFixed(3),
          ratio: +(d / s).toFixed(3),
          e2eDynamicMs: +e2eDynamic.toFixed(3),
          e2eStaticMs: +e2eStatic.toFixed(3),
          firstRunMs: Math.round(firstMs),
          relative: dyn.relative,
        };
        report("batch", line);
        console.log(
          `[dynamic] batch ${b}: dynamic ${line.dynamicMs} ms, static ${line.staticMs} ms, ratio ${line.ratio} (end to end ${line.e2eDynamicMs} / ${line.e2eStaticMs} ms; first run incl. bucket build ${line.firstRunMs} ms)`,
        );
        assert.ok(d <= 1.15 * s, `batch ${b}: dynamic ${d} ms > 1.15 × static ${s} ms`);
      } finally {
        await staticModule.dispose();
      }
    });
  }

  it("the buckets built so far share one copy of the weights", () => {
    assert.ok(!why, why || "");
    const m = dynamic as DynamicModule;
    const built = m.buckets.filter((x) => x.resident);
    const mem = m.memory();
    const oneStatic = Math.max(...Object.values(timings).map((t) => t.weights));
    report("memory", {
      buckets: built.map((x) => x.size),
      weights: mem.weights,
      staticWeights: oneStatic,
      activations: mem.activations,
      deviceTotal: mem.deviceTotal,
    });
    assert.ok(built.length >= 4, "1, 8, 32 and 128 are built");
    assert.ok(
      mem.weights <= 1.05 * oneStatic,
      `weights ${mem.weights} B for ${built.length} buckets vs ${oneStatic} B for one static module`,
    );
  });

  it("with silu forced to LibTorch (fallback segments sized per bucket): batches 8 and 5 match PyTorch", async () => {
    assert.ok(!why, why || "");
    const m = (await compile(await loadModel(join(dir, "efficientnet_b0.dyn.pt2")), {
      backend: "cuda",
      enabledPrecisions: ["fp16"],
      torchExecutedOps: ["aten.silu.default"],
      inputs: [{ minShape: [1, 3, 224, 224], optShape: [8, 3, 224, 224], maxShape: [8, 3, 224, 224] }],
    })) as DynamicModule;
    try {
      assert.ok(m.report.partition.totals.fallbackSegments > 0, "fallback segments exist");
      const want = readNpy(join(dir, "output_8.npy"));
      const [y8] = await m.run([head(input, 8)]);
      const [y5] = await m.run([head(input, 5)]); // padded into the bucket of 8
      const a8 = compareTensors(y8, want).relative;
      const a5 = compareTensors(y5, head(want, 5)).relative;
      report("fallback", { relative8: a8, relative5: a5, buckets: m.buckets });
      assert.ok(a8 <= TOL && a5 <= TOL, `fallback module: ${a8}, ${a5}`);
    } finally {
      await m.dispose();
    }
  });

  it("concurrent runs at two sizes each get their own rows; a batch outside the range is refused", async () => {
    assert.ok(!why, why || "");
    const m = dynamic as DynamicModule;
    const [a, c] = await Promise.all([m.run([head(input, 8)]), m.run([head(input, 32)])]);
    assert.ok(compareTensors(a[0], readNpy(join(dir, "output_8.npy"))).relative <= TOL);
    assert.ok(compareTensors(c[0], readNpy(join(dir, "output_32.npy"))).relative <= TOL);
    // 5 rows run padded in the bucket of 8: the first 5 rows of PyTorch's batch-8 output
    const [five] = await m.run([head(input, 5)]);
    assert.ok(compareTensors(five, head(readNpy(join(dir, "output_8.npy")), 5)).relative <= TOL);
    const big: Tensor = {
      dtype: "float32",
      shape: [129, 3, 224, 224],
      data: new Float32Array(129 * 3 * 224 * 224),
    };
    await assert.rejects(m.run([big]), /outside the compiled range 1–128/);
  });
});

/**
 * Soak: 100,000 runs of EfficientNet-B0 fp16 batch 1 through compiled.run(), cycling through 16 inputs and
 * checking every 100th output against PyTorch's output for that input. Host RSS and device memory in use
 * must not grow by more than 5 MiB between the end of warm-up and the end. TORCHC_SOAK_RUNS overrides the
 * count (for a quick look). Inputs from fixtures/export_runtime.py (TORCHC_RUNTIME_DIR).
 * `bash scripts/gpu.sh test soak`
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { CudaContext } from "../../src/backends/cuda/device/context.js";
import { compareTensors } from "../../src/cli/compare.js";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import { readNpy } from "../../src/util/npy.js";
import { gpuReporter, openGpu, recordTestStarts } from "./support.js";

const { skip } = openGpu();
const report = gpuReporter("soak");
recordTestStarts();
const dir = process.env.TORCHC_RUNTIME_DIR ?? "/tmp/torchc-runtime";
const MiB = 1 << 20;
// A full collection before each reading, so RSS reflects what is kept rather than garbage not yet collected.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

describe("soak", {
  skip:
    skip ||
    (!existsSync(join(dir, "efficientnet_b0_b1.pt2")) &&
      `no ${dir}/efficientnet_b0_b1.pt2 (run fixtures/export_runtime.py first)`),
}, () => {
  it("100,000 runs of EfficientNet-B0 batch 1: right answers, no memory growth", async () => {
    const runs = Number(process.env.TORCHC_SOAK_RUNS ?? 100_000);
    // fp16 judged against PyTorch's own fp16 on the same input: within 1e-2 or 1.5× its error.
    const cs = Array.from({ length: 16 }, (_, k) => {
      const output = readNpy(join(dir, "efficientnet_b0_b1", `output_${k}.npy`));
      const f16 = readNpy(join(dir, "efficientnet_b0_b1", `output16_${k}.npy`));
      const tol = Math.max(1e-2, 1.5 * compareTensors(f16, output).relative);
      return { input: readNpy(join(dir, "efficientnet_b0_b1", `input_${k}.npy`)), output, tol };
    });
    const compiled = await compile(await loadModel(join(dir, "efficientnet_b0_b1.pt2")), {
      backend: "cuda",
      enabledPrecisions: ["fp16"],
    });
    const ctx = CudaContext.get(0);
    try {
      const warm = Math.min(2000, Math.floor(runs / 10));
      let rss0 = 0;
      let used0 = 0;
      let checked = 0;
      let worst = 0;
      const t0 = performance.now();
      for (let i = 0; i < runs; i++) {
        const c = cs[i % 16];
        const [out] = (await compiled.run([c.input])) as Tensor[];
        if (i % 100 === 0) {
          const e = compareTensors(out, c.output).relative;
          worst = Math.max(worst, e);
          checked++;
          assert.ok(e <= c.tol, `run ${i} (input ${i % 16}): max|err|/max|ref| ${e} > ${c.tol}`);
        }
        if (i === warm) {
          gc();
          rss0 = process.memoryUsage().rss;
          const m = ctx.memInfo();
          used0 = m.total - m.free;
        }
      }
      const ms = performance.now() - t0;
      gc();
      const rss1 = process.memoryUsage().rss;
      const m = ctx.memInfo();
      const used1 = m.total - m.free;
      const result = {
        runs,
        checked,
        worst,
        msPerRun: ms / runs,
        rssGrowthMiB: (rss1 - rss0) / MiB,
        deviceGrowthMiB: (used1 - used0) / MiB,
        rssMiB: rss1 / MiB,
        deviceUsedMiB: used1 / MiB,
      };
      report("soak", result);
      assert.ok(
        result.deviceGrowthMiB <= 5,
        `device memory grew by ${result.deviceGrowthMiB.toFixed(2)} MiB`,
      );
      assert.ok(result.rssGrowthMiB <= 5, `host RSS grew by ${result.rssGrowthMiB.toFixed(2)} MiB`);
    } finally {
      await compiled.dispose();
    }
  });
});

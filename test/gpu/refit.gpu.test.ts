/**
 * Refit (issue 12) on the GPU: two EfficientNet-B0 (timm) with different weights (batch norms given non-default
 * statistics, as a trained checkpoint has), exported here. Model A is compiled fp16 on the CUDA backend and refitted
 * with B's weights: its outputs must be bit-identical to a fresh compile of B (and within fp16 tolerance of
 * PyTorch's B), differ from A's, and the refit must take < 10% of A's compile time. Both models are loaded before
 * the clock starts. Prints `[refit] {"check":"timings","compileMs":…,"refitMs":…}`.
 *   bash scripts/gpu.sh test refit
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { compareTensors } from "../../src/cli/compare.js";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import { readNpy } from "../../src/util/npy.js";
import { onProgress } from "../../src/util/progress.js";
import { gpuReporter, openGpu, recordTestStarts } from "./support.js";

const { skip } = openGpu();
const report = gpuReporter("refit");
recordTestStarts();

/** Exports efficientnet_b0 with seed `seed` (non-default batch-norm statistics) and PyTorch's output for one input. */
const EXPORT = `
import sys, numpy as np, timm, torch
out, seed = sys.argv[1], int(sys.argv[2])
torch.manual_seed(seed)
m = timm.create_model("efficientnet_b0", pretrained=False).eval()
g = torch.Generator().manual_seed(seed + 100)
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
            mod.weight.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
            mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(7))
with torch.no_grad():
    y = m(x)
    torch.export.save(torch.export.export(m, (x,)), f"{out}/effnet_{seed}.pt2")
np.save(f"{out}/input.npy", x.numpy())
np.save(f"{out}/effnet_{seed}.output.npy", y.numpy())
`;

function bytesOf(t: Tensor): Uint8Array {
  const d = t.data as ArrayBufferView;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

describe("refit of EfficientNet-B0 fp16 on the CUDA backend", { skip }, () => {
  it("gives a fresh compile's outputs in < 10% of the compile time", async () => {
    const dir = mkdtempSync(join(tmpdir(), "torchc-refit-"));
    for (const seed of [0, 1]) {
      const r = spawnSync("python3", ["-c", EXPORT, dir, String(seed)], {
        encoding: "utf8",
        timeout: 240_000,
      });
      assert.equal(r.status, 0, `export failed: ${r.stderr?.split("\n").slice(-3).join(" ")}`);
    }
    const x = readNpy(join(dir, "input.npy"));
    const [a, b] = [await loadModel(join(dir, "effnet_0.pt2")), await loadModel(join(dir, "effnet_1.pt2"))];
    const options = { backend: "cuda" as const, enabledPrecisions: ["fp16" as const] };

    const t0 = performance.now();
    const compiled = await compile(a, options);
    const compileMs = performance.now() - t0;
    const fresh = await compile(b, options);
    try {
      const [before] = await compiled.run([x]);
      const [want] = await fresh.run([x]);
      const phases: [string, number][] = [];
      const t1 = performance.now();
      const stop = onProgress((e) => phases.push([e.phase, performance.now() - t1]));
      const r = await compiled.refit(b);
      const refitMs = performance.now() - t1;
      stop();
      // Where the refit's time goes: one row per phase (a phase lasts until the next starts).
      const table = phases.map(
        ([p, at], i) => `${((phases[i + 1]?.[1] ?? refitMs) - at).toFixed(1).padStart(8)} ms  ${p}`,
      );
      console.log(`[refit-phases]\n${table.map((row) => `  ${row}`).join("\n")}`);
      const [got] = await compiled.run([x]);
      const [again] = await compiled.run([x]);

      const golden = compareTensors(got, readNpy(join(dir, "effnet_1.output.npy")));
      const vsFresh = compareTensors(got, want);
      const identical = bytesOf(got).every((v, i) => v === bytesOf(want)[i]);
      report("timings", {
        compileMs: Math.round(compileMs),
        refitMs: Math.round(refitMs),
        ratio: refitMs / compileMs,
        engines: r.engines,
        changedWeights: r.changedWeights,
        identicalToFresh: identical,
        relativeToFresh: vsFresh.relative,
        relativeToPyTorch: golden.relative,
        phases: table,
      });
      assert.ok(identical, `refitted output differs from a fresh compile (relative ${vsFresh.relative})`);
      assert.ok(
        bytesOf(again).every((v, i) => v === bytesOf(got)[i]),
        "a second run gives the same bits",
      );
      assert.ok(golden.relative <= 1e-2, `refitted vs PyTorch: relative ${golden.relative}`);
      assert.ok(compareTensors(before, got).relative > 1e-3, "the new weights change the output");
      assert.ok(r.engines > 0, "engines were refitted in place");
      assert.ok(
        refitMs < 0.1 * compileMs,
        `refit ${Math.round(refitMs)} ms vs compile ${Math.round(compileMs)} ms`,
      );
    } finally {
      await compiled.dispose();
      await fresh.dispose();
    }
  });
});

/**
 * The LibTorch fallback's lowering rules in compile()'s trace on the GPU: tiny_mobilenetv3 compiled for CUDA
 * with its hardswish/hardsigmoid/add ops sent to LibTorch (the partitioner pulls convolutions in with them). The
 * report's trace has `libtorch-lowering` runs whose entries name the fallback rules that fired (convolutions →
 * `_convolution(allow_tf32=False)` at least), `--trace-passes` text shows it, and the output still
 * matches PyTorch's stored one (max|Δ|/max|ref| ≤ 1e-4).
 * Run on the GPU machine: `bash scripts/gpu.sh test fallback-trace`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadModel } from "../../src/frontends/load-model.js";
import { formatTrace } from "../../src/passes/rewrite/trace.js";
import { compile } from "../../src/runtime/compile.js";
import { readNpy } from "../../src/util/npy.js";
import { relMaxError } from "../backends/torch/compare.js";
import { gpuReporter, openGpu, recordTestStarts, repoRoot } from "./support.js";

const ROOT = repoRoot("fixtures", "models");
const MODELS = join(ROOT, "fixtures", "models");

const { skip } = openGpu();
const report = gpuReporter("fallback-trace");
recordTestStarts();

describe("fallback lowering in the compile trace (GPU)", { skip }, () => {
  it("tiny_mobilenetv3 with LibTorch-executed ops: trace has libtorch-lowering firings, output matches PyTorch", async () => {
    const model = await loadModel(join(MODELS, "tiny_mobilenetv3.pt2"));
    const compiled = await compile(model, {
      backend: "cuda",
      torchExecutedOps: ["aten.hardswish.default", "aten.hardsigmoid.default", "aten.add.Tensor"],
    });
    try {
      const { trace } = compiled.report;
      const runs = trace.passes.filter((p) => p.pass === "libtorch-lowering");
      assert.ok(runs.length > 0, `no libtorch-lowering run in ${trace.passes.map((p) => p.pass).join(", ")}`);
      const fired = runs.flatMap((r) => trace.entries.slice(r.firstEntry, r.firstEntry + r.changes));
      const text = formatTrace(trace);
      assert.match(text, /pass libtorch-lowering: \d+ changes/);
      const input = readNpy(join(MODELS, "tiny_mobilenetv3.input.npy"));
      const want = readNpy(join(MODELS, "tiny_mobilenetv3.output.npy"));
      const [got] = await compiled.run([input]);
      const err = relMaxError(got, want);
      report("libtorch-lowering in trace", {
        runs: runs.length,
        firings: fired.length,
        rules: [...new Set(fired.map((e) => e.rule))],
        relMaxError: err,
      });
      assert.ok(fired.some((e) => e.rule === "convolution → _convolution(allow_tf32=False)"));
      assert.ok(err <= 1e-4, `max|Δ|/max|ref| = ${err}`);
    } finally {
      await compiled.dispose();
    }
  });
});

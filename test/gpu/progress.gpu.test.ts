/**
 * The compile's progress events on the GPU (issue 10): a CUDA build of tiny_resnet with cuDNN tuning reports the
 * passes, the partition, the segment, the engine's schedule, kernel compilation, weight upload, one step per
 * convolution tuned (k of n, n the engine's cuDNN convolutions) and the warm-up with graph capture, in that order.
 * `bash scripts/gpu.sh test progress`
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadModel } from "../../src/frontends/load-model.js";
import { compile } from "../../src/runtime/compile.js";
import { onProgress, type ProgressEvent } from "../../src/util/progress.js";
import { gpuReporter, openGpu, repoRoot } from "./support.js";

const ROOT = repoRoot("fixtures", "models");
const { skip } = openGpu();
const report = gpuReporter("progress");

describe("compile progress on the GPU", { skip }, () => {
  it("reports every phase of a CUDA build, tuning one convolution at a time", async () => {
    const model = await loadModel(join(ROOT, "fixtures", "models", "tiny_resnet.pt2"));
    const events: ProgressEvent[] = [];
    const stop = onProgress((e) => events.push(e));
    let compiled: Awaited<ReturnType<typeof compile>> | undefined;
    try {
      compiled = await compile(model, { backend: "cuda", tune: true });
    } finally {
      stop();
    }
    const phases = events.map((e) => e.phase);
    report("phases", { phases: [...new Set(phases)], events: events.length });
    const order = [
      "passes",
      "partition",
      "segment",
      "schedule",
      "compile kernels",
      "upload weights",
      "warm up and capture",
    ];
    let at = -1;
    for (const p of order) {
      const i = phases.indexOf(p, at + 1);
      assert.ok(i > at, `phase '${p}' after index ${at} in ${phases.join(", ")}`);
      at = i;
    }
    const tuned = events.filter((e) => e.phase === "tune convs");
    assert.ok(tuned.length > 0, "no 'tune convs' steps");
    const total = tuned[0].total!;
    assert.deepEqual(
      tuned.map((e) => e.done),
      Array.from({ length: total }, (_, k) => k + 1),
    );
    assert.ok(phases.indexOf("tune convs") > phases.indexOf("warm up and capture"));
    for (const e of events.filter(
      (x) => x.phase !== "passes" && x.phase !== "partition" && x.phase !== "segment",
    ))
      if (e.phase !== "warm up and capture") assert.equal(e.sub, true, `${e.phase} is a sub-step`);
    await compiled?.dispose();
  });
});

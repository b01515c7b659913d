/**
 * EfficientNet-B0 (timm layout, random weights, 224×224) through the CUDA backend: build time and statistics,
 * fp16 vs fp32 agreement at batch 1, and the replayed CUDA graph's GPU time (events, many launches) at
 * batch 1 and 128. Numbers go to stdout and TORCHC_GPU_REPORT. `bash scripts/gpu.sh test cuda-bench`.
 */
import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import { describe, it } from "node:test";
import { buildCudaEngine } from "../../src/backends/cuda/builder.js";
import { efficientNetB0, randomTensor, rng } from "../../src/backends/cuda/testing/nets.js";
import { toFloat64Array } from "../../src/ir/tensor.js";
import { openGpu } from "./support.js";

const { ctx, skip } = openGpu();
const device = ctx?.info.name ?? "";

function report(name: string, values: Record<string, unknown>): void {
  const line = JSON.stringify({ bench: name, device, ...values });
  console.log(`[cuda-bench] ${line}`);
  const file = process.env.TORCHC_GPU_REPORT;
  if (file) appendFileSync(file, `${line}\n`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

describe("EfficientNet-B0 on the CUDA backend", { skip }, () => {
  for (const [batch, precision] of [
    [1, "fp16"],
    [1, "fp32"],
    [128, "fp16"],
  ] as const) {
    it(`batch ${batch} ${precision}`, async () => {
      const net = efficientNetB0(batch);
      const t0 = performance.now();
      const engine = await buildCudaEngine(net, { precision, log: (m) => console.log(`  ${m}`) });
      const buildMs = performance.now() - t0;
      try {
        const x = randomTensor(rng(batch), "float32", [batch, 3, 224, 224], 1);
        const [y] = engine.run([x]);
        const v = toFloat64Array(y);
        assert.ok(v.every(Number.isFinite), "non-finite logits");
        if (batch === 1 && precision === "fp16") {
          const ref = await buildCudaEngine(net, { precision: "fp32" });
          const [r] = ref.run([x]);
          const w = toFloat64Array(r);
          ref.dispose();
          let num = 0;
          let den = 0;
          for (let i = 0; i < w.length; i++) {
            num += (v[i] - w[i]) ** 2;
            den += w[i] ** 2;
          }
          report("effnet-b0 fp16 vs fp32", { relError: Math.sqrt(num / den) });
        }
        const times = [0, 1, 2].map(() => engine.time({ warmup: 20, reps: batch === 1 ? 500 : 50 }));
        if (precision === "fp16") {
          const prof = engine.profile();
          const byKind: Record<string, number> = {};
          for (const p of prof) {
            const k = p.step.split(/[ [\]]/)[0];
            byKind[k] = Math.round(((byKind[k] ?? 0) + p.ms) * 1000) / 1000;
          }
          const top = [...prof]
            .sort((a, b) => b.ms - a.ms)
            .slice(0, 12)
            .map((p) => `${p.ms.toFixed(4)} ${p.step}`);
          report(`effnet-b0 bs${batch} ${precision} profile`, {
            sumMs: prof.reduce((a, p) => a + p.ms, 0),
            byKind,
            top,
          });
        }
        report(`effnet-b0 bs${batch} ${precision}`, {
          ms: median(times),
          runs: times,
          buildMs: Math.round(buildMs),
          stats: engine.stats,
        });
      } finally {
        engine.dispose();
      }
    });
  }

  // Same card, same call: cuDNN engines timed at the first launch (tuneConvs) vs the heuristic's first pick (default).
  for (const batch of [1, 128]) {
    it(`batch ${batch} fp16: tuned cuDNN engines vs heuristic first`, async () => {
      const net = efficientNetB0(batch);
      const first = await buildCudaEngine(net, { precision: "fp16", tuneConvs: false });
      const tuned = await buildCudaEngine(net, {
        precision: "fp16",
        tuneConvs: true,
        log: (m) => console.log(`  ${m}`),
      });
      try {
        const x = randomTensor(rng(batch + 7), "float32", [batch, 3, 224, 224], 1);
        const a = toFloat64Array(first.run([x])[0]);
        const b = toFloat64Array(tuned.run([x])[0]);
        let num = 0;
        let den = 0;
        for (let i = 0; i < a.length; i++) {
          num += (a[i] - b[i]) ** 2;
          den += a[i] ** 2;
        }
        const relDiff = Math.sqrt(num / den);
        assert.ok(b.every(Number.isFinite), "non-finite logits (tuned)");
        assert.ok(relDiff < 1e-2, `tuned vs untuned logits differ by ${relDiff}`);
        const reps = batch === 1 ? 500 : 50;
        const tf: number[] = [];
        const tt: number[] = [];
        for (let r = 0; r < 3; r++) {
          tf.push(first.time({ warmup: 20, reps }));
          tt.push(tuned.time({ warmup: 20, reps }));
        }
        report(`effnet-b0 bs${batch} fp16 cudnn tuning A/B`, {
          heuristicFirstMs: median(tf),
          tunedMs: median(tt),
          heuristicFirstRuns: tf,
          tunedRuns: tt,
          relDiff,
        });
      } finally {
        first.dispose();
        tuned.dispose();
      }
    });
  }
});

import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { stepReads, stepWrites } from "../../../src/backends/cuda/fuse/steps.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { familyCases } from "../../../src/backends/cuda/testing/families.js";
import { efficientNetB0, mbconvNet } from "../../../src/backends/cuda/testing/nets.js";
import { checkNetwork } from "../../../src/network/verify.js";
import { hasNvcc } from "./toolchain.js";

const NVCC = hasNvcc();
const dir = mkdtempSync(join(tmpdir(), "torchc-cuda-"));

/** Compiles generated CUDA for sm_90 with the local toolkit (the same front end NVRTC uses). */
async function compiles(name: string, source: string): Promise<void> {
  const file = join(dir, `${name.replace(/\W+/g, "_")}.cu`);
  writeFileSync(file, source);
  await promisify(execFile)("nvcc", ["-arch=sm_90", "-cubin", "-o", `${file}.cubin`, file]);
}

describe("CUDA backend planning (no GPU)", () => {
  for (const c of familyCases()) {
    for (const precision of c.precisions) {
      it(`plans ${c.name} ${precision}`, async () => {
        expect(checkNetwork(c.net)).toEqual([]);
        const plan = planCudaEngine(c.net, { precision });
        expect(checkNetwork(plan.network)).toEqual([]);
        // Every tensor a step reads is an input, a constant or written by an earlier step.
        const ready = new Set([
          ...plan.network.inputs,
          ...plan.network.layers.filter((l) => l.type === "constant").map((l) => l.output),
        ]);
        const root = (t: string) => {
          let r = t;
          for (let i = plan.infos.get(r); i?.viewOf; i = plan.infos.get(r)) r = i.viewOf;
          return r;
        };
        for (const s of plan.steps) {
          for (const t of stepReads(s)) expect(ready.has(root(t)), `${t} read before written`).toBe(true);
          for (const t of stepWrites(s)) ready.add(t);
        }
        for (const o of plan.network.outputs) expect(ready.has(o)).toBe(true);
        if (NVCC) await compiles(`${c.name}_${precision}`, plan.program.source);
      }, 60_000);
    }
  }

  it("folds batch norm into convolutions and fuses the MBConv block into few kernels", () => {
    // the pooling fold is opt-in (TORCHC_FOLD_SPATIAL_MEAN=1) since session 9's H100 A/B
    process.env.TORCHC_FOLD_SPATIAL_MEAN = "1";
    const plan = planCudaEngine(mbconvNet(2), { precision: "fp16" });
    delete process.env.TORCHC_FOLD_SPATIAL_MEAN;
    expect(plan.network.layers.filter((l) => l.type === "scale")).toHaveLength(0);
    // The depthwise kernel also sums its output for squeeze-excite's pooling (spatial-mean-fold.ts).
    expect(plan.summary).toContain(
      "element[convolution+activation] → net/activation_1 +Σ net/adaptive_pooling#tile-sums",
    );
    expect(
      plan.steps.filter((s) => s.kind === "conv").every((s) => s.kind === "conv" && s.layout === "NHWC"),
    ).toBe(true);
    expect(plan.steps.length).toBeLessThanOrEqual(12);
  });

  it("plans EfficientNet-B0 in ≤ 120 steps with activation memory reused", async () => {
    const plan = planCudaEngine(efficientNetB0(1), { precision: "fp16" });
    expect(plan.steps.length).toBeLessThanOrEqual(120);
    expect(plan.memory.arenaBytes).toBeLessThan(plan.memory.naiveBytes / 3);
    if (NVCC) await compiles("effnet_fp16", plan.program.source);
  }, 120_000);
});

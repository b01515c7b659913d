/**
 * The generated small-M GEMM in place of cuBLASLt (src/backends/cuda/small-gemm-select.ts) on the GPU: timm
 * DeiT-tiny at batch 1 (M = 197) and a 2-block 64-wide ViT at batch 2, exported here at test time
 * (fixtures/export_transformer_blocks.py), compiled fp16 with TORCHC_SMALL_GEMM=force (every eligible matmul on
 * the generated kernel), =1 (timed against cuBLASLt) and unset (off). Each is checked against PyTorch eager fp32
 * (≤ 1e-2 of max|ref|, two inputs, twice); then the same with the residual add in the matmul epilogue
 * (TORCHC_GEMM_RESIDUAL=1) on cuBLASLt, forced and timed; prints the GPU times.   `bash scripts/gpu.sh test small-gemm`
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { gpuReporter, openGpu, recordTestStarts, repoRoot } from "./support.js";
import { compileAndCheck, type Run } from "./transformer-support.js";

const ROOT = repoRoot("fixtures", "export_transformer_blocks.py");
const { skip } = openGpu();
const report = gpuReporter("small-gemm");
recordTestStarts();

describe("the generated small-M GEMM in place of cuBLASLt (TORCHC_SMALL_GEMM)", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "torchc-small-gemm-"));
  const exported = skip
    ? undefined
    : spawnSync("python3", [join(ROOT, "fixtures", "export_transformer_blocks.py"), dir], {
        encoding: "utf8",
        timeout: 300_000,
      });
  const why =
    exported?.status === 0 ? false : `export failed: ${exported?.stderr?.split("\n").slice(-4).join(" ")}`;
  const runWith = async (name: string, setting: string | undefined, residual = false) => {
    if (setting === undefined) delete process.env.TORCHC_SMALL_GEMM;
    else process.env.TORCHC_SMALL_GEMM = setting;
    process.env.TORCHC_GEMM_RESIDUAL = residual ? "1" : "0";
    try {
      return await compileAndCheck(dir, name, "fp16");
    } finally {
      delete process.env.TORCHC_SMALL_GEMM;
      delete process.env.TORCHC_GEMM_RESIDUAL;
    }
  };
  const gemmSteps = (r: Run) => r.profile.steps.filter((s) => s.kind === "gemm").length;
  const us = (r: Run, kind: string) => (r.profile.byKind.find((k) => k.kind === kind)?.ms ?? 0) * 1000;
  for (const name of ["deit_tiny", "vit_small_blocks"] as const) {
    it(`${name} fp16: forced, the eligible matmuls run the generated GEMM and match PyTorch; timed and off beside`, {
      skip: why,
    }, async () => {
      // compileAndCheck asserts each output against PyTorch fp32 (≤ 1e-2 of max|ref|)
      const forced = await runWith(name, "force");
      const timed = await runWith(name, "1");
      const off = await runWith(name, undefined);
      // the residual add in the epilogue (TORCHC_GEMM_RESIDUAL=1): cuBLASLt's beta·C, and the small GEMM's
      const ltResidual = await runWith(name, undefined, true);
      const forcedResidual = await runWith(name, "force", true);
      const timedResidual = await runWith(name, "1", true);
      report("small-gemm", {
        name,
        gemmSteps: { forced: gemmSteps(forced), timed: gemmSteps(timed), off: gemmSteps(off) },
        medianMs: {
          forced: forced.medianMs,
          timed: timed.medianMs,
          off: off.medianMs,
          ltResidual: ltResidual.medianMs,
          forcedResidual: forcedResidual.medianMs,
          timedResidual: timedResidual.medianMs,
        },
        gemmUs: { forced: us(forced, "gemm"), timed: us(timed, "gemm") },
        cublasUs: { forced: us(forced, "cublaslt"), timed: us(timed, "cublaslt"), off: us(off, "cublaslt") },
        runners: timed.runners,
      });
      console.log(
        `${name} with the residual in the epilogue: median ms cuBLASLt ${ltResidual.medianMs.toFixed(4)}, small GEMM forced ${forcedResidual.medianMs.toFixed(4)}, timed ${timedResidual.medianMs.toFixed(4)}`,
      );
      console.log(
        `${name}: median ms forced ${forced.medianMs.toFixed(4)}, timed ${timed.medianMs.toFixed(4)}, off ${off.medianMs.toFixed(4)}; generated GEMM steps ${gemmSteps(forced)} / ${gemmSteps(timed)} / ${gemmSteps(off)}\n  ${timed.runners.join("\n  ")}`,
      );
      assert.ok(gemmSteps(forced) >= 4, `${name}: forced, ${gemmSteps(forced)} generated GEMM steps`);
      assert.equal(gemmSteps(off), 0, `${name}: off, no generated GEMM step`);
    });
  }
});

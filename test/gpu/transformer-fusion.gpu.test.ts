/**
 * Transformer fusion on the GPU (issue 13): timm pre-norm ViTs exported here at test time
 * (fixtures/export_transformer_blocks.py: a 2-block 64-wide ViT at batch 2, the same with RMSNorm,
 * deit_tiny_patch16_224 at batch 1 and 16, and a 2-layer nn.TransformerEncoder)
 * compiled on the CUDA backend. Checks, for two different inputs each, the output against PyTorch eager fp32 (fp32
 * ≤ 1e-4, fp16 ≤ 1e-2 of max|ref|), that the reference depends on the input, and that the residual adds before
 * LayerNorms run inside the norm kernels (the profile's rows steps with a fused prologue). Prints the per-step
 * profile of the fp16 engines and, for DeiT-tiny, the kernel count and GPU time with rows fusion on and off
 * (TORCHC_FUSE_ROWS=0).   `bash scripts/gpu.sh test transformer-fusion`
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { formatProfileReport } from "../../src/backends/cuda/profile/report.js";
import type { ProfileReport } from "../../src/core/profile.js";
import { gpuReporter, openGpu, recordTestStarts, repoRoot } from "./support.js";
import { compileAndCheck, type Run } from "./transformer-support.js";

const ROOT = repoRoot("fixtures", "export_transformer_blocks.py");

const { skip } = openGpu();
const report = gpuReporter("transformer-fusion");
recordTestStarts();

/** Depth of each exported model: its LayerNorms are 2 per block plus the final one. */
const MODELS = {
  vit_small_blocks: 2,
  vit_rms_blocks: 2,
  deit_tiny: 12,
  deit_tiny_b16: 12,
  mha_encoder: 2,
} as const;

/** Rows steps whose kernel also computes the element layers before the norm (scheduler's description). */
const fusedNorms = (p: ProfileReport) =>
  p.steps.filter((s) => s.kind === "rows" && /^normalization \[.*\]\+norm/.test(s.description));
const loneCasts = (p: ProfileReport) => p.steps.filter((s) => /^element\[cast\] /.test(s.description));

describe("timm pre-norm ViTs on the CUDA backend: fused norms, accuracy, profile", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "torchc-transformers-"));
  const exported = skip
    ? undefined
    : spawnSync("python3", [join(ROOT, "fixtures", "export_transformer_blocks.py"), dir], {
        encoding: "utf8",
        timeout: 300_000,
      });
  const ok = exported?.status === 0;
  const why = ok ? false : `export failed: ${exported?.stderr?.split("\n").slice(-4).join(" ")}`;
  if (exported?.stdout) console.log(exported.stdout.trim());

  for (const [name, depth] of Object.entries(MODELS)) {
    it(`${name}: the PyTorch reference depends on the input`, { skip: why }, () => {
      const meta = JSON.parse(readFileSync(join(dir, `${name}.json`), "utf8"));
      report("reference", { name, ...meta });
      assert.ok(
        meta.outputs_differ > 1e-3,
        `${name}: outputs for two inputs differ by only ${meta.outputs_differ}`,
      );
    });
    for (const precision of ["fp32", "fp16"] as const) {
      it(`${name} ${precision}: matches PyTorch fp32; residual adds run in the norm kernels`, {
        skip: why,
      }, async () => {
        const r = await compileAndCheck(dir, name, precision);
        const fused = fusedNorms(r.profile);
        report("structure", {
          name,
          precision,
          kernels: r.profile.kernels,
          fusedNorms: fused.length,
          loneCasts: loneCasts(r.profile).map((s) => s.description),
          medianMs: r.medianMs,
          profileTotalMs: r.profile.totalMs,
          byKind: r.profile.byKind,
          runners: r.runners,
        });
        if (precision === "fp16") console.log(`${name} ${precision}\n${formatProfileReport(r.profile)}`);
        // Every norm after the first reads a residual sum (2 per block), computed inside its kernel; the first one
        // may also take in the class-token concatenation and position embedding.
        assert.ok(fused.length >= 2 * depth, `${name}: ${fused.length} norms with fused element layers`);
        // Casts of their own only at the engine's edges (the fp32 input into the patch convolution, the output).
        assert.ok(
          loneCasts(r.profile).length <= 2,
          `${name}: lone cast steps ${loneCasts(r.profile).length}`,
        );
        // q, k and v are read in place from the qkv projection (plan/strided-views.ts): no slice kernels
        const qkvCopies = r.profile.steps.filter((s) =>
          /^element\[slice\+slice\+slice\]/.test(s.description),
        );
        assert.equal(qkvCopies.length, 0, `${name}: q/k/v copies ${qkvCopies.map((s) => s.description)}`);
        // fp16 patch embeddings are a GEMM (plan/patchify.ts): no cuDNN convolution left in these models
        if (precision === "fp16") {
          const convs = r.profile.steps.filter((s) => s.kind === "cudnn");
          assert.equal(convs.length, 0, `${name}: cuDNN steps ${convs.map((s) => s.description)}`);
        }
      });
    }
  }

  it("deit_tiny_b16 fp16: warp-per-row norms and in-place q/k/v vs off (TORCHC_ROWS_WARP=0, TORCHC_STRIDED_QKV=0)", {
    skip: why,
  }, async () => {
    const runWith = async (env: Record<string, string>) => {
      Object.assign(process.env, env);
      try {
        return await compileAndCheck(dir, "deit_tiny_b16", "fp16");
      } finally {
        for (const k of Object.keys(env)) delete process.env[k];
      }
    };
    const off = await runWith({ TORCHC_ROWS_WARP: "0", TORCHC_STRIDED_QKV: "0" });
    const noWarp = await runWith({ TORCHC_ROWS_WARP: "0" });
    const on = await runWith({});
    const us = (r: Run, kind: string) => (r.profile.byKind.find((k) => k.kind === kind)?.ms ?? 0) * 1000;
    report("session6-ab", {
      medianMs: { off: off.medianMs, stridedOnly: noWarp.medianMs, on: on.medianMs },
      kernels: { off: off.profile.kernels, on: on.profile.kernels },
      rowsUs: { off: us(off, "rows"), on: us(on, "rows") },
      elementUs: { off: us(off, "element"), on: us(on, "element") },
    });
    assert.ok(on.profile.kernels < off.profile.kernels, "in-place q/k/v removes kernels");
  });

  it("deit_tiny fp16: rows fusion on vs off (TORCHC_FUSE_ROWS=0), same device", { skip: why }, async () => {
    process.env.TORCHC_FUSE_ROWS = "0";
    let apart: Run;
    try {
      apart = await compileAndCheck(dir, "deit_tiny", "fp16");
    } finally {
      delete process.env.TORCHC_FUSE_ROWS;
    }
    const fused = await compileAndCheck(dir, "deit_tiny", "fp16");
    report("rows-fusion-ab", {
      kernelsApart: apart.profile.kernels,
      kernelsFused: fused.profile.kernels,
      medianMsApart: apart.medianMs,
      medianMsFused: fused.medianMs,
      rowsUsApart: (apart.profile.byKind.find((k) => k.kind === "rows")?.ms ?? 0) * 1000,
      rowsUsFused: (fused.profile.byKind.find((k) => k.kind === "rows")?.ms ?? 0) * 1000,
      elementUsApart: (apart.profile.byKind.find((k) => k.kind === "element")?.ms ?? 0) * 1000,
      elementUsFused: (fused.profile.byKind.find((k) => k.kind === "element")?.ms ?? 0) * 1000,
    });
    // 24 residual adds (2 per block) stop being kernels of their own
    assert.ok(apart.profile.kernels - fused.profile.kernels >= 24, "kernels saved by rows fusion");
  });
});

/**
 * Whole models through the whole compiler on the GPU: every fixture model (both export IRs and traced
 * TorchScript) on the CUDA backend in fp32 (TF32 off, ≤ 1e-4) and fp16 (≤ 1e-2) against PyTorch's stored fp32
 * output; EfficientNet-B0 from timm exported here at test time (torch.export and traced TorchScript); and a
 * model with forced fallback (torchExecutedOps) running its fallback segments through LibTorch.
 * Runs under Node's test runner on the GPU machine: `bash scripts/gpu.sh test models`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { compareTensors } from "../../src/cli/compare.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { compile } from "../../src/runtime/compile.js";
import { readNpy } from "../../src/util/npy.js";
import { openGpu, repoRoot } from "./support.js";

const ROOT = repoRoot("fixtures", "models");
const MODELS = join(ROOT, "fixtures", "models");

const { skip } = openGpu();

interface Entry {
  name: string;
  input?: string;
  output?: string;
  archives: Record<string, string>;
}
const manifest = JSON.parse(readFileSync(join(MODELS, "manifest.json"), "utf8")) as { models: Entry[] };

async function check(file: string, input: string, output: string, precision: "fp32" | "fp16", extra = {}) {
  const model = await loadModel(file);
  const compiled = await compile(model, { backend: "cuda", enabledPrecisions: [precision], ...extra });
  try {
    const [out] = await compiled.run([readNpy(input)]);
    const a = compareTensors(out, readNpy(output));
    const tol = precision === "fp16" ? 1e-2 : 1e-4;
    console.log(
      `[models] ${JSON.stringify({ file: file.split("/").pop(), precision, relative: a.relative, runners: compiled.report.runners })}`,
    );
    assert.ok(a.shapeMatches, "output shape");
    assert.ok(a.relative <= tol, `${file} ${precision}: max|err|/max|ref| ${a.relative} > ${tol}`);
    return compiled.report;
  } finally {
    await compiled.dispose();
  }
}

describe("fixture models on the CUDA backend", { skip }, () => {
  for (const m of manifest.models) {
    if (!m.input || !m.output) continue;
    for (const kind of ["export", "core", "traced"]) {
      const archive = m.archives[kind];
      if (!archive) continue;
      for (const precision of ["fp32", "fp16"] as const) {
        it(`${archive} ${precision}`, async () => {
          await check(join(MODELS, archive), join(MODELS, m.input!), join(MODELS, m.output!), precision);
        });
      }
    }
  }

  it("tiny_efficientnet with silu forced to LibTorch matches PyTorch", async () => {
    const report = await check(
      join(MODELS, "tiny_efficientnet.pt2"),
      join(MODELS, "tiny_efficientnet.input.npy"),
      join(MODELS, "tiny_efficientnet.output.npy"),
      "fp32",
      { torchExecutedOps: ["aten.silu.default"], minBlockSize: 1 },
    );
    assert.ok(report.partition.totals.fallbackSegments > 0, "fallback segments exist");
    assert.ok(report.partition.fallbackNodes.every((n) => n.op === "aten.silu.default"));
  });
});

describe("EfficientNet-B0 (timm), exported at test time", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "torchc-effnet-"));
  const exported = skip
    ? undefined
    : spawnSync("python3", [join(ROOT, "fixtures", "export_large.py"), dir, "2"], {
        encoding: "utf8",
        timeout: 240_000,
      });
  const ok = exported?.status === 0;
  const why = ok ? false : `export failed: ${exported?.stderr?.split("\n").slice(-3).join(" ")}`;
  const input = join(dir, "efficientnet_b0.input.npy");
  const output = join(dir, "efficientnet_b0.output.npy");
  for (const precision of ["fp32", "fp16"] as const) {
    it(`torch.export archive, ${precision}`, { skip: why }, async () => {
      await check(join(dir, "efficientnet_b0.pt2"), input, output, precision);
    });
  }
  it("traced TorchScript archive, fp16", { skip: why }, async () => {
    await check(join(dir, "efficientnet_b0.traced.pt"), input, output, "fp16");
  });
});

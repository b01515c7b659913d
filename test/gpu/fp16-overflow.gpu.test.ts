/**
 * Keeping fp16 honest (issue 11) on the GPU: torchvision inception_v3 with random weights (weights=None, seeded)
 * overflows in PyTorch eager fp16 (its fp32 logits reach ~1e12; the zoo's H100 run found 2,000 non-finite
 * outputs). mobilenet_v2, which the issue names, underflows instead on torch 2.11 (logits ~1e-9 flush to 0 in
 * fp16, finite but 100 % off), which a range analysis for overflow does not claim to fix. Exported here; checks that
 *   - PyTorch eager fp16 on the GPU gives inf/NaN or an error > 1e-2 against PyTorch fp32 (the premise);
 *   - torchc fp16 on the CUDA backend with fp16Overflow: "keep-fp32" gives a finite output within 1e-2 of PyTorch
 *     fp32, on two inputs (PyTorch fp32's outputs for them must differ). The analysis sample is torchc's own
 *     seeded random input (no user data), not a test input.
 * Also reported, not asserted: torchc fp16 without the option, the nodes kept in float32 and the analysis time.
 *   bash scripts/gpu.sh test fp16-overflow
 * Prints `[fp16-overflow] {"check":"inception_v3",…}`.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadModel } from "../../src/frontends/load-model.js";
import { type Tensor, toFloat64Array } from "../../src/ir/tensor.js";
import { compile } from "../../src/runtime/compile.js";
import { compareTensors } from "../../src/util/compare.js";
import { readNpy } from "../../src/util/npy.js";
import { gpuReporter, openGpu, recordTestStarts } from "./support.js";

const { skip } = openGpu();
const report = gpuReporter("fp16-overflow");
recordTestStarts();

/** Exports inception_v3 (random weights, seed 0); PyTorch fp32 (TF32 off) and eager fp16 outputs on the GPU. */
const EXPORT = `
import copy, sys, numpy as np, torch, torchvision
out = sys.argv[1]
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.manual_seed(0)
m = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True).eval()
x = torch.randn(1, 3, 299, 299, generator=torch.Generator().manual_seed(7))
x2 = torch.randn(1, 3, 299, 299, generator=torch.Generator().manual_seed(8))
with torch.no_grad():
    torch.export.save(torch.export.export(m, (x,)), f"{out}/inception_v3.pt2")
    y32 = copy.deepcopy(m).cuda()(x.cuda()).float().cpu()
    y16 = copy.deepcopy(m).half().cuda()(x.half().cuda()).float().cpu()
    y32_2 = copy.deepcopy(m).cuda()(x2.cuda()).float().cpu()
np.save(f"{out}/input.npy", x.numpy())
np.save(f"{out}/fp32.npy", y32.numpy())
np.save(f"{out}/input2.npy", x2.numpy())
np.save(f"{out}/fp32_2.npy", y32_2.numpy())
np.save(f"{out}/eager_fp16.npy", y16.numpy())
`;

const finite = (t: Tensor) => toFloat64Array(t).every(Number.isFinite);

describe("fp16 overflow: inception_v3 with random weights", { skip }, () => {
  it("PyTorch eager fp16 overflows; torchc fp16 with fp16Overflow: keep-fp32 is finite and within 1e-2", async () => {
    const dir = mkdtempSync(join(tmpdir(), "torchc-fp16-overflow-"));
    const r = spawnSync("python3", ["-c", EXPORT, dir], { encoding: "utf8", timeout: 240_000 });
    assert.equal(r.status, 0, `export failed: ${r.stderr?.split("\n").slice(-3).join(" ")}`);
    const x = readNpy(join(dir, "input.npy"));
    const want = readNpy(join(dir, "fp32.npy"));
    const eager = readNpy(join(dir, "eager_fp16.npy"));
    const eagerRel = compareTensors(eager, want).relative;
    // a second input: PyTorch's fp32 output must depend on it, or matching it proves nothing
    const x2 = readNpy(join(dir, "input2.npy"));
    const want2 = readNpy(join(dir, "fp32_2.npy"));
    const varies = compareTensors(want, want2);
    const model = await loadModel(join(dir, "inception_v3.pt2"));

    const plain = await compile(model, { backend: "cuda", enabledPrecisions: ["fp16"] });
    const [plainOut] = await plain.run([x]);
    await plain.dispose();

    const t0 = performance.now();
    const kept = await compile(model, {
      backend: "cuda",
      enabledPrecisions: ["fp16"],
      fp16Overflow: "keep-fp32",
    });
    const compileMs = performance.now() - t0;
    try {
      const [got] = await kept.run([x]);
      const rel = compareTensors(got, want).relative;
      const [got2] = await kept.run([x2]);
      const rel2 = compareTensors(got2, want2).relative;
      const islands = kept.report.fp32Islands ?? [];
      report("inception_v3", {
        eagerFp16: { finite: finite(eager), relative: eagerRel },
        torchcFp16: { finite: finite(plainOut), relative: compareTensors(plainOut, want).relative },
        torchcKeepFp32: { finite: finite(got), relative: rel },
        torchcKeepFp32Input2: { finite: finite(got2), relative: rel2 },
        referenceVaries: varies.maxAbsError / varies.maxAbsReference,
        keptNodes: islands.length,
        kept: islands
          .slice(0, 12)
          .map((k) => `${k.modulePath ?? k.node} (${k.op}) ${k.maxAbs.toExponential(2)}`),
        analysis: kept.report.text.split("\n").find((l) => l.startsWith("fp16 overflow:")),
        compileMs: Math.round(compileMs),
      });
      assert.ok(islands.length > 0, "the analysis kept some nodes in float32");
      assert.ok(finite(got), "torchc fp16 with keep-fp32 is finite");
      assert.ok(rel <= 1e-2, `torchc fp16 keep-fp32 vs PyTorch fp32: relative ${rel}`);
      assert.ok(
        varies.maxAbsError > 1e-3 * varies.maxAbsReference,
        "PyTorch fp32's output barely depends on the input",
      );
      assert.ok(finite(got2), "torchc fp16 with keep-fp32 is finite on the second input");
      assert.ok(rel2 <= 1e-2, `torchc fp16 keep-fp32 vs PyTorch fp32, second input: relative ${rel2}`);
      assert.ok(
        !finite(eager) || eagerRel > 1e-2,
        `premise: PyTorch eager fp16 should overflow on this model (finite, relative ${eagerRel})`,
      );
    } finally {
      await kept.dispose();
    }
  });
});

/**
 * Control flow on the CUDA backend (issue 11): the scripted `gated` fixture (a data-dependent `if`, prim.If) for an
 * input taking each branch, and the scripted `Looped` model (a `for` over a tensor-valued count, then a `while`:
 * two prim.Loop), scripted and saved here by fixtures/export_control.py with PyTorch's outputs; fp32, TF32 off,
 * ≤ 1e-4 relative to PyTorch. Each branch and loop body is compiled once into modules of its own (engines, LibTorch
 * for the rest); the predicate is read back from the device at run time. Prints `[control-flow] {…}` lines with
 * the segments and what runs each block.
 *   bash scripts/gpu.sh test control-flow
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadTorchScript } from "../../src/frontends/torchscript/index.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { type CompiledModule, compile } from "../../src/runtime/compile.js";
import { ControlRunner } from "../../src/runtime/control-runner.js";
import { compareTensors } from "../../src/util/compare.js";
import { readNpy } from "../../src/util/npy.js";
import { gpuReporter, openGpu, recordTestStarts, repoRoot } from "./support.js";

const ROOT = repoRoot("fixtures", "models");
const MODELS = join(ROOT, "fixtures", "models");

const { skip } = openGpu();
const report = gpuReporter("control-flow");
recordTestStarts();

/** The module's control-flow runners (its runner list is private). */
function controlRunners(m: CompiledModule): ControlRunner[] {
  return ((m as unknown as { runners: unknown[] }).runners ?? []).filter(
    (r): r is ControlRunner => r instanceof ControlRunner,
  );
}

function describeModule(m: CompiledModule) {
  return {
    segments: m.partition.segments.map((s) => s.kind),
    runners: m.report.runners,
    blocks: controlRunners(m).map((r) =>
      r.modules.map((b) => ({
        segments: b.partition.segments.map((s) => s.kind),
        runners: b.report.runners,
      })),
    ),
  };
}

/** Every block's straight-line part runs in at least one CUDA engine (not all of it in LibTorch). */
function assertBlocksHaveEngines(m: CompiledModule): void {
  for (const r of controlRunners(m))
    for (const b of r.modules)
      assert.ok(
        b.partition.segments.some((s) => s.kind === "engine"),
        `a block of ${r.node.name} has no engine segment: ${b.report.runners.join("; ")}`,
      );
}

async function expectMatch(m: CompiledModule, inputs: Tensor[], want: Tensor, what: string): Promise<number> {
  const [out] = await m.run(inputs);
  const a = compareTensors(out, want);
  assert.ok(a.shapeMatches, `${what}: output shape`);
  assert.ok(a.relative <= 1e-4, `${what}: max|err|/max|ref| ${a.relative} > 1e-4`);
  return a.relative;
}

describe("control flow on the CUDA backend", { skip }, () => {
  it("the scripted gated model (prim.If) matches PyTorch for inputs taking each branch", async () => {
    const model = await loadTorchScript(join(MODELS, "gated.scripted.pt"), {
      inputTypes: [{ dtype: "float32", shape: [3, 8] }],
    });
    // two contexts: both branches at once, each run reading back its own predicate
    const m = await compile(model, { backend: "cuda", contexts: 2 });
    try {
      report("gated plan", describeModule(m));
      assert.match(m.report.text, /control flow: 1 if, branches compiled separately/);
      assert.deepEqual(
        m.partition.segments.map((s) => s.kind),
        ["fallback", "control", "engine"],
      );
      assertBlocksHaveEngines(m);
      const cases = ["pos", "neg"].map((tag) => ({
        tag,
        x: readNpy(join(MODELS, `gated.${tag}.input.npy`)),
        y: readNpy(join(MODELS, `gated.${tag}.output.npy`)),
      }));
      const errs: Record<string, number> = {};
      // each branch alone, then alternating, then both in flight at once
      for (const c of [...cases, ...cases]) errs[c.tag] = await expectMatch(m, [c.x], c.y, `gated ${c.tag}`);
      await Promise.all(cases.map((c) => expectMatch(m, [c.x], c.y, `gated ${c.tag} (concurrent)`)));
      report("gated", { relative: errs });
    } finally {
      await m.dispose();
    }
  });

  it("the scripted Looped model (for over a tensor count, then while: prim.Loop) matches PyTorch", async () => {
    const dir = mkdtempSync(join(tmpdir(), "torchc-control-"));
    const r = spawnSync("python3", [join(ROOT, "fixtures", "export_control.py"), dir], {
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `export_control.py failed: ${r.stderr?.split("\n").slice(-5).join(" ")}`);
    const entry = JSON.parse(readFileSync(join(dir, "looped.json"), "utf8")) as {
      cases: { inputs: string[]; output: string; trips: number; halvings: number }[];
    };
    assert.ok(entry.cases.some((c) => c.halvings > 0) && entry.cases.some((c) => c.trips === 0));
    const model = await loadTorchScript(join(dir, "looped.scripted.pt"), {
      inputTypes: [
        { dtype: "float32", shape: [3, 8] },
        { dtype: "int64", shape: [] },
      ],
    });
    const m = await compile(model, { backend: "cuda" });
    try {
      report("looped plan", describeModule(m));
      assert.match(m.report.text, /control flow: 2 loops, loop bodies compiled separately/);
      assertBlocksHaveEngines(m);
      for (const c of entry.cases) {
        const inputs = c.inputs.map((f) => readNpy(join(dir, f)));
        const what = `looped, ${c.trips} trips, ${c.halvings} halvings`;
        report("looped", {
          case: what,
          relative: await expectMatch(m, inputs, readNpy(join(dir, c.output)), what),
        });
      }
    } finally {
      await m.dispose();
    }
  });
});

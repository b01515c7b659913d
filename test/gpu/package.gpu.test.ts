/**
 * Serialized engines (issue 12): EfficientNet-B0 (timm, exported here) compiled fp16 on the CUDA backend, saved as a
 * .torchc package with its engines, then loaded in this process and in a fresh one (with an empty kernel cache, so
 * any NVRTC compile would show in the time). Outputs must be bit-identical to the freshly compiled module's; load +
 * first output must take ≤ 1.0 s (TORCHC_PACKAGE_MAX_MS overrides). A package whose recorded cuDNN version was edited
 * is refused with package.mismatch, and rebuilt (with a warning) when loaded with { rebuild: "if-needed" }.
 * Prints `[package] {"check":"timings",…}`.   bash scripts/gpu.sh test package
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { strFromU8, strToU8, unzipSync, zipSync } from "fflate";
import { compareTensors } from "../../src/cli/compare.js";
import { TorchcError } from "../../src/errors.js";
import { loadModel } from "../../src/frontends/load-model.js";
import type { Tensor } from "../../src/ir/tensor.js";
import { type CompiledModule, compile, loadCompiled } from "../../src/runtime/compile.js";
import { readNpy } from "../../src/util/npy.js";
import { gpuReporter, openGpu, recordTestStarts, repoRoot } from "./support.js";

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = repoRoot("fixtures", "models");
const MAX_MS = Number(process.env.TORCHC_PACKAGE_MAX_MS ?? 1000);

const { skip } = openGpu();
const report = gpuReporter("package");
recordTestStarts();

function bytesOf(t: Tensor): Uint8Array {
  const d = t.data as ArrayBufferView;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Whether two tensors are the same bits (and where they first differ). */
function assertBitIdentical(a: Tensor, b: Tensor, what: string): void {
  assert.equal(a.dtype, b.dtype, `${what}: dtype`);
  assert.deepEqual([...a.shape], [...b.shape], `${what}: shape`);
  const [x, y] = [bytesOf(a), bytesOf(b)];
  const i = x.findIndex((v, k) => v !== y[k]);
  assert.equal(i, -1, `${what}: first differing byte at ${i}`);
}

/** "duration ms  phase" rows from [phase, start ms] stamps (a phase lasts until the next one starts). */
function phaseTable(stamps: readonly [string, number][]): string[] {
  return stamps.slice(0, -1).map(([phase, at], i) => {
    const ms = stamps[i + 1][1] - at;
    return `${ms.toFixed(1).padStart(8)} ms  @${at.toFixed(0).padStart(5)}  ${phase}`;
  });
}

/** A copy of the package with its manifest edited (the entries' hashes do not cover the manifest). */
function editManifest(src: string, dst: string, edit: (m: Record<string, unknown>) => void): string {
  const files = unzipSync(readFileSync(src));
  const m = JSON.parse(strFromU8(files["manifest.json"]));
  edit(m);
  files["manifest.json"] = strToU8(JSON.stringify(m));
  writeFileSync(dst, zipSync(files, { level: 0 }));
  return dst;
}

describe("EfficientNet-B0 fp16 as a serialized .torchc package", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "torchc-package-"));
  const pkg = join(dir, "effnet.torchc");
  const input = join(dir, "efficientnet_b0.input.npy");
  let fresh: CompiledModule | undefined;
  let freshOut: Tensor;
  let compileMs = 0;
  let why: string | false = false;

  before(async () => {
    const exported = spawnSync("python3", [join(ROOT, "fixtures", "export_large.py"), dir, "1"], {
      encoding: "utf8",
      timeout: 240_000,
    });
    if (exported.status !== 0) {
      why = `export failed: ${exported.stderr?.split("\n").slice(-3).join(" ")}`;
      return;
    }
    const model = await loadModel(join(dir, "efficientnet_b0.pt2"));
    const t0 = performance.now();
    fresh = await compile(model, { backend: "cuda", enabledPrecisions: ["fp16"] });
    compileMs = performance.now() - t0;
    [freshOut] = await fresh.run([readNpy(input)]);
  });

  after(async () => {
    await fresh?.dispose();
  });

  it("saves, loads here and in a fresh process with bit-identical outputs, within the time target", async () => {
    assert.equal(why, false, String(why));
    const x = readNpy(input);
    const s0 = performance.now();
    fresh!.save(pkg);
    const saveMs = performance.now() - s0;

    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    const t0 = performance.now();
    const loaded = await loadCompiled(pkg);
    const t1 = performance.now();
    const [out] = await loaded.run([x]);
    const t2 = performance.now();
    await new Promise((r) => setImmediate(r));
    process.off("warning", onWarning);
    // Every cuDNN plan, cuBLASLt algorithm and kernel program came from the package (none chosen or compiled again).
    assert.deepEqual(
      warnings.filter((w) => /saved engine not fully reused/.test(w)),
      [],
      "the package's engines were reused whole",
    );
    try {
      assertBitIdentical(out, freshOut, "loaded in this process");
      const [again] = await loaded.run([x]);
      assertBitIdentical(again, freshOut, "second run of the loaded module");
    } finally {
      await loaded.dispose();
    }

    const childOut = join(dir, "child.output.npy");
    const runChild = (env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [join(here, "package-child.js"), pkg, input, childOut], {
        encoding: "utf8",
        timeout: 120_000,
        env: { ...process.env, TORCHC_CACHE_DIR: mkdtempSync(join(tmpdir(), "torchc-empty-cache-")), ...env },
      });
    // For the record (no assertion): a fresh process without the library prewarm (cuda/device/prewarm.ts). This
    // process has loaded every library, so both children read them from the page cache.
    const cold = runChild({ TORCHC_PREWARM: "0" });
    const coldLine = cold.stdout.split("\n").find((l) => l.startsWith("[package-child] "));
    const coldPhases = cold.stdout.split("\n").find((l) => l.startsWith("[package-child-phases] "));
    if (coldLine && coldPhases) {
      const table = phaseTable(JSON.parse(coldPhases.slice("[package-child-phases] ".length)));
      console.log(
        `[package-child-phases, TORCHC_PREWARM=0] ${coldLine}\n${table.map((r) => `  ${r}`).join("\n")}`,
      );
      report("child without prewarm", {
        ...JSON.parse(coldLine.slice("[package-child] ".length)),
        phases: table,
      });
    }
    const child = runChild();
    assert.equal(child.status, 0, `child failed: ${child.stderr.split("\n").slice(-5).join(" | ")}`);
    const line = child.stdout.split("\n").find((l) => l.startsWith("[package-child] "));
    assert.ok(line, `no timing line from the child: ${child.stdout}`);
    // Where a fresh process spends its load: one row per phase with its duration, and the engines' own split.
    const phases = child.stdout.split("\n").find((l) => l.startsWith("[package-child-phases] "));
    if (phases) {
      const table = phaseTable(JSON.parse(phases.slice("[package-child-phases] ".length)));
      console.log(`[package-child-phases]\n${table.map((r) => `  ${r}`).join("\n")}`);
      report("child phases", { phases: table });
    }
    const engines = child.stdout.split("\n").find((l) => l.startsWith("[package-child-engines] "));
    if (engines) console.log(engines);
    const c = JSON.parse(line.slice("[package-child] ".length)) as {
      loadMs: number;
      firstRunMs: number;
      totalMs: number;
    };
    assertBitIdentical(readNpy(childOut), freshOut, "loaded in a fresh process");

    const timings = {
      compileMs: Math.round(compileMs),
      saveMs: Math.round(saveMs),
      packageBytes: statSync(pkg).size,
      loadMs: Math.round(t1 - t0),
      firstRunMs: Math.round(t2 - t1),
      loadAndFirstRunMs: Math.round(t2 - t0),
      childLoadMs: Math.round(c.loadMs),
      childFirstRunMs: Math.round(c.firstRunMs),
      childLoadAndFirstRunMs: Math.round(c.totalMs),
      targetMs: MAX_MS,
    };
    report("timings", timings);
    assert.ok(
      timings.loadAndFirstRunMs <= MAX_MS,
      `in-process load + first run ${timings.loadAndFirstRunMs} ms`,
    );
    assert.ok(
      timings.childLoadAndFirstRunMs <= MAX_MS,
      `fresh-process load + first run ${timings.childLoadAndFirstRunMs} ms`,
    );
  });

  it("refuses a package built for another cuDNN, and rebuilds it when asked", async () => {
    assert.equal(why, false, String(why));
    if (!existsSync(pkg)) fresh!.save(pkg);
    const edited = editManifest(pkg, join(dir, "other-cudnn.torchc"), (m) => {
      const b = m.builtFor as { cudnn: number };
      b.cudnn += 1;
    });
    await assert.rejects(loadCompiled(edited), (e: unknown) => {
      assert.ok(e instanceof TorchcError, String(e));
      assert.equal(e.code, "package.mismatch");
      assert.match(e.message, /other-cudnn\.torchc: its engines were built for cudnn \d+ \(here \d+\)/);
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    const t0 = performance.now();
    const rebuilt = await loadCompiled(edited, { rebuild: "if-needed" });
    const rebuildMs = performance.now() - t0;
    try {
      await new Promise((r) => setImmediate(r));
      assert.ok(
        warnings.some((w) => /rebuilding them/.test(w)),
        `a rebuild warning (got ${JSON.stringify(warnings)})`,
      );
      const [out] = await rebuilt.run([readNpy(input)]);
      // A rebuild chooses its plans again: the same model, not necessarily the same bits.
      const a = compareTensors(out, freshOut);
      assert.ok(a.shapeMatches && a.relative <= 1e-2, `rebuilt output: relative error ${a.relative}`);
      const identical = bytesOf(out).every((v, i) => v === bytesOf(freshOut)[i]);
      report("rebuild", { rebuildMs: Math.round(rebuildMs), relative: a.relative, identical });
    } finally {
      process.off("warning", onWarning);
      await rebuilt.dispose();
    }
  });
});

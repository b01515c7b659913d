/**
 * The runtime on the GPU: every run returns the answer for its own input. EfficientNet-B0 (timm, fp16, one
 * engine) and tiny_efficientnet with silu forced to LibTorch (engine ↔ fallback hand-offs) on 16 distinct
 * inputs, each checked against PyTorch's output for that input: one at a time, twice in a row, in reverse
 * order, 64 at once through Promise.all (more calls than contexts, so both the queue and parallel contexts are
 * exercised), with device-resident and pinned I/O; and the event loop stays responsive during a batch-128 run.
 * Inputs come from fixtures/export_runtime.py (run here when TORCHC_RUNTIME_DIR is not set).
 * `bash scripts/gpu.sh test runtime`
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PerformanceObserver } from "node:perf_hooks";
import { after, before, describe, it } from "node:test";
import { compareTensors } from "../../src/cli/compare.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { type Tensor, typedDataView } from "../../src/ir/tensor.js";
import type { OpName } from "../../src/ops/index.js";
import { type CompiledModule, compile } from "../../src/runtime/compile.js";
import type { DeviceTensor } from "../../src/runtime/device-tensor.js";
import { formatMemory } from "../../src/runtime/execution.js";
import type { CompileOptions } from "../../src/runtime/options.js";
import { readNpy } from "../../src/util/npy.js";
import { gpuReporter, openGpu, recordTestStarts, repoRoot } from "./support.js";

const ROOT = repoRoot("fixtures", "models");
const { skip } = openGpu();
const report = gpuReporter("runtime");
recordTestStarts();

function runtimeDir(): string {
  const given = process.env.TORCHC_RUNTIME_DIR;
  if (given && existsSync(join(given, "efficientnet_b0_b1.pt2"))) return given;
  const dir = given ?? "/tmp/torchc-runtime";
  const r = spawnSync(
    process.env.TORCHC_PYTHON ?? "python3",
    [join(ROOT, "fixtures", "export_runtime.py"), dir],
    {
      stdio: "inherit",
    },
  );
  if (r.status !== 0) throw new Error(`fixtures/export_runtime.py failed (exit ${r.status})`);
  return dir;
}

interface Case {
  input: Tensor;
  output: Tensor;
  /** PyTorch's own fp16 error on this input (max|err|/max|ref| against fp32), when exported. */
  torchFp16Error?: number;
}

function cases(dir: string, n: number): Case[] {
  return Array.from({ length: n }, (_, k) => {
    const output = readNpy(join(dir, `output_${k}.npy`));
    const f16 = join(dir, `output16_${k}.npy`);
    return {
      input: readNpy(join(dir, `input_${k}.npy`)),
      output,
      torchFp16Error: existsSync(f16) ? compareTensors(readNpy(f16), output).relative : undefined,
    };
  });
}

/**
 * fp16 is judged against PyTorch's own fp16 on the same input (random weights can put fp16 itself past 1e-2):
 * within 1e-2 or 1.5× PyTorch's fp16 error, whichever is larger. A stale or half-copied input is off by far
 * more (assertInputMatters checks that the outputs of different inputs differ by over 5%).
 */
function fp16Tolerance(c: Case): number {
  return Math.max(1e-2, 1.5 * (c.torchFp16Error ?? 0));
}

/** The reference must depend on the input, or a stale input would pass. */
function assertInputMatters(cs: readonly Case[]): void {
  for (let k = 1; k < cs.length; k++) {
    const d = compareTensors(cs[k].output, cs[0].output).relative;
    assert.ok(
      d > 0.05,
      `PyTorch's outputs for inputs 0 and ${k} differ by only ${d}: the check could not catch a stale input`,
    );
  }
}

function check(got: Tensor, c: Case, tol: number | "fp16", what: string): number {
  if (tol === "fp16") tol = fp16Tolerance(c);
  const a = compareTensors(got, c.output);
  assert.ok(a.shapeMatches, `${what}: shape`);
  assert.ok(a.relative <= tol, `${what}: max|err|/max|ref| ${a.relative} > ${tol}`);
  return a.relative;
}

/** The three patterns the issue names, plus device-resident and pinned I/O; returns the worst error seen. */
async function exercise(
  name: string,
  compiled: CompiledModule,
  cs: readonly Case[],
  tol: number | "fp16",
): Promise<void> {
  let worst = 0;
  const note = (e: number) => {
    worst = Math.max(worst, e);
  };
  for (const [k, c] of cs.entries())
    note(check((await compiled.run([c.input]))[0], c, tol, `${name} one at a time, input ${k}`));
  for (const [k, c] of cs.entries()) {
    note(check((await compiled.run([c.input]))[0], c, tol, `${name} twice in a row (1st), input ${k}`));
    note(check((await compiled.run([c.input]))[0], c, tol, `${name} twice in a row (2nd), input ${k}`));
  }
  for (let k = cs.length - 1; k >= 0; k--)
    note(check((await compiled.run([cs[k].input]))[0], cs[k], tol, `${name} reverse order, input ${k}`));
  const all = await Promise.all(
    Array.from({ length: 64 }, (_, i) => compiled.run([cs[(i * 7) % cs.length].input])),
  );
  for (const [i, [out]] of all.entries())
    note(check(out, cs[(i * 7) % cs.length], tol, `${name} Promise.all of 64, call ${i}`));
  // Device-resident inputs and outputs, overlapping too.
  const devIn = await Promise.all(cs.map((c) => compiled.toDevice(c.input)));
  const devOut = await Promise.all(devIn.map((d) => compiled.run([d], { outputs: "device" })));
  for (const [k, [o]] of devOut.entries()) {
    note(
      check(
        await compiled.toHost(o as DeviceTensor),
        cs[k],
        tol,
        `${name} device in, device out, input ${k}`,
      ),
    );
    (o as DeviceTensor).dispose();
  }
  // Caller-owned outputs (allocateOutputs) and pinned host inputs (allocateHostInputs).
  const [outBuf] = compiled.allocateOutputs();
  const [pinnedIn] = compiled.allocateHostInputs();
  const [pinnedOut] = compiled.allocateHostOutputs();
  for (const [k, c] of cs.entries()) {
    (pinnedIn.data as Float32Array).set(c.input.data as Float32Array);
    await compiled.run([pinnedIn], { outputs: [outBuf] });
    note(
      check(await compiled.toHost(outBuf), c, tol, `${name} pinned in, allocateOutputs() out, input ${k}`),
    );
    await compiled.run([devIn[k]], { outputs: [pinnedOut] });
    note(check(pinnedOut, c, tol, `${name} device in, pinned out, input ${k}`));
  }
  for (const d of devIn) d.dispose();
  outBuf.dispose();
  // Inputs in host memory page-locked in place (the request slots of `torchc serve --ingest-threads`): run straight
  // from a view there, and gathered into a reused DeviceTensor by DMA; two slots alternate, so a stale slot shows.
  const bytes = cs[0].input.data.byteLength;
  const slot = Math.ceil(bytes / 4096) * 4096;
  const sab = new SharedArrayBuffer(2 * slot + 4096);
  const reg = compiled.registerHost(sab);
  let gathered: DeviceTensor | undefined;
  try {
    for (const [k, c] of cs.entries()) {
      const at = reg.offset + (k % 2) * slot;
      new Uint8Array(sab, at, bytes).set(new Uint8Array(c.input.data.buffer, c.input.data.byteOffset, bytes));
      const view = { ...c.input, data: typedDataView(c.input.dtype, sab, at, c.input.data.length) } as Tensor;
      note(check((await compiled.run([view]))[0], c, tol, `${name} input in registered memory, input ${k}`));
      assert.ok(compiled.gatherable([view.data]), "a view in registered memory is gatherable");
      gathered = await compiled.gatherToDevice(c.input.dtype, c.input.shape, [view.data], gathered);
      const [out] = await compiled.run([gathered]);
      note(check(out as Tensor, c, tol, `${name} gathered from registered memory, input ${k}`));
    }
  } finally {
    gathered?.dispose();
    reg.release();
  }
  assert.ok(
    !compiled.gatherable([new Uint8Array(sab, reg.offset, 16)]),
    "released: not page-locked any more",
  );
  // Refused before any pointer reaches the driver: a disposed tensor, a forged one; the module still works after.
  await assert.rejects(compiled.run([devIn[0]]), /disposed/);
  const forged = { ...devIn[0], kind: "device" as const, alive: true, ptr: 4096n, dispose() {} };
  await assert.rejects(compiled.run([forged]), /not a DeviceTensor made by torchc/);
  note(check((await compiled.run([cs[0].input]))[0], cs[0], tol, `${name} after refused inputs`));
  report(name, { worst, tolerance: tol, memory: compiled.memory(), queue: compiled.queue });
  console.log(`  ${name}: ${formatMemory(compiled.memory())}`);
}

describe("runtime: every run returns the answer for its own input", { skip }, () => {
  let dir = "";
  before(() => {
    dir = runtimeDir();
  });

  it("EfficientNet-B0 fp16, 2 contexts: 16 inputs, twice, reversed, 64 concurrent, device and pinned I/O", async () => {
    const cs = cases(join(dir, "efficientnet_b0_b1"), 16);
    assertInputMatters(cs);
    const model = await loadModel(join(dir, "efficientnet_b0_b1.pt2"));
    const compiled = await compile(model, { backend: "cuda", enabledPrecisions: ["fp16"], contexts: 2 });
    try {
      assert.equal(compiled.report.partition.totals.fallbackSegments, 0);
      await exercise("efficientnet_b0 fp16 contexts=2", compiled, cs, "fp16");
    } finally {
      await compiled.dispose();
    }
  });

  // Fixtures with ops forced to LibTorch so engine and fallback segments alternate; the first whose PyTorch
  // output depends on its input is used (tiny_efficientnet's barely does).
  const MIXED = [
    { name: "tiny_resnet", ops: ["aten.add.Tensor"] },
    { name: "conv_zoo", ops: ["aten.cat.default", "aten.hardtanh.default"] },
    { name: "tiny_efficientnet", ops: ["aten.silu.default"] },
  ];
  const pickMixed = () => {
    for (const m of MIXED) {
      const cs = cases(join(dir, m.name), 16);
      try {
        assertInputMatters(cs);
        return { ...m, cs };
      } catch (e) {
        console.log(`  ${m.name}: ${(e as Error).message}; trying the next fixture`);
      }
    }
    throw new Error("no mixed fixture has an output that depends on its input");
  };

  for (const contexts of [1, 3]) {
    it(`a fixture with ops forced to LibTorch (engine ↔ fallback), fp32, ${contexts} context(s)`, async () => {
      const { name, ops, cs } = pickMixed();
      const model = await loadModel(join(ROOT, "fixtures", "models", `${name}.pt2`));
      const opts: CompileOptions = {
        backend: "cuda",
        torchExecutedOps: ops as OpName[],
        minBlockSize: 1,
        contexts,
      };
      const compiled = await compile(model, opts);
      try {
        const t = compiled.report.partition.totals;
        assert.ok(t.fallbackSegments > 0 && t.engineSegments > 1, "engine and fallback segments alternate");
        await exercise(
          `${name} mixed (${ops.join(", ")} in LibTorch) contexts=${contexts}`,
          compiled,
          cs,
          1e-4,
        );
      } finally {
        await compiled.dispose();
      }
    });
  }

  it("a 1 ms timer keeps firing during batch-128 runs (no gap over 3 ms), and the output is right", async () => {
    const [c] = cases(join(dir, "efficientnet_b0_b128"), 1);
    const model = await loadModel(join(dir, "efficientnet_b0_b128.pt2"));
    const compiled = await compile(model, { backend: "cuda", enabledPrecisions: ["fp16"] });
    try {
      await compiled.run([c.input]);
      const gaps: number[] = [];
      // Garbage-collection pauses in the window, to tell a GC pause from a blocking call when a gap is long.
      const gcs: { start: number; ms: number; kind: number }[] = [];
      const gcObserver = new PerformanceObserver((list) => {
        for (const e of list.getEntries())
          gcs.push({
            start: e.startTime,
            ms: e.duration,
            kind: (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? -1,
          });
      });
      gcObserver.observe({ entryTypes: ["gc"] });
      // Each tick's end on the monotonic clock (µs) too: V8's CPU profiles (--cpu-prof) stamp samples on the
      // same clock, so scripts/cpuprofile-gaps.ts can show what the JS thread did inside the longest gaps.
      const endsUs: number[] = [];
      let last = performance.now();
      const timer = setInterval(() => {
        const now = performance.now();
        gaps.push(now - last);
        endsUs.push(Number(process.hrtime.bigint() / 1000n));
        last = now;
      }, 1);
      const t0 = performance.now();
      let out: Tensor | undefined;
      const phases: [string, number][] = [];
      const onPhase = (p: string, at: number) => phases.push([p, at]);
      try {
        for (let i = 0; i < 10; i++) [out] = (await compiled.run([c.input], { onPhase })) as Tensor[];
      } finally {
        clearInterval(timer);
        gcObserver.disconnect();
      }
      const wall = (performance.now() - t0) / 10;
      const maxGap = Math.max(...gaps);
      const sorted = [...gaps].sort((a, b) => a - b);
      // Which phase the longest gap ended in (diagnostics for a failure).
      let at = t0;
      let acc = 0;
      for (const g of gaps) {
        acc += g;
        if (g === maxGap) at = t0 + acc;
      }
      const phaseOfMax = phases.find(([, t]) => t >= at)?.[0] ?? "after the last run";
      const longest = gaps
        .map((ms, i) => ({ ms: Math.round(ms * 1000) / 1000, endUs: endsUs[i] }))
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 3);
      report("event loop during batch-128 runs", {
        maxGapMs: maxGap,
        p99GapMs: sorted[Math.floor(0.99 * (sorted.length - 1))],
        ticks: gaps.length,
        msPerRun: wall,
        phaseOfMax,
        gcPauses: gcs.length,
        longestGcMs: Math.max(0, ...gcs.map((g) => g.ms)),
        gcInLongestGap: gcs.filter((g) => g.start <= at && g.start >= at - maxGap).map((g) => g.ms),
        // PerformanceGC kinds: 1 minor (scavenge), 2 major (mark-compact), 4 incremental, 8 weak callbacks
        gcKinds: gcs.map((g) => g.kind),
        longest,
        copyQueueGroup: process.env.TORCHC_COPY_QUEUE_GROUP ?? "default",
        threads: process.env.UV_THREADPOOL_SIZE,
      });
      check(out!, c, "fp16", "batch 128 output");
      assert.ok(
        gaps.length >= 10,
        `the timer fired only ${gaps.length} times over ${(wall * 10).toFixed(1)} ms`,
      );
      assert.ok(maxGap <= 3, `the event loop was blocked for ${maxGap.toFixed(2)} ms (limit 3 ms)`);
    } finally {
      await compiled.dispose();
    }
  });
});

after(() => {});

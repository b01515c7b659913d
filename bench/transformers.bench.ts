/**
 * The transformer benchmark's torchc side (issue 13): every model bench/transformers.py exported, compiled fp16
 * on the CUDA backend twice (cold: an empty TORCHC_CACHE_DIR, i.e. no kernel or plan cache; warm: again with the
 * same dir), checked on each saved input against PyTorch eager fp32 (fp16 bar: 1e-2 of max |reference|), and
 * timed as `torchc bench` times it (compiled.benchmark: the captured forward pass replayed on device-resident
 * inputs, CUDA events, median of ≥ 50). transformers.json is rewritten after every step, so a native crash
 * leaves the finished rows and names the row and stage it died in. bench/transformers_report.py merges it with
 * PyTorch's record.
 *
 *   bash scripts/gpu.sh bench transformers          (on the GPU machine, after python3 bench/transformers.py)
 *   TRANSFORMERS_DRY=1 npx tsx bench/transformers.bench.ts    (CPU: fixture models on the reference backend)
 *
 * Environment: TRANSFORMERS_DIR (bench/transformers.py's --out, default /tmp/torchc-transformers), TRANSFORMERS_ONLY
 * (keys or model names, a,b), TRANSFORMERS_REPS (timed passes, default 100 at batch 1 and 50 above; at least 50),
 * TRANSFORMERS_PROFILE=0 (no per-step profile after the timing), TRANSFORMERS_DRY=1 (fixture models, reference
 * backend, nothing timed; TRANSFORMERS_FIXTURES), TORCHC_BENCH_OUT (where transformers.json goes).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../src/frontends/load-model.js";
import type { Tensor } from "../src/ir/tensor.js";
import { type CompiledModule, compile } from "../src/runtime/compile.js";
import { compareTensors } from "../src/util/compare.js";
import { readNpy } from "../src/util/npy.js";
import { carried, fixtureModels, writeAtomic } from "./harness-files.js";
import {
  type PeerRun,
  readPeers,
  repsFor,
  runPath,
  selectRuns,
  type TorchcRow,
  withinTolerance,
  writeDryPeers,
} from "./transformers-plan.js";

const env = process.env;
const dry = env.TRANSFORMERS_DRY === "1";
const backend = dry ? "reference" : "cuda";
const outDir = env.TORCHC_BENCH_OUT ?? (dry ? tmpdir() : ".");
const outFile = join(outDir, "transformers.json");
const reps = env.TRANSFORMERS_REPS ? Number(env.TRANSFORMERS_REPS) : undefined;

function fixturesDir(): string {
  const { found, candidates } = fixtureModels(env.TRANSFORMERS_FIXTURES, "tiny_vit.pt2");
  if (!found) throw new Error(`no fixture models in ${candidates.join(", ")} (set TRANSFORMERS_FIXTURES)`);
  return found;
}

function runDir(): string {
  if (!dry) return env.TRANSFORMERS_DIR ?? "/tmp/torchc-transformers";
  return writeDryPeers(fixturesDir(), env.TRANSFORMERS_DIR ?? mkdtempSync(join(tmpdir(), "torchc-tr-dry-")));
}

function message(e: unknown): string {
  const s = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return s.split("\n").slice(0, 6).join(" | ").slice(0, 1500);
}

function nonFiniteCount(t: Tensor): number {
  if (!(t.data instanceof Float32Array || t.data instanceof Float64Array)) return 0;
  let n = 0;
  for (const v of t.data) if (!Number.isFinite(v)) n++;
  return n;
}

/** compile() with TORCHC_CACHE_DIR set to `cacheDir` for this call only; returns the module and seconds. */
async function timedCompile(
  model: Awaited<ReturnType<typeof loadModel>>,
  cacheDir: string,
): Promise<{ compiled: CompiledModule; seconds: number }> {
  const old = env.TORCHC_CACHE_DIR;
  env.TORCHC_CACHE_DIR = cacheDir;
  try {
    const t0 = performance.now();
    const compiled = await compile(model, { backend, enabledPrecisions: ["fp16"] });
    return { compiled, seconds: (performance.now() - t0) / 1000 };
  } finally {
    if (old === undefined) delete env.TORCHC_CACHE_DIR;
    else env.TORCHC_CACHE_DIR = old;
  }
}

/**
 * Loads and compiles fixture models once with a throwaway cache, so that the first benchmark model's cold compile
 * is not charged with loading CUDA, NVRTC, cuBLASLt and cuDNN (bench/transformers.py primes torch.compile alike).
 */
async function prime(): Promise<string[]> {
  if (dry) return [];
  let fixtures: string;
  try {
    fixtures = fixturesDir();
  } catch {
    return [];
  }
  const primed: string[] = [];
  const cache = mkdtempSync(join(tmpdir(), "torchc-tr-prime-"));
  for (const f of ["tiny_resnet.pt2", "tiny_vit.pt2"]) {
    try {
      const { compiled } = await timedCompile(await loadModel(join(fixtures, f)), cache);
      await compiled.dispose();
      primed.push(f);
    } catch (e) {
      console.log(`priming with ${f} failed (the first cold compile may include library loading): ${message(e)}`);
    }
  }
  rmSync(cache, { recursive: true, force: true });
  return primed;
}

const rows: TorchcRow[] = [];
const doc = {
  kind: "torchc-transformers",
  backend,
  date: new Date().toISOString(),
  carry: carried(),
  primed: [] as string[],
  rows,
};

function save(): void {
  writeAtomic(outFile, doc);
}

/** Records `row` in place of the run's earlier row (its "started" marker) and saves. */
function put(row: TorchcRow): void {
  const i = rows.findIndex((r) => r.key === row.key);
  if (i >= 0) rows[i] = row;
  else rows.push(row);
  save();
}

async function measure(dir: string, run: PeerRun): Promise<TorchcRow> {
  const files = run.files;
  if (!files) throw new Error(`${run.key} has no files`);
  let row: { -readonly [K in keyof TorchcRow]: TorchcRow[K] } = {
    key: run.key,
    model: run.model,
    batch: run.batch,
    ok: false,
  };
  let stage = "load";
  const mark = () => put({ ...row, failure: { stage, message: "started; the process died here" } });
  const cache = mkdtempSync(join(tmpdir(), `torchc-tr-${run.key}-`));
  let compiled: CompiledModule | undefined;
  try {
    mark();
    const t0 = performance.now();
    const model = await loadModel(runPath(dir, files.pt2));
    const cases = files.cases.map((c) => ({
      input: readNpy(runPath(dir, c.input)),
      output: readNpy(runPath(dir, c.output)),
    }));
    row.loadS = (performance.now() - t0) / 1000;
    stage = "compile (cold)";
    mark();
    const cold = await timedCompile(model, cache);
    row.compileColdS = cold.seconds;
    // where the cold compile's time went (schedule, cuDNN and cuBLASLt plans, NVRTC, weights), per engine
    row.coldBuild = cold.compiled.report.runners.flatMap((r) =>
      r.split("\n").filter((l) => l.startsWith("engine build")),
    );
    row.coldPhasesMs = Object.fromEntries(
      Object.entries(cold.compiled.report.timings).map(([k, v]) => [k, Math.round(v)]),
    );
    await cold.compiled.dispose();
    stage = "compile (warm)";
    mark();
    const warm = await timedCompile(model, cache);
    compiled = warm.compiled;
    row.compileWarmS = warm.seconds;
    const totals = compiled.partition.report.totals;
    row.nodes = totals.nodes;
    row.fallbackNodes = totals.fallbackNodes;
    row.segments = { engine: totals.engineSegments, fallback: totals.fallbackSegments };
    stage = "run";
    mark();
    // The last case checked is the first: its input stays in place for the timing below.
    const errs: number[] = new Array(cases.length);
    let nonFinite = 0;
    for (let k = cases.length - 1; k >= 0; k--) {
      const [out] = await compiled.run([cases[k].input]);
      nonFinite += nonFiniteCount(out);
      errs[k] = compareTensors(out, cases[k].output).relative;
    }
    row.relErrPerCase = errs;
    row.relErr = Math.max(...errs);
    row.nonFinite = nonFinite;
    row.withinTolerance = withinTolerance(errs, nonFinite);
    if (backend === "cuda") {
      stage = "benchmark";
      mark();
      const r = compiled.benchmark([cases[0].input], { reps: repsFor(run.batch, reps) });
      row.latency = { medianMs: r.medianMs, p90Ms: r.p90Ms, reps: r.reps };
      if (env.TRANSFORMERS_PROFILE !== "0") {
        stage = "profile";
        mark();
        try {
          row.profile = profileOf(compiled);
        } catch (e) {
          row.profileError = message(e); // the row's numbers stand without it
        }
      }
    }
    row.ok = true;
  } catch (e) {
    row = { ...row, failure: { stage, message: message(e) } };
  } finally {
    await compiled?.dispose().catch(() => undefined);
    rmSync(cache, { recursive: true, force: true });
  }
  return row;
}

/** The per-step profile, cut to what the report needs (the full one is `torchc bench --profile`). */
function profileOf(compiled: CompiledModule): NonNullable<TorchcRow["profile"]> {
  const p = compiled.profile({ reps: 20 });
  return {
    kernels: p.kernels,
    totalMs: p.totalMs,
    byKind: p.byKind.map((k) => ({ kind: k.kind, steps: k.steps, ms: k.ms })),
    slowest: [...p.steps]
      .sort((a, b) => b.medianMs - a.medianMs)
      .slice(0, 8)
      .map((s) => ({ kind: s.kind, description: s.description, medianMs: s.medianMs })),
  };
}

function summary(r: TorchcRow): string {
  if (r.failure) return `FAILED in ${r.failure.stage}: ${r.failure.message}`;
  const lat = r.latency ? `${r.latency.medianMs.toFixed(3)} ms` : "not timed";
  const kernels = r.profile ? `, ${r.profile.kernels} kernels` : "";
  return `${lat}${kernels}, err ${r.relErr?.toExponential(2)}${r.withinTolerance ? "" : " (over the bar)"}, compile cold ${r.compileColdS?.toFixed(1)} s / warm ${r.compileWarmS?.toFixed(1)} s, fallback ${r.fallbackNodes}/${r.nodes}${r.coldBuild?.length ? `\n  cold ${r.coldBuild.join("\n  cold ")}` : ""}${r.coldPhasesMs ? `\n  cold compile phases (ms): ${JSON.stringify(r.coldPhasesMs)}` : ""}`;
}

const dir = runDir();
const { selected, missing, notExported } = selectRuns(readPeers(dir).runs, env.TRANSFORMERS_ONLY);
if (missing.length) console.log(`TRANSFORMERS_ONLY names no run: ${missing.join(", ")}`);
for (const n of notExported) console.log(`${n.key}: not exported by PyTorch (${n.reason})`);
doc.primed = await prime();
console.log(`primed with ${doc.primed.join(", ") || "nothing"}; ${selected.length} runs from ${dir}`);
for (const run of selected) {
  const row = await measure(dir, run);
  put(row);
  console.log(`${run.key}: ${summary(row)}`);
}
console.log(`wrote ${outFile}`);

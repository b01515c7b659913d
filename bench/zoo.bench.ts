/**
 * The model zoo through torchc (issue 11): every model bench/zoo.py exported, compiled fp32 (TF32 off) and fp16,
 * each saved input checked against PyTorch eager fp32, fallback nodes counted, compile time and GPU latency
 * recorded beside PyTorch eager fp16. One child process per model and precision (bench/zoo-one, bench/zoo-pool):
 * a per-job time limit, crashes cost one row. zoo.json is rewritten after every job, so a killed run keeps what it
 * did; bench/zoo_report.py turns one or more of them into bench/ZOO.md. docs/zoo.md has the procedure.
 *
 *   bash scripts/gpu.sh bench zoo                       (on the GPU machine, after python3 bench/zoo.py)
 *   ZOO_DRY=1 npx tsx bench/zoo.bench.ts               (CPU: fixture models on the reference backend)
 *
 * Environment: ZOO_DIR (zoo.py's --out, default /tmp/torchc-zoo), ZOO_SHARD (i/n, zoo.py's rule), ZOO_ONLY (a,b),
 * ZOO_PRECISIONS (fp32,fp16), ZOO_TIMEOUT_S (per model and precision, default 180), ZOO_BUDGET_S (the whole run;
 * default TORCHC_GPU_TIMEOUT − 25 s), ZOO_GPUS (ids, default all visible), ZOO_JOBS_PER_GPU (default 3; timing
 * stays exclusive per GPU), ZOO_REPS (benchmark repetitions, default 100), ZOO_RESUME=1 (skip jobs a previous run
 * on this machine finished: ZOO_DIR/zoo.results.json), ZOO_DRY=1 (fixture models; ZOO_FIXTURES), ZOO_BACKEND
 * (reference: numbers on the CPU, nothing timed, ZOO_JOBS processes; cuda), TORCHC_BENCH_OUT (where zoo.json goes).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  classifyError,
  describeFailure,
  type Failure,
  type PrecisionRun,
  type PyTorchSide,
  type Verdict,
  verdictOf,
} from "./zoo-classify.js";
import { carried, fixtureModels, writeAtomic } from "./harness-files.js";
import { readZooDir, readZooIndex, selectEntries, writeDryManifest, type ZooEntry } from "./zoo-entries.js";
import type { OneJob } from "./zoo-one.js";
import { type JobOutcome, killChildren, runPool, type Slot } from "./zoo-pool.js";

type Precision = "fp32" | "fp16";

/** One model's row in zoo.json (bench/zoo_report.py reads these fields). */
export interface ZooRow {
  readonly name: string;
  readonly position: number;
  readonly source: string;
  readonly arch: string;
  readonly family: string;
  readonly inputShape?: readonly number[];
  readonly params?: number;
  readonly reinitialised?: readonly string[];
  readonly pytorch: PyTorchSide & {
    readonly card?: string;
    readonly eagerFp16Ms?: number;
    readonly inputSensitivity?: number;
  };
  /** A failure before torchc (export or PyTorch reference), or "not exported into ZOO_DIR". */
  readonly upstream?: Failure;
  readonly fp32?: PrecisionRun;
  readonly fp16?: PrecisionRun;
  readonly verdict: Verdict;
}

const HERE = dirname(fileURLToPath(import.meta.url));
const env = process.env;
const dry = env.ZOO_DRY === "1";
// The reference backend (CPU) checks numbers and fallback counts without a GPU; nothing is timed there. A dry run
// uses it unless ZOO_BACKEND=cuda (the fixtures through the GPU: a minute's smoke test of the harness).
const backend: OneJob["backend"] =
  env.ZOO_BACKEND === "reference" || env.ZOO_BACKEND === "cuda"
    ? env.ZOO_BACKEND
    : dry
      ? "reference"
      : "cuda";
const started = performance.now();
const budgetS = Number(env.ZOO_BUDGET_S ?? Number(env.TORCHC_GPU_TIMEOUT ?? 540) - 25);
const timeoutS = Number(env.ZOO_TIMEOUT_S ?? (dry ? 60 : 180));
const precisions = (env.ZOO_PRECISIONS ?? "fp32,fp16")
  .split(",")
  .filter((p): p is Precision => p === "fp32" || p === "fp16");
// scripts/gpu.sh sets TORCHC_BENCH_OUT ($OUT); a dry run by hand writes into the temp folder, not the repository.
const outDir = env.TORCHC_BENCH_OUT ?? (dry ? tmpdir() : ".");
const shardTag = env.ZOO_SHARD ? `.${env.ZOO_SHARD.replace("/", "of")}` : "";
const outFile = join(outDir, `zoo${shardTag}.json`);

function zooDir(): string {
  if (!dry) return env.ZOO_DIR ?? "/tmp/torchc-zoo";
  const { found: fixtures, candidates } = fixtureModels(env.ZOO_FIXTURES, "tiny_resnet.pt2");
  if (!fixtures) throw new Error(`ZOO_DRY: no fixture models in ${candidates.join(", ")} (set ZOO_FIXTURES)`);
  return writeDryManifest(fixtures, env.ZOO_DIR ?? mkdtempSync(join(tmpdir(), "torchc-zoo-dry-")));
}

function gpuSlots(): Slot[] {
  if (backend === "reference") return Array.from({ length: Number(env.ZOO_JOBS ?? 2) }, () => ({}));
  let gpus = env.ZOO_GPUS?.split(",").filter((g) => g !== "");
  if (!gpus?.length) gpus = env.CUDA_VISIBLE_DEVICES?.split(",").filter((g) => g !== "");
  if (!gpus?.length) {
    try {
      const n = execFileSync("nvidia-smi", ["-L"], { encoding: "utf8" })
        .split("\n")
        .filter((l) => l.startsWith("GPU ")).length;
      gpus = Array.from({ length: n }, (_, i) => String(i));
    } catch {
      gpus = [];
    }
  }
  const perGpu = Number(env.ZOO_JOBS_PER_GPU ?? 3);
  if (gpus.length === 0) return Array.from({ length: perGpu }, () => ({}));
  return gpus.flatMap((gpu) => Array.from({ length: perGpu }, () => ({ gpu })));
}

function upstreamFailure(e: ZooEntry): Failure | undefined {
  if (e.export && !e.export.ok)
    return { class: "export", message: `${e.export.stage}: ${e.export.error_class}: ${e.export.message}` };
  if (!e.export || !e.files) return { class: "export", message: "no export recorded (run bench/zoo.py)" };
  if (!e.reference)
    return { class: "reference", message: "no PyTorch reference yet (bench/zoo.py --phase reference)" };
  if (!e.reference.ok)
    return {
      class: "reference",
      message: `${e.reference.stage}: ${e.reference.error_class}: ${e.reference.message}`,
    };
  return undefined;
}

function pytorchSide(e: ZooEntry): ZooRow["pytorch"] {
  const r = e.reference?.ok ? e.reference : undefined;
  return {
    ...(r?.card ? { card: r.card } : {}),
    ...(r?.eager_fp16 ? { eagerFp16Ms: r.eager_fp16.median_ms } : {}),
    ...(typeof r?.fp16_rel_err === "number" ? { fp16RelErr: r.fp16_rel_err } : {}),
    ...(typeof r?.fp16_overflow === "boolean" ? { fp16Overflow: r.fp16_overflow } : {}),
    ...(typeof r?.input_sensitivity === "number" ? { inputSensitivity: r.input_sensitivity } : {}),
  };
}

function runOf(precision: Precision, o: JobOutcome): PrecisionRun {
  switch (o.kind) {
    case "result":
      return o.error ? { ...o.run, failure: classifyError(o.error) } : o.run;
    case "timeout":
      return {
        precision,
        failure: {
          class: "timeout",
          message: `did not finish within ${o.seconds} s (in ${o.stage ?? "start-up"})`,
          ...(o.stage ? { stage: o.stage } : {}),
        },
      };
    case "crash":
      return {
        precision,
        failure: {
          class: "crash",
          message: `the process ended (${o.exit}) in ${o.stage ?? "start-up"}: ${o.stderrTail.trim().split("\n").slice(-3).join(" | ")}`,
          ...(o.stage ? { stage: o.stage } : {}),
        },
      };
    case "not-run":
      return { precision, failure: { class: "not-run", message: o.reason } };
  }
}

function rowOf(e: ZooEntry, runs: Partial<Record<Precision, PrecisionRun>>): ZooRow {
  const pytorch = pytorchSide(e);
  const upstream = upstreamFailure(e);
  return {
    name: e.name,
    position: e.position,
    source: e.source,
    arch: e.arch,
    family: e.family,
    ...(e.input_shape ? { inputShape: e.input_shape } : {}),
    ...(e.params !== undefined ? { params: e.params } : {}),
    ...(e.reinitialised?.length ? { reinitialised: e.reinitialised } : {}),
    pytorch,
    ...(upstream ? { upstream } : {}),
    ...runs,
    verdict: verdictOf(runs, pytorch, upstream, precisions),
  };
}

function summary(r: PrecisionRun, row: ZooRow): string {
  if (r.failure) return describeFailure(r.failure);
  const parts = [
    `err ${r.relErr?.toExponential(2)}`,
    `compile ${r.compileS?.toFixed(1)} s`,
    `fallback ${r.fallbackNodes}/${r.nodes}`,
  ];
  if (r.latency) parts.push(`${r.latency.medianMs.toFixed(3)} ms`);
  if (r.precision === "fp16" && row.pytorch.eagerFp16Ms !== undefined)
    parts.push(`eager fp16 ${row.pytorch.eagerFp16Ms.toFixed(3)} ms`);
  return parts.join(", ");
}

async function main(): Promise<void> {
  const dir = zooDir();
  const { entries: all, unreadable } = readZooDir(dir);
  for (const u of unreadable) console.log(`zoo: skipping ${u}`);
  const { selected, missing } = selectEntries(all, { shard: env.ZOO_SHARD, only: env.ZOO_ONLY });
  // Every run on this machine adds to the store; ZOO_RESUME=1 also skips the jobs it holds (one runner at a time
  // per ZOO_DIR: several GPUs are slots of one runner, not runners of their own).
  const storeFile = join(dir, "zoo.results.json");
  const previous: Record<string, Partial<Record<Precision, PrecisionRun>>> = existsSync(storeFile)
    ? JSON.parse(readFileSync(storeFile, "utf8"))
    : {};
  const store = env.ZOO_RESUME === "1" ? previous : {};
  const runs = new Map<string, Partial<Record<Precision, PrecisionRun>>>();
  const jobs: { job: OneJob; tag: string; entry: ZooEntry; precision: Precision }[] = [];
  for (const e of selected) {
    const done = store[e.name] ?? {};
    runs.set(e.name, {});
    if (upstreamFailure(e)) continue;
    for (const precision of precisions) {
      const prev = done[precision];
      if (prev && prev.failure?.class !== "not-run") {
        (runs.get(e.name) as Partial<Record<Precision, PrecisionRun>>)[precision] = prev;
        continue;
      }
      const job: OneJob = {
        entry: join(dir, `${e.name}.json`),
        precision,
        backend,
        reps: Number(env.ZOO_REPS ?? 100),
      };
      jobs.push({ job, tag: `${e.name} ${precision}`, entry: e, precision });
    }
  }
  const slots = gpuSlots();
  const header = {
    kind: "torchc-zoo",
    version: 1,
    date: new Date().toISOString(),
    dry,
    backend,
    zooDir: dir,
    shard: env.ZOO_SHARD ?? null,
    only: env.ZOO_ONLY ?? null,
    precisions,
    slots: slots.map((s) => s.gpu ?? "any"),
    timeoutS,
    budgetS,
    carry: carried(),
    index: readZooIndex(dir) ?? null,
  };
  const missingRows: ZooRow[] = missing.map((name, i) =>
    rowOf(
      {
        name,
        position: 10_000 + i,
        source: "?",
        arch: name,
        family: "?",
        files: null,
        export: { ok: false, stage: "missing", error_class: "NotExported", message: `not in ${dir}` },
      },
      {},
    ),
  );
  const write = (complete: boolean) => {
    const rows = [...selected.map((e) => rowOf(e, runs.get(e.name) ?? {})), ...missingRows];
    writeAtomic(outFile, { ...header, complete, elapsedS: (performance.now() - started) / 1000, rows });
    const merged = { ...previous };
    for (const [name, r] of runs) merged[name] = { ...merged[name], ...r };
    writeAtomic(storeFile, merged);
  };
  console.log(
    `zoo: ${selected.length} models in ${dir} (${jobs.length} jobs; ${all.length} exported there), ` +
      `${slots.length} slots (${header.slots.join(",")}), ${timeoutS} s per job, budget ${budgetS} s → ${outFile}`,
  );
  write(false);
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  await runPool(
    jobs,
    {
      script: join(HERE, `zoo-one${ext}`),
      slots,
      timeoutS,
      deadline: started + budgetS * 1000,
      nodeFlags: ["--enable-source-maps", "--max-old-space-size=16384"],
      log: (l) => console.log(l),
    },
    (j, outcome) => {
      const run = runOf(j.precision, outcome);
      (runs.get(j.entry.name) as Partial<Record<Precision, PrecisionRun>>)[j.precision] = run;
      write(false);
      console.log(`${j.tag}: ${summary(run, rowOf(j.entry, {}))}`);
    },
  );
  write(true);
  const rows = JSON.parse(readFileSync(outFile, "utf8")).rows as ZooRow[];
  const matched = rows.filter((r) => r.verdict.matched).length;
  console.log(
    `\nzoo: ${matched} of ${rows.length} matched in ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
  for (const r of rows)
    if (!r.verdict.matched && r.verdict.failure)
      console.log(`  ${r.name}: ${describeFailure(r.verdict.failure)}`);
  // A dry run's table is no coverage table: it goes to stdout, never into bench/ZOO.md.
  console.log(
    `wrote ${outFile}; report: python3 bench/zoo_report.py ${outFile}${dry ? "" : " --out bench/ZOO.md"}`,
  );
}

// scripts/gpu.sh's timeout sends SIGTERM: take the children down too (zoo.json already holds every finished job).
for (const sig of ["SIGTERM", "SIGINT"] as const)
  process.on(sig, () => {
    killChildren();
    process.exit(128 + (sig === "SIGTERM" ? 15 : 2));
  });

await main();

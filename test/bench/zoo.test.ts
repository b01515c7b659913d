// The zoo's rules and plumbing on the CPU (issue 11): failure classes from real torchc errors, the fp32/fp16
// verdicts, ZOO_SHARD agreeing with bench/zoo.py's rule, bench/zoo_report.py merging shards, and the process pool's
// time limit, crash report and exclusive GPU timing (with stand-in child scripts).
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  classifyError,
  errorInfo,
  judge,
  type PrecisionRun,
  type PyTorchSide,
  verdictOf,
} from "../../bench/zoo-classify.js";
import { parseShard, selectEntries, type ZooEntry } from "../../bench/zoo-entries.js";
import { type JobOutcome, runPool } from "../../bench/zoo-pool.js";
import { ArchiveError, NativeError, UnsupportedOpError } from "../../src/errors.js";
import { ROOT, tempDir } from "../helpers.js";

const PYTHON = spawnSync("python3", ["--version"]).status === 0;

const ok = (precision: "fp32" | "fp16", relErr: number, extra: Partial<PrecisionRun> = {}): PrecisionRun => ({
  precision,
  relErr,
  nodes: 100,
  fallbackNodes: 0,
  ...extra,
});

describe("zoo failure classes", () => {
  it("names the op of an UnsupportedOpError wherever it surfaced", () => {
    const e = new UnsupportedOpError("LibTorch fallback: 1 node(s) cannot run …", "aten.einsum.default");
    expect(classifyError(errorInfo("compile", e))).toMatchObject({
      class: "unsupported-op",
      op: "aten.einsum.default",
      stage: "compile",
    });
    expect(classifyError(errorInfo("run", e)).class).toBe("unsupported-op");
  });

  it("reads the op from a stable-shim message that crossed a process boundary without its class", () => {
    const f = classifyError({
      stage: "compile",
      name: "Error",
      message:
        "LibTorch fallback: 2 node(s) cannot run through PyTorch's stable C shim:\n  aten.linalg_vector_norm.default at xcit.py:12: …",
    });
    expect(f).toMatchObject({ class: "unsupported-op", op: "aten.linalg_vector_norm.default" });
  });

  it("classifies everything else by the stage it stopped in", () => {
    expect(classifyError(errorInfo("load", new ArchiveError("m.pt2", "is not a zip archive"))).class).toBe(
      "load",
    );
    expect(classifyError(errorInfo("compile", new NativeError("cuDNN: no engine"))).class).toBe("compile");
    expect(classifyError(errorInfo("run", new Error("CUDA_ERROR_ILLEGAL_ADDRESS"))).class).toBe("run");
    expect(classifyError(errorInfo("benchmark", new TypeError("x is undefined"))).class).toBe("run");
    const f = classifyError(errorInfo("compile", new NativeError("cuDNN: no engine")));
    expect(f.message).toBe("NativeError: cuDNN: no engine");
    expect(f.op).toBeUndefined();
  });
});

describe("zoo verdicts", () => {
  const plain: PyTorchSide = { fp16RelErr: 3e-3, fp16Overflow: false };

  it("holds fp32 to 1e-4 and fp16 to 1e-2", () => {
    expect(judge(ok("fp32", 9e-5), plain).status).toBe("match");
    expect(judge(ok("fp32", 2e-4), plain)).toMatchObject({
      status: "fail",
      failure: { class: "wrong-numbers" },
    });
    expect(judge(ok("fp16", 9e-3), plain).status).toBe("match");
    expect(judge(ok("fp16", 2e-2), plain)).toMatchObject({
      status: "fail",
      failure: { class: "wrong-numbers" },
    });
    // NaN in torchc's output: compareTensors reports an infinite error, never a match.
    expect(judge(ok("fp16", Number.POSITIVE_INFINITY, { nonFinite: 3 }), plain).status).toBe("fail");
    expect(verdictOf({ fp32: ok("fp32", 1e-6), fp16: ok("fp16", 4e-3) }, plain).matched).toBe(true);
  });

  it("judges fp16 in fp32 where PyTorch's own fp16 overflows or underflows, and only its numbers", () => {
    const inf: PyTorchSide = { fp16Overflow: true };
    const under: PyTorchSide = { fp16RelErr: 1, fp16Overflow: false }; // mobilenet_v2's ~1e-9 logits
    for (const p of [inf, under]) {
      expect(judge(ok("fp16", 1), p).status).toBe("judged-in-fp32");
      expect(verdictOf({ fp32: ok("fp32", 1e-6), fp16: ok("fp16", 1) }, p).matched).toBe(true);
      // fp32 still decides
      expect(verdictOf({ fp32: ok("fp32", 1e-3), fp16: ok("fp16", 1) }, p).matched).toBe(false);
      // a compile failure in fp16 is not excused
      const broken: PrecisionRun = { precision: "fp16", failure: { class: "compile", message: "no engine" } };
      expect(judge(broken, p).status).toBe("fail");
    }
    // fp32 is never judged otherwise
    expect(judge(ok("fp32", 1e-3), inf).status).toBe("fail");
  });

  it("names the row after the first real failure, fp32 before fp16", () => {
    const timeout: PrecisionRun = { precision: "fp16", failure: { class: "timeout", message: "180 s" } };
    const v = verdictOf({ fp16: timeout }, plain); // fp32 was never run
    expect(v.matched).toBe(false);
    expect(v.failure?.class).toBe("timeout");
    const both = verdictOf({ fp32: ok("fp32", 1e-2), fp16: timeout }, plain);
    expect(both.failure?.class).toBe("wrong-numbers");
    // ZOO_PRECISIONS=fp32: fp16 was never asked for, so it decides nothing
    const fp32Only = verdictOf({ fp32: ok("fp32", 1e-6) }, plain, undefined, ["fp32"]);
    expect(fp32Only).toMatchObject({ matched: true, fp16: { status: "skipped" } });
    expect(verdictOf({ fp32: ok("fp32", 1e-6) }, plain).failure?.class).toBe("not-run");
    const upstream = verdictOf({}, plain, { class: "export", message: "Unsupported" });
    expect(upstream).toMatchObject({ matched: false, failure: { class: "export" } });
  });
});

describe("zoo shards", () => {
  const entries = Array.from(
    { length: 10 },
    (_, p): ZooEntry => ({ name: `m${p}`, position: p, source: "t", arch: `m${p}`, family: "cnn" }),
  );

  it("splits the zoo into disjoint shards that cover it", () => {
    const shards = [0, 1, 2].map((i) =>
      selectEntries(entries, { shard: `${i}/3` }).selected.map((e) => e.name),
    );
    expect(shards.flat().sort()).toEqual(entries.map((e) => e.name).sort());
    expect(new Set(shards.flat()).size).toBe(10);
    expect(shards[1]).toEqual(["m1", "m4", "m7"]);
    expect(() => parseShard("3/3")).toThrow(/0 <= i < n/);
    expect(() => parseShard("1of3")).toThrow();
  });

  it("intersects a shard with ZOO_ONLY and reports names it does not have", () => {
    const r = selectEntries(entries, { shard: "1/3", only: "m1,m2,nope" });
    expect(r.selected.map((e) => e.name)).toEqual(["m1"]);
    expect(r.missing).toEqual(["nope"]);
  });

  it.skipIf(!PYTHON)("agrees with bench/zoo.py's --shard on the real zoo list", () => {
    const list = (args: string[]) => {
      const p = spawnSync("python3", [join(ROOT, "bench", "zoo.py"), "--list", ...args], {
        encoding: "utf8",
      });
      expect(p.status, p.stderr).toBe(0);
      return p.stdout
        .trim()
        .split("\n")
        .map((l) => l.trim().split(/\s+/));
    };
    const zoo = list([]).map(
      ([p, name, family]): ZooEntry => ({ name, position: Number(p), source: "", arch: name, family }),
    );
    expect(zoo.length).toBeGreaterThanOrEqual(55);
    for (const shard of ["0/4", "3/4", "1/7"]) {
      const py = list(["--shard", shard]).map(([, name]) => name);
      expect(selectEntries(zoo, { shard }).selected.map((e) => e.name)).toEqual(py);
    }
  });
});

describe.skipIf(!PYTHON)("bench/zoo_report.py", () => {
  const pytorch = { fp16RelErr: 2e-3, fp16Overflow: false, eagerFp16Ms: 2, card: "H100" };
  const row = (
    name: string,
    position: number,
    runs: { fp32?: PrecisionRun; fp16?: PrecisionRun },
    p = pytorch,
  ) => ({
    name,
    position,
    source: "timm",
    arch: name,
    family: "cnn",
    inputShape: [1, 3, 224, 224],
    pytorch: p,
    ...runs,
    verdict: verdictOf(runs, p),
  });
  const file = (dir: string, name: string, shard: string, rows: unknown[]) => {
    const f = join(dir, name);
    const run = {
      kind: "torchc-zoo",
      version: 1,
      date: "2026-12-06T15:00:00Z",
      backend: "cuda",
      shard,
      slots: ["0"],
    };
    writeFileSync(f, JSON.stringify({ ...run, complete: true, index: ["a", "b", "c", "d", "e"], rows }));
    return f;
  };

  it("merges shards into the table and the totals against issue 11's bars", () => {
    const dir = tempDir();
    const lat = { medianMs: 0.5, p90Ms: 0.6, reps: 100 };
    const notRun: PrecisionRun = { precision: "fp16", failure: { class: "not-run", message: "budget" } };
    const fb = (n: number) => ({ nodes: 100, fallbackNodes: n });
    const shard0 = file(dir, "zoo.0of2.json", "0/2", [
      row("a", 0, { fp32: ok("fp32", 1e-6, fb(0)), fp16: ok("fp16", 3e-3, { ...fb(0), latency: lat }) }),
      // not finished here; finished in the later file, which must win
      row("c", 2, { fp32: ok("fp32", 1e-6, fb(4)), fp16: notRun }),
    ]);
    const unsupported = {
      precision: "fp32" as const,
      failure: {
        class: "unsupported-op" as const,
        op: "aten.einsum.default",
        message: "cannot run",
        stage: "compile" as const,
      },
    };
    const shard1 = file(dir, "zoo.1of2.json", "1/2", [
      row("b", 1, { fp32: unsupported, fp16: { ...unsupported, precision: "fp16" } }),
      row(
        "c",
        2,
        { fp32: ok("fp32", 1e-6, fb(4)), fp16: ok("fp16", 0.5, fb(4)) },
        { ...pytorch, fp16RelErr: 1 },
      ),
      row("d", 3, { fp32: ok("fp32", 3e-4, fb(0)), fp16: ok("fp16", 4e-3, fb(0)) }),
    ]);
    const out = join(dir, "ZOO.md");
    const p = spawnSync("python3", [join(ROOT, "bench", "zoo_report.py"), shard0, shard1, "--out", out], {
      encoding: "utf8",
    });
    expect(p.status, p.stderr).toBe(0);
    const md = readFileSync(out, "utf8");
    // a, c matched (c's fp16 judged in fp32: PyTorch's own fp16 is 1.0 off); b unsupported; d wrong in fp32
    expect(md).toContain("| matched | 2 of 4 (50.0 %) | ≥ 95 % | ❌ |");
    // fallback share over the four compiled-or-failed rows with a partition: (0 + 4 + 0) / 3 models
    expect(md).toContain(
      "| mean share of nodes in the fallback | 1.33 % (over 3 models that compiled) | ≤ 5 % | ✅ |",
    );
    expect(md).toMatch(
      /\| `a` \| cnn \| 224×224 \| ✅ matched \| 1\.0e-06 \| 3\.0e-03 \(2\.0e-03\) \| 0 of 100 \(0\.0 %\) \|.*\| 0\.500 \| 2\.000 \| 4\.00× \|/,
    );
    expect(md).toMatch(/\| `c` \|.*✅ matched † \|.*5\.0e-01† \(1\.0e\+00\)/);
    expect(md).toContain(
      "- `b`: **unsupported-op** `aten.einsum.default` [fp32, fp16] (in compile): cannot run",
    );
    expect(md).toMatch(/- `d`: \*\*wrong-numbers\*\*.*fp32: max\|err\|\/max\|ref\| = 3\.00e-4 > 0\.0001/);
    expect(md).toContain("In the zoo but in none of these runs (1): `e`.");
  });

  it("takes a directory of runs and refuses files that are not zoo runs", () => {
    const dir = tempDir();
    file(dir, "zoo.json", "all", [row("a", 0, { fp32: ok("fp32", 1e-6), fp16: ok("fp16", 1e-3) })]);
    writeFileSync(join(dir, "zoo.results.json"), JSON.stringify({ a: {} })); // the runner's resume store
    const p = spawnSync("python3", [join(ROOT, "bench", "zoo_report.py"), dir], { encoding: "utf8" });
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toContain("| matched | 1 of 1 (100.0 %)");
    const bad = spawnSync("python3", [join(ROOT, "bench", "zoo_report.py"), join(dir, "zoo.results.json")], {
      encoding: "utf8",
    });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain("no zoo runs");
  });
});

describe("zoo process pool", () => {
  // A stand-in for bench/zoo-one: behaviour from the job's "entry" field.
  const CHILD = `
const job = JSON.parse(process.argv[2]);
const send = (m) => new Promise((r) => process.send(m, undefined, {}, r));
const log = ${JSON.stringify(join(tempDir(), "gpu.log"))};
const fs = await import("node:fs");
await send({ type: "stage", stage: "compile" });
if (job.entry === "hang") await new Promise(() => setInterval(() => {}, 1000));
if (job.entry === "crash") { process.stderr.write("Segmentation fault (pretend)\\n"); process.exit(139); }
await send({ type: "stage", stage: "benchmark" });
await new Promise((r) => { process.on("message", (m) => m.type === "gpu-granted" && r()); send({ type: "gpu", gpu: "wanted" }); });
fs.appendFileSync(log, "start " + job.entry + " " + Date.now() + "\\n");
await new Promise((r) => setTimeout(r, 150));
fs.appendFileSync(log, "end " + job.entry + " " + Date.now() + "\\n");
await send({ type: "gpu", gpu: "released" });
await send({ type: "result", run: { precision: job.precision, relErr: 0 } });
process.exit(0);
`;

  it("records a timeout with its stage, a crash with its exit, and times one child at a time per GPU", async () => {
    const dir = tempDir();
    const script = join(dir, "child.mjs");
    writeFileSync(script, CHILD);
    const logFile = /"(.*gpu\.log)"/.exec(CHILD)?.[1] as string;
    const jobs = ["hang", "crash", "t1", "t2", "t3"].map((entry) => ({
      job: { entry, precision: "fp32" as const, backend: "cuda" as const },
      tag: entry,
    }));
    const seen = new Map<string, JobOutcome>();
    const t0 = performance.now();
    await runPool(
      jobs,
      { script, slots: [{ gpu: "0" }, { gpu: "0" }, { gpu: "0" }], timeoutS: 2, deadline: t0 + 60_000 },
      (j, o) => seen.set(j.tag, o),
    );
    expect(seen.get("hang")).toMatchObject({ kind: "timeout", stage: "compile", seconds: 2 });
    expect(seen.get("crash")).toMatchObject({ kind: "crash", stage: "compile", exit: "exit code 139" });
    expect((seen.get("crash") as { stderrTail: string }).stderrTail).toContain("Segmentation fault");
    for (const t of ["t1", "t2", "t3"])
      expect(seen.get(t)).toMatchObject({ kind: "result", run: { relErr: 0 } });
    // The three children wanted the GPU at about the same time; their timed sections never overlapped.
    const spans = readFileSync(logFile, "utf8")
      .trim()
      .split("\n")
      .map((l) => l.split(" "));
    expect(spans.map((s) => s[0])).toEqual(["start", "end", "start", "end", "start", "end"]);
    for (let i = 0; i + 1 < spans.length; i += 2) expect(spans[i][1]).toBe(spans[i + 1][1]);
  });

  it("starts nothing after the deadline and reports those jobs as not run", async () => {
    const dir = tempDir();
    const script = join(dir, "child.mjs");
    writeFileSync(script, CHILD);
    const seen: JobOutcome[] = [];
    await runPool(
      [{ job: { entry: "t1", precision: "fp16", backend: "cuda" }, tag: "late" }],
      { script, slots: [{}], timeoutS: 5, deadline: performance.now() - 1 },
      (_j, o) => seen.push(o),
    );
    expect(seen).toEqual([{ kind: "not-run", reason: "the run's time budget was spent before it started" }]);
  });
});

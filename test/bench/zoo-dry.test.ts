// The zoo harness end to end on the CPU (ZOO_DRY=1): bench/zoo.bench.ts runs fixture models on the reference
// backend in child processes, writes zoo.json, and bench/zoo_report.py turns it into ZOO.md. The fixtures' outputs
// come from PyTorch (fixtures/export.py), so the matches are real checks; one entry is not an archive (a load
// failure), one failed its export, and one keeps ReLU out of the engines (the fallback count must see it).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ZooRow } from "../../bench/zoo.bench.js";
import { ROOT, tempDir } from "../helpers.js";

const PYTHON = spawnSync("python3", ["--version"]).status === 0;

describe("the zoo's dry run", () => {
  const out = tempDir();
  const run = (extra: Record<string, string>) =>
    spawnSync(join(ROOT, "node_modules", ".bin", "tsx"), [join(ROOT, "bench", "zoo.bench.ts")], {
      cwd: ROOT,
      encoding: "utf8",
      env: {
        ...process.env,
        ZOO_DRY: "1",
        ZOO_DIR: join(out, "zoo"),
        TORCHC_BENCH_OUT: out,
        ZOO_JOBS: "3",
        ...extra,
      },
      timeout: 60_000,
    });
  const rowsOf = () => (JSON.parse(readFileSync(join(out, "zoo.json"), "utf8")) as { rows: ZooRow[] }).rows;

  it("checks every fixture model in fp32 and fp16, classifies the broken ones and writes zoo.json", () => {
    // A first run does one model; the second (ZOO_RESUME=1) must keep that result and run only the rest.
    const first = run({ ZOO_ONLY: "dry.mlp" });
    expect(first.status, `${first.stdout}\n${first.stderr}`).toBe(0);
    const mlpFirst = rowsOf().find((r) => r.name === "dry.mlp");
    expect(mlpFirst?.verdict.matched).toBe(true);
    const p = run({ ZOO_RESUME: "1" });
    expect(p.status, `${p.stdout}\n${p.stderr}`).toBe(0);
    // 6 entries, one without an export, 2 precisions, the 2 jobs of dry.mlp done: 8 jobs
    expect(p.stdout).toContain("(8 jobs;");
    expect(p.stdout).not.toContain("start dry.mlp fp32");
    const zoo = JSON.parse(readFileSync(join(out, "zoo.json"), "utf8")) as {
      complete: boolean;
      backend: string;
      rows: ZooRow[];
    };
    expect(zoo).toMatchObject({ complete: true, backend: "reference" });
    const row = (name: string) => zoo.rows.find((r) => r.name === `dry.${name}`) as ZooRow;
    for (const name of ["tiny_resnet", "tiny_vit", "mlp", "mlp_relu_fallback"]) {
      const r = row(name);
      expect(r.verdict.matched, name).toBe(true);
      expect(r.fp32?.relErr).toBeLessThanOrEqual(1e-4);
      expect(r.fp16?.relErr).toBeLessThanOrEqual(1e-2);
      // fp16 really ran in fp16: it differs from PyTorch fp32 more than fp32 does
      expect(r.fp16?.relErr).toBeGreaterThan(r.fp32?.relErr as number);
      expect(r.fp32?.compileS).toBeGreaterThan(0);
      expect(r.fp16?.latency).toBeUndefined(); // the reference backend times nothing
    }
    expect(row("mlp").fp32?.compileS).toBe(mlpFirst?.fp32?.compileS); // kept, not measured again
    expect(row("tiny_resnet").fp32?.fallbackNodes).toBe(0);
    const fb = row("mlp_relu_fallback").fp32;
    expect(fb?.fallbackNodes).toBeGreaterThan(0);
    expect(fb?.fallbackOps?.map((o) => o.op)).toContain("aten.relu.default");
    expect(row("not_an_archive").verdict).toMatchObject({
      matched: false,
      failure: { class: "load", stage: "load" },
    });
    expect(row("export_failed").verdict).toMatchObject({ matched: false, failure: { class: "export" } });
    expect(row("export_failed").fp32).toBeUndefined();
  });

  it.skipIf(!PYTHON)("turns it into ZOO.md", () => {
    const md = join(out, "ZOO.md");
    const p = spawnSync(
      "python3",
      [join(ROOT, "bench", "zoo_report.py"), join(out, "zoo.json"), "--out", md],
      {
        encoding: "utf8",
      },
    );
    expect(p.status, p.stderr).toBe(0);
    const text = readFileSync(md, "utf8");
    expect(text).toContain("**DRY RUN**");
    expect(text).toContain("| matched | 4 of 5 (80.0 %) | ≥ 95 % | ❌ |");
    expect(text).toMatch(
      /- `dry\.not_an_archive`: \*\*load\*\* \[fp32, fp16\] \(in load\): ArchiveError: .*not a zip/,
    );
    expect(text).toContain("| `aten.relu.default` | 1 | 1 | in torchExecutedOps |");
  });
});

// The transformer benchmark's plumbing on the CPU (issue 13): which runs bench/transformers.bench.ts picks from
// bench/transformers.py's record, its accuracy bar and repetitions, bench/transformers_report.py's merge, speed-ups
// and geometric mean on a synthetic pair of records, and the harness end to end on fixture models
// (TRANSFORMERS_DRY=1: the reference backend, PyTorch's fixture outputs as the oracle).
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  FP16_TOLERANCE,
  type PeerRun,
  repsFor,
  selectRuns,
  type TorchcRow,
  withinTolerance,
} from "../../bench/transformers-plan.js";
import { ROOT, tempDir } from "../helpers.js";

const PYTHON = spawnSync("python3", ["--version"]).status === 0;

const exported = (model: string, batch: number): PeerRun => ({
  key: `${model}_b${batch}`,
  model,
  batch,
  ok: true,
  files: { pt2: `${model}_b${batch}.pt2`, cases: [{ input: "i.npy", output: "o.npy" }] },
});

describe("the runs torchc's side compiles", () => {
  const runs: PeerRun[] = [
    exported("vit_base_patch16_224", 1),
    exported("vit_base_patch16_224", 64),
    exported("swin_t", 1),
    { key: "swin_t_b64", model: "swin_t", batch: 64, ok: false, skipped: "budget of 480 s spent" },
    {
      key: "resnet50_b1",
      model: "resnet50",
      batch: 1,
      ok: false,
      failure: { stage: "export", error_class: "RuntimeError", message: "boom" },
    },
  ];

  it("takes every exported run by default and names the ones PyTorch did not export", () => {
    const s = selectRuns(runs);
    expect(s.selected.map((r) => r.key)).toEqual([
      "vit_base_patch16_224_b1",
      "vit_base_patch16_224_b64",
      "swin_t_b1",
    ]);
    expect(s.notExported).toEqual([
      { key: "swin_t_b64", reason: "budget of 480 s spent" },
      { key: "resnet50_b1", reason: "export: RuntimeError: boom" },
    ]);
    expect(s.missing).toEqual([]);
  });

  it("narrows to keys or model names and reports names that match nothing", () => {
    const s = selectRuns(runs, "swin_t, vit_base_patch16_224_b64,bert_encoder");
    expect(s.selected.map((r) => r.key)).toEqual(["vit_base_patch16_224_b64", "swin_t_b1"]);
    expect(s.notExported.map((n) => n.key)).toEqual(["swin_t_b64"]);
    expect(s.missing).toEqual(["bert_encoder"]);
  });

  it("times at least 50 passes, 100 at batch 1", () => {
    expect(repsFor(1)).toBe(100);
    expect(repsFor(64)).toBe(50);
    expect(repsFor(64, 10)).toBe(50);
    expect(repsFor(1, 300)).toBe(300);
  });

  it("holds every case to the fp16 bar of 1e-2 and fails any inf/NaN", () => {
    expect(FP16_TOLERANCE).toBe(0.01);
    expect(withinTolerance([0.01, 0.002], 0)).toBe(true);
    expect(withinTolerance([0.002, 0.0101], 0)).toBe(false);
    expect(withinTolerance([0.002], 3)).toBe(false);
    expect(withinTolerance([], 0)).toBe(false);
  });
});

describe.skipIf(!PYTHON)("bench/transformers.py's run list (no torch needed)", () => {
  const list = (...args: string[]) => {
    const p = spawnSync("python3", [join(ROOT, "bench", "transformers.py"), "--list", ...args], {
      encoding: "utf8",
    });
    expect(p.status, p.stderr).toBe(0);
    return p.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { key: string; input_shape: number[] });
  };

  it("covers issue 13's models at batch 1 and their large batch by default", () => {
    expect(list().map((r) => r.key)).toEqual([
      "vit_base_patch16_224_b1",
      "vit_base_patch16_224_b64",
      "deit_tiny_patch16_224_b1",
      "deit_tiny_patch16_224_b64",
      "deit_tiny_patch16_224_b128",
      "swin_t_b1",
      "swin_t_b64",
      "bert_encoder_b1",
      "bert_encoder_b8",
      "resnet50_b1",
      "resnet50_b128",
      "efficientnet_b0_b1",
      "efficientnet_b0_b128",
    ]);
    // the encoder takes 128 tokens of BERT-base width per sequence
    expect(list("--models", "bert_encoder", "--batches", "8")[0].input_shape).toEqual([8, 128, 768]);
    expect(list("--models", "swin_t", "--batches", "2")[0].input_shape).toEqual([2, 3, 224, 224]);
  });

  it("refuses a model it does not know", () => {
    const p = spawnSync(
      "python3",
      [join(ROOT, "bench", "transformers.py"), "--list", "--models", "vit_b_16"],
      {
        encoding: "utf8",
      },
    );
    expect(p.status).not.toBe(0);
    expect(p.stderr).toContain("unknown model(s) vit_b_16");
  });
});

describe.skipIf(!PYTHON)("bench/transformers_report.py", () => {
  const dir = tempDir();
  const timing = (median_ms: number) => ({ median_ms, p90_ms: median_ms * 1.1, runs: 100 });
  const peers = {
    kind: "torchc-transformers-peers",
    card: "NVIDIA H100 80GB HBM3",
    versions: { torch: "2.11.0", timm: "1.0", torchvision: "0.26" },
    date: "2026-12-06T17:00:00Z",
    encoder: {
      num_layers: 12,
      d_model: 768,
      nhead: 12,
      dim_feedforward: 3072,
      activation: "gelu",
      norm_first: false,
      seq: 128,
    },
    runs: [
      {
        key: "vit_base_patch16_224_b1",
        model: "vit_base_patch16_224",
        batch: 1,
        ok: true,
        eager_fp16: timing(3.5),
        eager_fp16_cuda_graph: timing(0.7),
        reduce_overhead: { ...timing(0.6), compile_s: 14.2, warm_compile_s: 3.1 },
        max_autotune: { error: "crashed (exit -6) after 200 s: illegal memory access" },
      },
      {
        key: "vit_base_patch16_224_b64",
        model: "vit_base_patch16_224",
        batch: 64,
        ok: true,
        eager_fp16: timing(6.6),
        eager_fp16_cuda_graph: timing(6.5),
        reduce_overhead: { ...timing(5.0), compile_s: 20, warm_compile_s: 4 },
        max_autotune: { error: "timed out: did not finish within 420 s", timed_out: true },
      },
      {
        key: "swin_t_b1",
        model: "swin_t",
        batch: 1,
        ok: true,
        input_sensitivity: 1e-5,
        reduce_overhead: { ...timing(0.5), compile_s: 29 },
      },
      { key: "bert_encoder_b8", model: "bert_encoder", batch: 8, ok: true, reduce_overhead: timing(2.0) },
    ],
  };
  // "<model>_b<batch>" → the row's key, model and batch
  const named = (key: string) => ({
    key,
    model: key.replace(/_b\d+$/, ""),
    batch: Number(key.split("_b").pop()),
  });
  const row = (key: string, medianMs: number, relErr: number, extra: Partial<TorchcRow> = {}): TorchcRow => ({
    ...named(key),
    ok: true,
    compileColdS: 7.25,
    compileWarmS: 1.5,
    relErr,
    relErrPerCase: [relErr],
    nonFinite: 0,
    withinTolerance: relErr <= 0.01,
    latency: { medianMs, p90Ms: medianMs, reps: 100 },
    profile: { kernels: 42, totalMs: medianMs, byKind: [], slowest: [] },
    ...extra,
  });
  const failed = (key: string, stage: string, message: string) => ({
    ...named(key),
    ok: false,
    failure: { stage, message },
  });
  // First torchc file: ViT b1 finished, ViT b64 failed; the second file re-ran ViT b64 (finished) and Swin, and
  // carries a failed ViT b1 row that must not replace the finished one.
  const first = {
    kind: "torchc-transformers",
    rows: [
      row("vit_base_patch16_224_b1", 0.3, 2e-3),
      failed("vit_base_patch16_224_b64", "compile (cold)", "old failure"),
    ],
  };
  const second = {
    kind: "torchc-transformers",
    rows: [
      failed("vit_base_patch16_224_b1", "run", "later failure"),
      row("vit_base_patch16_224_b64", 4.0, 3e-3),
      row("swin_t_b1", 1.0, 2.6e-2),
      failed("bert_encoder_b8", "compile (cold)", "NativeError: cuDNN says no"),
    ],
  };
  writeFileSync(join(dir, "transformers.peers.json"), JSON.stringify(peers));
  writeFileSync(join(dir, "a.json"), JSON.stringify(first));
  writeFileSync(join(dir, "b.json"), JSON.stringify(second));
  const run = (...args: string[]) =>
    spawnSync("python3", [join(ROOT, "bench", "transformers_report.py"), ...args], { encoding: "utf8" });
  const lines = () => {
    const p = run(join(dir, "transformers.peers.json"), join(dir, "a.json"), join(dir, "b.json"));
    expect(p.status, p.stderr).toBe(0);
    return p.stdout.split("\n");
  };
  const rowOf = (model: string, batch: number) =>
    lines()
      .find((l) => l.startsWith(`| ${model} | ${batch} |`))
      ?.split("|")
      .slice(1, -1)
      .map((c) => c.trim());

  it("puts torchc beside every peer, with speed-up over reduce-overhead and both compile times", () => {
    // 0.6 ms / 0.3 ms = 2×; the later failed row did not replace the finished one
    expect(rowOf("vit_base_patch16_224", 1)).toEqual([
      "vit_base_patch16_224",
      "1",
      "0.300",
      "3.500",
      "0.700",
      "0.600",
      "crashed",
      "2.00×",
      "2.0e-03",
      "7.2 / 1.5",
      "14.2 / 3.1",
      "42",
    ]);
    // 5.0 / 4.0 = 1.25×; the re-run replaced the failed row
    expect(rowOf("vit_base_patch16_224", 64)?.slice(2, 9)).toEqual([
      "4.000",
      "6.600",
      "6.500",
      "5.000",
      "timed out",
      "1.25×",
      "3.0e-03",
    ]);
  });

  it("marks wrong outputs, failures and slow rows, and says when a match proves little", () => {
    const swin = rowOf("swin_t", 1);
    expect(swin?.[7]).toBe("0.50× (wrong output)");
    expect(swin?.[8]).toBe("2.6e-02 ✗");
    expect(rowOf("bert_encoder", 8)?.[2]).toBe("failed (compile (cold))");
    const text = lines().join("\n");
    expect(text).toContain("Slower than reduce-overhead: swin_t_b1.");
    expect(text).toContain("bert_encoder_b8: torchc failed in compile (cold): NativeError: cuDNN says no");
    expect(text).toContain("swin_t_b1: PyTorch's output barely depends on the input");
    expect(text).toContain(
      "12 layers, d_model 768, 12 heads, feed-forward 3072, gelu, post-norm, sequence 128",
    );
  });

  it("gives the geometric mean over every row with both numbers, and over the correct ones", () => {
    // all three: (2 · 1.25 · 0.5)^(1/3) = 1.077…; correct ones: (2 · 1.25)^(1/2) = 1.581…
    const text = lines().join("\n");
    expect(text).toContain("**1.08×** over 3 rows (1 with wrong output; over the 2 correct rows: 1.58×)");
  });

  it("reads a directory of records and refuses files that are none", () => {
    const p = run(dir);
    expect(p.status, p.stderr).toBe(0);
    expect(p.stdout).toContain("| vit_base_patch16_224 | 1 |");
    const bad = join(dir, "other.json");
    writeFileSync(bad, JSON.stringify({ kind: "torchc-zoo", rows: [] }));
    const q = run(bad);
    expect(q.status).not.toBe(0);
    expect(q.stderr).toContain("no transformer benchmark records");
  });
});

describe("the harness's dry run", () => {
  const out = tempDir();
  it("compiles a fixture model on the reference backend, checks it against PyTorch, and records failures", () => {
    const p = spawnSync(
      join(ROOT, "node_modules", ".bin", "tsx"),
      [join(ROOT, "bench", "transformers.bench.ts")],
      {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...process.env, TRANSFORMERS_DRY: "1", TRANSFORMERS_DIR: out, TORCHC_BENCH_OUT: out },
        timeout: 60_000,
      },
    );
    expect(p.status, p.stderr).toBe(0);
    const doc = JSON.parse(readFileSync(join(out, "transformers.json"), "utf8")) as { rows: TorchcRow[] };
    const vit = doc.rows.find((r) => r.key === "dry_tiny_vit_b1");
    expect(vit).toMatchObject({ ok: true, withinTolerance: true, nonFinite: 0, fallbackNodes: 0 });
    expect(vit?.relErr).toBeLessThan(FP16_TOLERANCE);
    expect(vit?.compileColdS).toBeGreaterThan(0);
    expect(vit?.compileWarmS).toBeGreaterThan(0);
    expect(vit?.latency).toBeUndefined(); // the reference backend times nothing
    expect(doc.rows.find((r) => r.key === "dry_not_a_model_b1")).toMatchObject({
      ok: false,
      failure: { stage: "load" },
    });
    expect(doc.rows.some((r) => r.key === "dry_export_failed_b1")).toBe(false);
    expect(p.stdout).toContain("dry_export_failed_b1: not exported by PyTorch");
  });
});

/**
 * 2:4 structured sparsity on the GPU (issue 15). First the cuSPARSELt plan alone (device/sparselt-plan.ts):
 * y = act(x·Wᵀ + b) for no activation, ReLU and GELU against a float64 host product of the same fp16 values.
 * Then the issue's linear microbenchmark, one per shape class (768→768, 768→3072, 3072→768 at M = 1024, with
 * bias): the cuSPARSELt plan against the dense cuBLASLt plan of the same layer, on the same buffers and stream,
 * each captured as a CUDA graph of 20 calls and replayed (as the engine replays its graph, so koffi's and the
 * libraries' host time per call is not what is measured), alternately, median of 5; asserts ≥ 1.5× and that
 * both give the same y. Then models pruned 2:4 by fixtures/prune_2_4.py, each compiled fp16 dense and with
 * sparseWeights in the same run. Checks every output against PyTorch fp32 on two inputs (max error ≤ 1e-2 of
 * max |reference|), that an engine checked the weights (the single-Linear models compile with
 * requireFullCompilation: their three nodes are below the default minBlockSize and would run in LibTorch),
 * times dense and sparse alternately (CompiledModule.benchmark, median of medians; module times include the
 * fp32↔fp16 casts), reads the per-layer GEMM times the build measured from the compile report, prints one
 * table and writes JSON to $OUT/sparsity.json when OUT is set. Asserts the issue's other bars: the encoder
 * (8 × 128 tokens) ≥ 1.3×, ResNet-50 (batch 32) no slower (3 % noise allowed), the pruned and fine-tuned MNIST
 * CNN within 1 point of the dense one's top-1.
 *
 *   bash scripts/gpu.sh test sparsity                                     everything (~5 min)
 *   TORCHC_SPARSE_PART=linears,encoder bash scripts/gpu.sh test sparsity  some parts (linears, encoder, resnet50, mnist)
 *   TORCHC_SPARSE_DIR=DIR   fixtures already made by `python3 fixtures/prune_2_4.py DIR` (else made here)
 *
 * MNIST needs the digits in .gpu-carry/mnist (`bash scripts/gpu.sh pack`).
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { CudaContext } from "../../src/backends/cuda/device/context.js";
import { timePairOnStream } from "../../src/backends/cuda/device/graph-timing.js";
import { DeviceBuffer } from "../../src/backends/cuda/device/memory.js";
import {
  buildSparseLtPlan,
  destroySparseLtPlan,
  runSparseLtPlan,
  type SparseActivation,
  SparseLtHandle,
  searchSparseLtPlan,
  streamCell,
} from "../../src/backends/cuda/device/sparselt-plan.js";
import { Stream } from "../../src/backends/cuda/device/stream.js";
import {
  buildLtMatmul,
  createLtHandle,
  destroyLtHandle,
  type MatmulGeometry,
} from "../../src/backends/cuda/kernels/matmul-cublaslt.js";
import { randomTensor, rng } from "../../src/backends/cuda/testing/nets.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { type Tensor, tensorBytes, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { type CompiledModule, compile } from "../../src/runtime/compile.js";
import type { CompileOptions } from "../../src/runtime/options.js";
import { compareTensors } from "../../src/util/compare.js";
import { parseNpy, readNpy } from "../../src/util/npy.js";
import { gpuReporter, openGpu, recordTestStarts, repoRoot, scriptFixtures } from "./support.js";

const ROOT = repoRoot("fixtures", "prune_2_4.py");
const DIGITS = join(ROOT, ".gpu-carry", "mnist");
const ALL_PARTS = ["linears", "encoder", "resnet50", "mnist"] as const;
const PARTS = new Set(
  (process.env.TORCHC_SPARSE_PART ?? ALL_PARTS.join(",")).split(",").map((s) => s.trim()),
);
const report = gpuReporter("sparsity");
recordTestStarts();

const { skip: noGpu } = openGpu();
const FP16: CompileOptions = { backend: "cuda", enabledPrecisions: ["fp16"] };
const TOLERANCE = 1e-2;

interface Row {
  model: string;
  denseMs: number;
  sparseMs: number;
  speedup: number;
  sparseLayers: number;
  eligibleLayers: number;
  relativeErrorDense: number;
  relativeErrorSparse: number;
  gemms?: {
    layer: string;
    shape: string;
    ran: string;
    sparseMs?: number;
    denseMs?: number;
    reason?: string;
  }[];
  note?: string;
}
const rows: Row[] = [];

/** Runs fixtures/prune_2_4.py for the parts asked (or uses TORCHC_SPARSE_DIR). */
function fixtures(): { dir: string; why: string | false } {
  return scriptFixtures({
    given: process.env.TORCHC_SPARSE_DIR,
    marker: "prune_2_4.json",
    prefix: "torchc-sparse-",
    script: join(ROOT, "fixtures", "prune_2_4.py"),
    args: [...ALL_PARTS.filter((p) => PARTS.has(p)), "--digits", DIGITS],
    tailLines: 5,
  });
}

/** The sparse lines of the compile report, parsed (the build's own per-layer GEMM timings). */
function sparseLayers(m: CompiledModule): NonNullable<Row["gemms"]> {
  const out: NonNullable<Row["gemms"]> = [];
  for (const line of m.report.runners.join("\n").split("\n")) {
    const s =
      /^ {2}sparse: '(.*)' ((?:1×1 conv )?M=\d+ N=\d+ K=\d+)(?: \(([\d.]+) ms vs dense ([\d.]+) ms)?/.exec(
        line,
      );
    if (s)
      out.push({ layer: s[1], shape: s[2], ran: "sparse", sparseMs: Number(s[3]), denseMs: Number(s[4]) });
    const d =
      /^ {2}dense: {2}'(.*)' ((?:1×1 conv )?M=\d+ N=\d+ K=\d+|K=\d+|Cout=\d+ Cin=\d+ \d+×\d+): (.*)$/.exec(
        line,
      );
    if (d) {
      const t = /sparse ([\d.]+) ms vs dense (?:cuBLASLt|cuDNN) ([\d.]+) ms/.exec(d[3]);
      out.push({
        layer: d[1],
        shape: d[2],
        ran: "dense",
        reason: d[3],
        ...(t ? { sparseMs: Number(t[1]), denseMs: Number(t[2]) } : {}),
      });
    }
  }
  return out;
}

/** The reference must depend on the input, or a match proves nothing (DESIGN.md's lessons). */
function assertVaries(a: Tensor, b: Tensor, what: string): void {
  const d = compareTensors(a, b);
  assert.ok(
    d.maxAbsError > 1e-3 * d.maxAbsReference,
    `${what}: PyTorch's output barely depends on its input`,
  );
}

async function checkAgainstPytorch(m: CompiledModule, dir: string, name: string): Promise<number> {
  let worst = 0;
  for (const suffix of ["", "2", ""]) {
    const x = readNpy(join(dir, `${name}.input${suffix}.npy`));
    const ref = readNpy(join(dir, `${name}.output${suffix}.npy`));
    const [y] = await m.run([x]);
    const a = compareTensors(y, ref);
    assert.ok(a.shapeMatches, `${name}: output shape`);
    worst = Math.max(worst, a.relative);
  }
  return worst;
}

/** Median of alternating dense/sparse medians (the same run, the same GPU state for both). */
function timeBoth(dense: CompiledModule, sparse: CompiledModule, x: Tensor, reps: number) {
  const d: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < 3; i++) {
    d.push(dense.benchmark([x], { reps }).medianMs);
    s.push(sparse.benchmark([x], { reps }).medianMs);
  }
  const med = (v: number[]) => [...v].sort((p, q) => p - q)[1];
  return { denseMs: med(d), sparseMs: med(s) };
}

/** Fails, naming where the model ran, when no engine of the sparse module checked its weights. */
function assertEngineChecked(m: CompiledModule, name: string): void {
  const checked = m.report.runners.some((r) => r.includes("sparse weights (2:4"));
  const fallback = m.report.partition.fallbackNodes.slice(0, 3).map((f) => `${f.op}: ${f.reason}`);
  assert.ok(
    checked,
    `${name}: no engine checked the weights (runners: ${m.report.runners.join(" | ")}; fallback: ${fallback.join("; ")})`,
  );
}

async function denseVsSparse(
  dir: string,
  name: string,
  reps: number,
  note?: string,
  extra: CompileOptions = {},
): Promise<Row> {
  const model = await loadModel(join(dir, `${name}.pt2`));
  assertVaries(readNpy(join(dir, `${name}.output.npy`)), readNpy(join(dir, `${name}.output2.npy`)), name);
  const dense = await compile(model, { ...FP16, ...extra });
  const sparse = await compile(model, { ...FP16, ...extra, sparseWeights: true });
  try {
    assertEngineChecked(sparse, name);
    const relativeErrorDense = await checkAgainstPytorch(dense, dir, name);
    const relativeErrorSparse = await checkAgainstPytorch(sparse, dir, name);
    const x = readNpy(join(dir, `${name}.input.npy`));
    await dense.run([x]);
    await sparse.run([x]);
    const t = timeBoth(dense, sparse, x, reps);
    const gemms = sparseLayers(sparse);
    const row: Row = {
      model: name,
      ...t,
      speedup: t.denseMs / t.sparseMs,
      sparseLayers: gemms.filter((g) => g.ran === "sparse").length,
      eligibleLayers: gemms.length,
      relativeErrorDense,
      relativeErrorSparse,
      gemms,
      note,
    };
    rows.push(row);
    report(name, { ...row, gemms: undefined, report: sparse.report.runners });
    for (const g of gemms) report(`${name} layer`, g);
    if (row.speedup < 1) {
      // Where a slower sparse module spends its time, beside the dense one (the same engines when no layer ran
      // sparse: then the difference is the build's, not cuSPARSELt's).
      const byKind = (m: CompiledModule) =>
        m.profile({ reps: 10 }).byKind.map((k) => `${k.kind} ${k.steps} ${k.ms.toFixed(3)}`);
      report(`${name} slower`, {
        denseRunners: dense.report.runners.map((r) => r.split("\n")[0]),
        sparseRunners: sparse.report.runners.map((r) => r.split("\n")[0]),
        dense: byKind(dense),
        sparse: byKind(sparse),
      });
    }
    assert.ok(relativeErrorDense <= TOLERANCE, `${name} dense fp16 vs PyTorch fp32: ${relativeErrorDense}`);
    assert.ok(
      relativeErrorSparse <= TOLERANCE,
      `${name} sparse fp16 vs PyTorch fp32: ${relativeErrorSparse}`,
    );
    return row;
  } finally {
    await dense.dispose();
    await sparse.dispose();
  }
}

/** 2:4 magnitude pruning along the last axis (the fixture's mask, on the host). */
function prune24(v: Float64Array): Float64Array {
  for (let g = 0; g < v.length; g += 4) {
    const order = [0, 1, 2, 3].sort((a, b) => Math.abs(v[g + b]) - Math.abs(v[g + a]));
    v[g + order[2]] = 0;
    v[g + order[3]] = 0;
  }
  return v;
}

describe("the cuSPARSELt plan on the device, against a host product", { skip: noGpu }, () => {
  const [m, n, k] = [64, 48, 128];
  const r = rng(15);
  const half = (shape: number[], v: Float64Array) => tensorFromNumbers("float16", shape, v);
  const x = half([m, k], toFloat64Array(randomTensor(r, "float32", [m, k], 1)));
  const w = half([n, k], prune24(toFloat64Array(randomTensor(r, "float32", [n, k], 0.3))));
  const b = half([n], toFloat64Array(randomTensor(r, "float32", [n], 0.5)));
  // cuSPARSELt fuses GELU only for int8/fp8 inputs (its own messages say so): the fp16 plan refuses it before C.
  it(`y = gelu(x·Wᵀ + b), fp16: refused with cuSPARSELt's reason, nothing passed to C`, () => {
    const handle = SparseLtHandle.create();
    const stream = Stream.create();
    try {
      const problem = { dtype: "float16", m, n, k, bias: true, activation: "gelu" } as const;
      assert.throws(
        () => buildSparseLtPlan(handle, problem, { weight: 0n, bias: tensorBytes(b) }, stream),
        /GELU epilogue: cuSPARSELt fuses GELU only for int8\/fp8/,
      );
    } finally {
      stream.destroy();
      handle.destroy();
    }
  });

  // with a residual r: a 1×1 convolution's tensor addition as cuSPARSELt's C (β = 1), added before the ReLU
  const res = half([m, n], toFloat64Array(randomTensor(r, "float32", [m, n], 1)));
  for (const [activation, residual] of [
    ["none", false],
    ["relu", false],
    ["relu", true],
  ] as [SparseActivation, boolean][]) {
    const what = residual ? `${activation}(x·Wᵀ + b + r)` : `${activation}(x·Wᵀ + b)`;
    it(`y = ${what}, ${m}×${n}×${k} fp16, after cusparseLtMatmulSearch`, () => {
      const handle = SparseLtHandle.create();
      const stream = Stream.create();
      const bufs = [tensorBytes(w), tensorBytes(x), tensorBytes(res)].map((bytes) =>
        DeviceBuffer.from(bytes),
      );
      const [wd, xd, rd] = bufs;
      const yd = DeviceBuffer.alloc(m * n * 2);
      const ws = DeviceBuffer.alloc(32 << 20);
      try {
        const problem = { dtype: "float16", m, n, k, bias: true, activation, residual } as const;
        const plan = buildSparseLtPlan(handle, problem, { weight: wd.ptr, bias: tensorBytes(b) }, stream);
        const operands = {
          x: xd.ptr,
          y: yd.ptr,
          workspace: ws.ptr,
          ...(residual ? { residual: rd.ptr } : {}),
        };
        searchSparseLtPlan(handle, plan, operands, stream);
        yd.fill(0, { stream });
        runSparseLtPlan(handle, plan, operands, streamCell(stream));
        stream.synchronize();
        const got = toFloat64Array({
          dtype: "float16",
          shape: [m * n],
          data: yd.download(new Uint16Array(m * n)),
        });
        const [xv, wv, bv, rv] = [x, w, b, res].map(toFloat64Array);
        let err = 0;
        let mag = 0;
        for (let i = 0; i < m; i++)
          for (let j = 0; j < n; j++) {
            let acc = bv[j] + (residual ? rv[i * n + j] : 0);
            for (let p = 0; p < k; p++) acc += xv[i * k + p] * wv[j * k + p];
            const want = activation === "relu" ? Math.max(0, acc) : acc;
            err = Math.max(err, Math.abs(got[i * n + j] - want));
            mag = Math.max(mag, Math.abs(want));
          }
        report(`plan ${what}`, {
          version: handle.version(),
          algorithm: plan.algorithm,
          workspaceBytes: plan.workspaceBytes,
          relative: err / mag,
        });
        destroySparseLtPlan(plan);
        assert.ok(err / mag <= 5e-3, `${what}: max error ${err} of ${mag}`);
      } finally {
        for (const buf of [...bufs, yd, ws]) buf.free();
        stream.destroy();
        handle.destroy();
      }
    });
  }
});

/**
 * GEMM timing as the engine runs it, with the helper the build's sparse-or-dense choice uses (graph-timing.ts):
 * CUDA graphs of PER_GRAPH calls each, replayed, dense and sparse alternating, median; eager if not capturable.
 */
const PER_GRAPH = 20;
const GEMM_TIMING = { perGraph: PER_GRAPH, replays: 10, rounds: 5 } as const;

describe("the linear GEMMs alone: cuSPARSELt plan against dense cuBLASLt plan, one per shape class", {
  skip: noGpu || (PARTS.has("linears") ? false : "TORCHC_SPARSE_PART"),
}, () => {
  const m = 1024;
  const WORKSPACE = 32 << 20;
  for (const [k, n] of [
    [768, 768],
    [768, 3072],
    [3072, 768],
  ]) {
    it(`${k}→${n} at M = ${m} with bias, fp16: sparse ≥ 1.5× faster, the same y`, () => {
      const r = rng(k + n);
      const half = (shape: number[], v: Float64Array) => tensorFromNumbers("float16", shape, v);
      const x = half([m, k], toFloat64Array(randomTensor(r, "float32", [m, k], 1)));
      const w = half([n, k], prune24(toFloat64Array(randomTensor(r, "float32", [n, k], Math.sqrt(3 / k)))));
      const b = half([n], toFloat64Array(randomTensor(r, "float32", [n], 0.1)));
      const stream = Stream.create();
      const lt = createLtHandle();
      const handle = SparseLtHandle.create();
      const [wd, xd] = [w, x].map((t) => DeviceBuffer.from(tensorBytes(t)));
      const yDense = DeviceBuffer.alloc(m * n * 2);
      const ySparse = DeviceBuffer.alloc(m * n * 2);
      const ws = DeviceBuffer.alloc(WORKSPACE);
      CudaContext.current().synchronize(); // the pageable uploads have landed before the stream reads them
      let sparsePlan: ReturnType<typeof buildSparseLtPlan> | undefined;
      let densePlan: { destroy(): void } | undefined;
      try {
        const problem = { dtype: "float16", m, n, k, bias: true, activation: "none" } as const;
        const plan = buildSparseLtPlan(handle, problem, { weight: wd.ptr, bias: tensorBytes(b) }, stream);
        sparsePlan = plan;
        const sparseOps = { x: xd.ptr, y: ySparse.ptr, workspace: ws.ptr };
        searchSparseLtPlan(handle, plan, sparseOps, stream);
        assert.ok(
          plan.workspaceBytes <= WORKSPACE,
          `cuSPARSELt wants ${plan.workspaceBytes} bytes of workspace`,
        );
        // the dense plan the engine would build for this layer: x [M,K] row-major, W [N,K] (bT), bias epilogue
        const geometry: MatmulGeometry = {
          m,
          n,
          k,
          aT: false,
          bT: true,
          batch: 1,
          strideA: 0,
          strideB: 0,
          strideD: m * n,
          dtype: "float16",
        };
        const built = buildLtMatmul(lt, geometry, { bias: true, activation: "none" }, false, WORKSPACE);
        assert.ok(built.ok, built.ok ? "" : built.reason);
        const dense = built.plan;
        densePlan = dense;
        dense.bind(xd.ptr, wd.ptr, yDense.ptr, plan.biasBuffer!.ptr, ws.ptr);
        const cell = streamCell(stream);
        const runSparse = () => runSparseLtPlan(handle, plan, sparseOps, cell);
        const runDense = () => dense.execute(stream);
        const timing = timePairOnStream(stream, [runDense, runSparse], GEMM_TIMING);
        const [denseMs, sparseMs] = timing.ms;
        const [d, s] = timing.rounds;
        const { graph: captured, why } = timing;
        stream.synchronize();
        const yd = toFloat64Array({
          dtype: "float16",
          shape: [m * n],
          data: yDense.download(new Uint16Array(m * n)),
        });
        const ys = toFloat64Array({
          dtype: "float16",
          shape: [m * n],
          data: ySparse.download(new Uint16Array(m * n)),
        });
        let diff = 0;
        let mag = 0;
        for (let i = 0; i < yd.length; i++) {
          diff = Math.max(diff, Math.abs(yd[i] - ys[i]));
          mag = Math.max(mag, Math.abs(yd[i]));
        }
        const speedup = denseMs / sparseMs;
        const values = {
          m,
          n,
          k,
          denseMs,
          sparseMs,
          speedup,
          captured,
          ...(why ? { notCaptured: why } : {}),
          algorithm: plan.algorithm,
          workspaceBytes: plan.workspaceBytes,
          version: handle.version(),
          relativeDiff: diff / mag,
          rounds: { dense: d, sparse: s },
        };
        report(`gemm ${k}→${n}`, values);
        rows.push({
          model: `GEMM ${k}→${n}, M=${m}`,
          denseMs,
          sparseMs,
          speedup,
          sparseLayers: 1,
          eligibleLayers: 1,
          relativeErrorDense: 0,
          relativeErrorSparse: diff / mag,
          note: `plan against plan (dense cuBLASLt vs cuSPARSELt, bias epilogue), ${captured ? `CUDA graph of ${PER_GRAPH} calls` : `eager: ${why}`}; error column: sparse vs dense y`,
        });
        assert.ok(mag > 0 && diff / mag <= 1e-2, `sparse y differs from dense y: ${diff} of ${mag}`);
        // the dense plan reads the sparse plan's bias copy: rows of y against a host product with the bias, too
        const [xv, wv, bv] = [x, w, b].map(toFloat64Array);
        let hostDiff = 0;
        let hostMag = 0;
        for (const i of [0, m >> 1, m - 1])
          for (let j = 0; j < n; j++) {
            let acc = bv[j];
            for (let p = 0; p < k; p++) acc += xv[i * k + p] * wv[j * k + p];
            hostDiff = Math.max(hostDiff, Math.abs(ys[i * n + j] - acc));
            hostMag = Math.max(hostMag, Math.abs(acc));
          }
        assert.ok(hostDiff / hostMag <= 1e-2, `sparse y vs host product: ${hostDiff} of ${hostMag}`);
        assert.ok(
          speedup >= 1.5,
          `GEMM ${k}→${n}: ${denseMs.toFixed(4)} ms dense vs ${sparseMs.toFixed(4)} ms sparse = ${speedup.toFixed(2)}×`,
        );
      } finally {
        if (sparsePlan) destroySparseLtPlan(sparsePlan);
        densePlan?.destroy();
        for (const buf of [wd, xd, yDense, ySparse, ws]) buf.free();
        destroyLtHandle(lt);
        handle.destroy();
        stream.destroy();
      }
    });
  }
});

describe("2:4 sparse weights through cuSPARSELt, dense and sparse in the same run", { skip: noGpu }, () => {
  const { dir, why } = noGpu ? { dir: "", why: noGpu } : fixtures();
  const info = why
    ? undefined
    : (JSON.parse(readFileSync(join(dir, "prune_2_4.json"), "utf8")) as {
        models: Record<string, { top1?: number; top1_before_fine_tune?: number; zero_fraction?: number }>;
      });

  for (const [k, n] of [
    [768, 768],
    [768, 3072],
    [3072, 768],
  ]) {
    const name = `linear_${k}_${n}`;
    it(`${name} at M = 1024 compiled: the layer is found and timed by the build, both within fp16 tolerance`, {
      skip: why || (PARTS.has("linears") ? false : "TORCHC_SPARSE_PART"),
    }, async () => {
      // three nodes (cast, linear, cast): below the default minBlockSize they would all run in LibTorch
      const row = await denseVsSparse(
        dir,
        name,
        200,
        "one nn.Linear + bias, compiled whole (requireFullCompilation); module time includes the fp32↔fp16 casts",
        { requireFullCompilation: true },
      );
      const g = row.gemms?.[0];
      assert.ok(g, `${name}: the report lists no sparse-eligible layer`);
      assert.equal(g.shape, `M=1024 N=${n} K=${k}`);
      assert.ok(g.sparseMs && g.denseMs, `${name}: ${g.reason ?? "no timing"}`);
      // the bar itself is asserted on the GEMM microbenchmark above; this is the build's own timing (graph replay)
      report(`${name} build timing`, {
        ran: g.ran,
        speedup: g.denseMs / g.sparseMs,
        sparseMs: g.sparseMs,
        denseMs: g.denseMs,
      });
    });
  }

  it("BERT-base-sized encoder, 8 × 128 tokens: ≥ 1.3× faster sparse", {
    skip: why || (PARTS.has("encoder") ? false : "TORCHC_SPARSE_PART"),
  }, async () => {
    const row = await denseVsSparse(dir, "encoder", 50);
    assert.ok(row.sparseLayers > 0, "no layer of the encoder ran sparse");
    assert.ok(row.speedup >= 1.3, `encoder: ${row.denseMs} ms dense vs ${row.sparseMs} ms sparse`);
  });

  it("ResNet-50, batch 32: no slower with sparseWeights", {
    skip: why || (PARTS.has("resnet50") ? false : "TORCHC_SPARSE_PART"),
  }, async () => {
    const row = await denseVsSparse(
      dir,
      "resnet50",
      30,
      "1×1 stride-1 convolutions timed cuSPARSELt against cuDNN; 3×3 and strided ones stay on cuDNN",
    );
    // every stride-1 1×1 convolution (ResNet-50 has 32 at batch 32, M = 32·H·W) is timed against its cuDNN plan
    const timed = (row.gemms ?? []).filter((g) => g.shape.startsWith("1×1 conv") && g.sparseMs !== undefined);
    report("resnet50 1x1 convolutions", {
      timed: timed.length,
      sparse: timed.filter((g) => g.ran === "sparse").length,
      speedups: timed.map((g) => `${g.shape} ${((g.denseMs ?? 0) / (g.sparseMs ?? 1)).toFixed(2)}`),
    });
    assert.ok(timed.length >= 16, `only ${timed.length} 1×1 convolutions were timed sparse against dense`);
    assert.ok(
      row.sparseMs <= row.denseMs * 1.03,
      `resnet50: ${row.denseMs} ms dense vs ${row.sparseMs} ms sparse`,
    );
  });

  it("MNIST CNN pruned 2:4 and fine-tuned: top-1 within 1 point of the dense net", {
    skip:
      why ||
      (PARTS.has("mnist") ? false : "TORCHC_SPARSE_PART") ||
      (info?.models.mnist_pruned ? false : "no MNIST digits"),
  }, async () => {
    const labels = parseNpy(gunzipSync(readFileSync(join(DIGITS, "test_labels.npy.gz"))), "labels")
      .data as Uint8Array;
    const images = parseNpy(gunzipSync(readFileSync(join(DIGITS, "test_images.npy.gz"))), "images");
    const batch = 80;
    const px = 28 * 28;
    const batches: Tensor[] = [];
    for (let i = 0; i + batch <= images.shape[0]; i += batch) {
      const data = new Float32Array(batch * px);
      for (let k = 0; k < data.length; k++) data[k] = (images.data as Uint8Array)[i * px + k] / 255;
      batches.push({ dtype: "float32", shape: [batch, 1, 28, 28], data });
    }
    const top1 = async (file: string, options: CompileOptions) => {
      const m = await compile(await loadModel(join(dir, file)), options);
      try {
        let correct = 0;
        for (const [b, x] of batches.entries()) {
          const v = (await m.run([x]))[0].data as Float32Array;
          for (let i = 0; i < batch; i++) {
            let best = 0;
            for (let c = 1; c < 10; c++) if (v[i * 10 + c] > v[i * 10 + best]) best = c;
            if (best === labels[b * batch + i]) correct++;
          }
        }
        const err = await checkAgainstPytorch(m, dir, file.replace(".pt2", ""));
        return { top1: (100 * correct) / (batches.length * batch), err, report: m.report.runners };
      } finally {
        await m.dispose();
      }
    };
    const dense = await top1("mnist_dense.pt2", FP16);
    const pruned = await top1("mnist_pruned.pt2", { ...FP16, sparseWeights: "prefer" });
    const py = info!.models;
    report("mnist", {
      torchcDense: dense.top1,
      torchcPruned: pruned.top1,
      pytorchDense: py.mnist_dense.top1,
      pytorchPruned: py.mnist_pruned.top1,
      pytorchPrunedBeforeFineTune: py.mnist_pruned.top1_before_fine_tune,
      zeroFraction: py.mnist_pruned.zero_fraction,
      relativeErrorDense: dense.err,
      relativeErrorPruned: pruned.err,
      report: pruned.report,
    });
    rows.push({
      model: "mnist (top-1)",
      denseMs: Number.NaN,
      sparseMs: Number.NaN,
      speedup: Number.NaN,
      sparseLayers: 0,
      eligibleLayers: 0,
      relativeErrorDense: dense.err,
      relativeErrorSparse: pruned.err,
      note: `top-1 torchc dense ${dense.top1.toFixed(2)} %, pruned ${pruned.top1.toFixed(2)} %; PyTorch ${py.mnist_dense.top1?.toFixed(2)} / ${py.mnist_pruned.top1?.toFixed(2)} %`,
    });
    assert.ok(
      dense.err <= TOLERANCE && pruned.err <= TOLERANCE,
      `MNIST vs PyTorch: ${dense.err}, ${pruned.err}`,
    );
    assert.ok(
      Math.abs(pruned.top1 - py.mnist_pruned.top1!) <= 0.3,
      "torchc's pruned top-1 disagrees with PyTorch's",
    );
    assert.ok(dense.top1 - pruned.top1 <= 1, `pruned ${pruned.top1} % vs dense ${dense.top1} %`);
  });

  after(() => {
    const fmt = (v: number, d = 3) => (Number.isFinite(v) ? v.toFixed(d) : "");
    const table = [
      "",
      "| model | dense fp16 ms | sparse fp16 ms | speedup | layers sparse / eligible | max err dense / sparse | note |",
      "| --- | --- | --- | --- | --- | --- | --- |",
      ...rows.map(
        (r) =>
          `| ${r.model} | ${fmt(r.denseMs)} | ${fmt(r.sparseMs)} | ${fmt(r.speedup, 2)}× | ${r.sparseLayers} / ${r.eligibleLayers} | ${r.relativeErrorDense.toExponential(1)} / ${r.relativeErrorSparse.toExponential(1)} | ${r.note ?? ""} |`,
      ),
    ].join("\n");
    console.log(table);
    if (process.env.OUT) writeFileSync(join(process.env.OUT, "sparsity.json"), JSON.stringify(rows, null, 1));
  });
});

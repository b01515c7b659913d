/**
 * int8 / fp8 on real MNIST digits (issue 14), on the CUDA backend: top-1 on the 2,000 held-out digits for
 * torchc fp32, fp16, int8 PTQ (calibrated on 500 training digits), int8 QAT (PyTorch's PT2E model), PyTorch's
 * own PT2E PTQ model, and fp8; one markdown table row per configuration; the issue's bars asserted (PTQ within
 * 0.5 points of fp32, QAT within 0.3, fp8 within 0.5); the calibration cache round trip on the GPU. Then
 * ResNet-50 and EfficientNet-B0 (random weights, fixtures/imagenet_quant.py at test time): int8 and fp8 output
 * against PyTorch fp32 as max error / max reference and cosine (reported, not asserted: no bar in the issue).
 * int8 and fp8 here are simulated in float (quantize/dequantize kernels around fp32 convolutions and GEMMs):
 * the numbers measure accuracy, not int8 speed. The third part ("kernels") runs real int8 (cuBLASLt IMMA) and
 * fp8 E4M3 GEMMs through the device QuantizedLinear (test/gpu/quant-kernels.ts): a 768→3072→768 linear stack
 * against the simulated arithmetic layer by layer and against PyTorch fp32, and a timing table int8 / fp8 /
 * fp16 (printed; JSON in $OUT/quant-kernels.json when OUT is set), a 1×1 convolution as an int8 GEMM, CUDA graph
 * replay, and the engine with TORCHC_QUANT_KERNELS=1 on a quantized MLP. The fourth part ("convs") runs real int8
 * convolutions through cuDNN's graph API (QuantizedConv, test/gpu/quant-conv-kernels.ts): small shapes against
 * torchc.quantized_convolution's reference, and ResNet-50 batch-128 shapes timed against cuDNN fp16 (JSON in
 * $OUT/quant-conv-kernels.json).
 *
 * Needs the digits in .gpu-carry/mnist (`bash scripts/gpu.sh pack`) and the models of fixtures/mnist_quant.py:
 * from TORCHC_MNIST_DIR if set, else the script is run here first (PyTorch on the GPU machine, ~1 min).
 *   bash scripts/gpu.sh test quant                              both halves
 *   TORCHC_QUANT_PART=mnist bash scripts/gpu.sh test quant      MNIST only (…=imagenet: the ImageNet half)
 *   TORCHC_QUANT_PART=kernels bash scripts/gpu.sh test quant    the int8 / fp8 GEMM kernels only
 *   TORCHC_QUANT_PART=convs bash scripts/gpu.sh test quant      the int8 cuDNN convolutions only
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { gunzipSync } from "node:zlib";
import { buildCudaEngine } from "../../src/backends/cuda/builder.js";
import { createLtHandle, destroyLtHandle } from "../../src/backends/cuda/device/blaslt-plan.js";
import { captureGraph } from "../../src/backends/cuda/device/graph.js";
import { DeviceBuffer } from "../../src/backends/cuda/device/memory.js";
import { Stream } from "../../src/backends/cuda/device/stream.js";
import { type Fp8LinearSpec, QuantizedLinear } from "../../src/backends/cuda/kernels/quantized-linear.js";
import { pointwiseLinearSpec } from "../../src/backends/cuda/kernels/quantized-pointwise.js";
import { convertGraph } from "../../src/converters/index.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { numberToFloat16Bits } from "../../src/ir/half.js";
import { type Tensor, toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/index.js";
import { E4M3_MAX } from "../../src/ops/quantize-math.js";
import { compile } from "../../src/runtime/compile.js";
import type { CompileOptions } from "../../src/runtime/options.js";
import { compareTensors } from "../../src/util/compare.js";
import { parseNpy, readNpy } from "../../src/util/npy.js";
import { cosine, cosineOf } from "../quant/cosine.js";
import { quantConvTests } from "./quant-conv-kernels.js";
import {
  amax,
  downloadAs,
  type FloatLinear,
  fp8Reference,
  int8Reference,
  int8Weights,
  normals,
  pytorchStack,
  quantizedLayer,
  quantizedMlp,
  relative,
  type TimingRow,
  timeShape,
  timingCells,
  uploadAs,
} from "./quant-kernels.js";
import { gpuReporter, openGpu, repoRoot, scriptFixtures } from "./support.js";

const ROOT = repoRoot("fixtures", "mnist_quant.py");
const DIGITS = join(ROOT, ".gpu-carry", "mnist");
const BATCH = 100;
const report = gpuReporter("quant");

const { skip: noGpu } = openGpu();
// TORCHC_QUANT_PART=mnist, imagenet, kernels or convs runs one part (each fits a GPU run's time limit on its own).
const PART = process.env.TORCHC_QUANT_PART ?? "all";
const onlyPart = (name: string) => (PART === "all" || PART === name ? false : `TORCHC_QUANT_PART=${PART}`);
const skipMnistPart = onlyPart("mnist");
const skipImagenetPart = onlyPart("imagenet");
const noDigits = existsSync(join(DIGITS, "test_images.npy.gz"))
  ? false
  : `no digits in ${DIGITS}: run 'bash scripts/gpu.sh pack' (fixtures/mnist_digits.mjs)`;
const skip = noGpu || skipMnistPart || noDigits;

function gz(name: string): Tensor {
  return parseNpy(gunzipSync(readFileSync(join(DIGITS, `${name}.npy.gz`))), name);
}

/** uint8 digits [n, 28, 28] → float32 batches [100, 1, 28, 28] of pixel / 255, as mnist_quant.py feeds them. */
function batches(u8: Tensor, count = u8.shape[0]): Tensor[] {
  const out: Tensor[] = [];
  const px = 28 * 28;
  for (let i = 0; i + BATCH <= count; i += BATCH) {
    const data = new Float32Array(BATCH * px);
    for (let k = 0; k < data.length; k++) data[k] = (u8.data as Uint8Array)[i * px + k] / 255;
    out.push({ dtype: "float32", shape: [BATCH, 1, 28, 28], data });
  }
  return out;
}

function modelsDir(): { dir: string; why: string | false } {
  return scriptFixtures({
    given: process.env.TORCHC_MNIST_DIR,
    marker: "mnist_quant.json",
    prefix: "torchc-mnist-",
    script: join(ROOT, "fixtures", "mnist_quant.py"),
    args: [DIGITS],
    tailLines: 4,
  });
}

async function top1(file: string, options: CompileOptions, test: readonly Tensor[], labels: Uint8Array) {
  const m = await compile(await loadModel(file), { backend: "cuda", ...options });
  try {
    let correct = 0;
    for (const [b, x] of test.entries()) {
      const [out] = await m.run([x]);
      const v = out.data as Float32Array;
      for (let i = 0; i < BATCH; i++) {
        let best = 0;
        for (let c = 1; c < 10; c++) if (v[i * 10 + c] > v[i * 10 + best]) best = c;
        if (best === labels[b * BATCH + i]) correct++;
      }
    }
    const first = (await m.run([test[0]]))[0];
    return { top1: (100 * correct) / (test.length * BATCH), first, runners: m.report.runners };
  } finally {
    await m.dispose();
  }
}

describe("MNIST int8 / fp8 top-1 on the CUDA backend", { skip }, () => {
  const { dir, why } = skip ? { dir: "", why: skip } : modelsDir();
  const info = why
    ? undefined
    : (JSON.parse(readFileSync(join(dir, "mnist_quant.json"), "utf8")) as {
        models: Record<string, { file: string; top1: number; note: string }>;
      });
  const test = why ? [] : batches(gz("test_images"));
  const labels = why ? new Uint8Array() : (gz("test_labels").data as Uint8Array);
  const calibration = why ? [] : batches(gz("train_images"), 500);
  const rows: string[] = [];
  const results: Record<string, number> = {};
  const cache = join(mkdtempSync(join(tmpdir(), "torchc-calib-")), "mnist.scales.json");

  async function row(name: string, file: string, options: CompileOptions, pytorch?: number) {
    const r = await top1(join(dir, file), options, test, labels);
    results[name] = r.top1;
    const delta = results.fp32 === undefined ? 0 : r.top1 - results.fp32;
    const line = `| ${name} | ${r.top1.toFixed(2)} % | ${delta >= 0 ? "+" : ""}${delta.toFixed(2)} | ${pytorch === undefined ? "" : `${pytorch.toFixed(2)} %`} |`;
    rows.push(line);
    console.log(line);
    report(name, { top1: r.top1, delta, pytorch, runners: r.runners });
    return r;
  }

  it("fp32 matches PyTorch's output and learned the digits", { skip: why }, async () => {
    const r = await row("torchc fp32", "mnist_fp32.pt2", {}, info?.models.mnist_fp32.top1);
    results.fp32 = r.top1;
    const a = compareTensors(r.first, readNpy(join(dir, "mnist_fp32.output.npy")));
    assert.ok(a.relative <= 1e-4, `fp32 vs PyTorch: ${a.relative}`);
    assert.ok(r.top1 > 95, `fp32 top-1 ${r.top1}`);
  });

  it("fp16", { skip: why }, async () => {
    const r = await row("torchc fp16", "mnist_fp32.pt2", { enabledPrecisions: ["fp16"] });
    assert.ok(Math.abs(r.top1 - results.fp32) <= 0.5);
  });

  it("int8 PTQ (the default calibrator, percentile; 500 training digits) within 0.5 points of fp32", {
    skip: why,
  }, async () => {
    const opts: CompileOptions = { enabledPrecisions: ["int8"], calibration: { data: calibration, cache } };
    const r = await row("torchc int8 PTQ (percentile, the default; 500 digits)", "mnist_fp32.pt2", opts);
    assert.ok(results.fp32 - r.top1 <= 0.5, `PTQ ${r.top1} vs fp32 ${results.fp32}`);
    // The cache alone rebuilds the same engine: identical outputs, twice each.
    const again = await compile(await loadModel(join(dir, "mnist_fp32.pt2")), {
      backend: "cuda",
      enabledPrecisions: ["int8"],
      calibration: { cache },
    });
    try {
      for (const x of [test[0], test[1], test[0]]) {
        const [b] = await again.run([x]);
        const ref = x === test[1] ? undefined : r.first;
        if (ref) assert.deepEqual(Array.from(b.data as Float32Array), Array.from(ref.data as Float32Array));
      }
    } finally {
      await again.dispose();
    }
  });

  it("int8 PTQ (minmax, entropy) and int8 + fp16, reported", { skip: why }, async () => {
    // Entropy (TensorRT's KL method) clips the conv1 → ReLU → max-pool output at ~15 % of its max on this model
    // (NVIDIA's own reference implementation picks an even lower threshold on the same histogram): reported only.
    for (const algorithm of ["minmax", "entropy"] as const)
      await row(`torchc int8 PTQ (${algorithm})`, "mnist_fp32.pt2", {
        enabledPrecisions: ["int8"],
        calibration: { data: calibration, algorithm },
      });
    await row("torchc int8 + fp16 PTQ (percentile)", "mnist_fp32.pt2", {
      enabledPrecisions: ["int8", "fp16"],
      calibration: { cache },
    });
  });

  it("int8 QAT (PyTorch PT2E model) within 0.3 points of fp32 and agreeing with PyTorch", {
    skip: why,
  }, async () => {
    const name = info?.models.mnist_qat ? "mnist_qat" : "mnist_fake_quant";
    const m = info?.models[name];
    assert.ok(m, "mnist_quant.py wrote no QAT model");
    const r = await row(`torchc int8 QAT (${name})`, m.file, {}, m.top1);
    assert.ok(results.fp32 - r.top1 <= 0.3, `QAT ${r.top1} vs fp32 ${results.fp32}`);
    assert.ok(Math.abs(r.top1 - m.top1) <= 0.3, `torchc QAT ${r.top1} vs PyTorch's ${m.top1}`);
    const a = compareTensors(r.first, readNpy(join(dir, `${name}.output.npy`)));
    report("qat-vs-pytorch", { relative: a.relative });
  });

  it("PyTorch's PT2E PTQ model runs and matches PyTorch's top-1", { skip: why }, async (t) => {
    const m = info?.models.mnist_ptq;
    if (!m) return t.skip("mnist_quant.py wrote no PT2E PTQ model");
    const r = await row("torchc on PyTorch's PT2E PTQ model", m.file, {}, m.top1);
    assert.ok(Math.abs(r.top1 - m.top1) <= 0.3, `torchc ${r.top1} vs PyTorch ${m.top1}`);
  });

  it("fp8 E4M3 PTQ within 0.5 points of fp32", { skip: why }, async () => {
    const r = await row("torchc fp8 PTQ (percentile, 500 digits)", "mnist_fp32.pt2", {
      enabledPrecisions: ["fp8"],
      calibration: { data: calibration },
    });
    assert.ok(results.fp32 - r.top1 <= 0.5, `fp8 ${r.top1} vs fp32 ${results.fp32}`);
  });

  it("prints the table", { skip: why }, () => {
    console.log(
      [
        "",
        "| configuration | top-1 (2,000 held-out digits) | vs torchc fp32 | PyTorch |",
        "| --- | --- | --- | --- |",
        ...rows,
      ].join("\n"),
    );
  });
});

const skipImagenet = noGpu || skipImagenetPart;
describe("ImageNet-shaped models (random weights): int8 and fp8 against fp32", { skip: skipImagenet }, () => {
  const dir = mkdtempSync(join(tmpdir(), "torchc-imagenet-q-"));
  const exported = skipImagenet
    ? undefined
    : spawnSync("python3", [join(ROOT, "fixtures", "imagenet_quant.py"), dir], {
        encoding: "utf8",
        timeout: 300_000,
      });
  const why =
    skipImagenet ||
    (exported?.status === 0 ? false : `export failed: ${exported?.stderr?.split("\n").slice(-3).join(" ")}`);
  for (const name of ["resnet50", "efficientnet_b0"]) {
    it(`${name}: fp32 matches PyTorch; int8 and fp8 (calibrated on 8 inputs) reported as error and cosine`, {
      skip: why,
    }, async () => {
      const input = readNpy(join(dir, `${name}.input.npy`));
      const pytorch = readNpy(join(dir, `${name}.output.npy`));
      const model = await loadModel(join(dir, `${name}.pt2`));
      const outputs: Record<string, Tensor> = {};
      // int8 calibrates (through an fp32 engine) and writes the cache; fp8 reads the same ranges from it.
      // Few builds on purpose: each large-model build takes seconds and the whole GPU run has a time limit.
      const cache = join(dir, `${name}.scales.json`);
      for (const [label, options] of [
        ["fp32", {}],
        ["int8", { enabledPrecisions: ["int8"], calibration: { data: join(dir, "calib"), cache } }],
        ["fp8", { enabledPrecisions: ["fp8"], calibration: { cache } }],
      ] as const) {
        const t0 = performance.now();
        const m = await compile(model, { backend: "cuda", ...(options as CompileOptions) });
        const compileMs = performance.now() - t0;
        try {
          const [a] = await m.run([input]);
          const [b] = await m.run([input]);
          assert.deepEqual(
            Array.from(b.data as Float32Array),
            Array.from(a.data as Float32Array),
            `${label}: run twice`,
          );
          outputs[label] = a;
          const vsFp32 = outputs.fp32 ? compareTensors(a, outputs.fp32) : undefined;
          const vsTorch = compareTensors(a, pytorch);
          report(`${name} ${label}`, {
            relativeToPytorchFp32: vsTorch.relative,
            cosineToPytorchFp32: cosine(a, pytorch),
            relativeToTorchcFp32: vsFp32?.relative,
            compileMs: Math.round(compileMs),
          });
          assert.ok((a.data as Float32Array).every(Number.isFinite), `${label}: finite`);
        } finally {
          await m.dispose();
        }
      }
      assert.ok(compareTensors(outputs.fp32, pytorch).relative <= 1e-3, "torchc fp32 vs PyTorch");
    });
  }
  // calibration.npy holds 8 inputs; the folder form splits it into batches of the model's batch (1)
  if (!why) {
    mkdirSync(join(dir, "calib"), { recursive: true });
    copyFileSync(join(dir, "calibration.npy"), join(dir, "calib", "calibration.npy"));
  }
});

describe("real int8 / fp8 GEMMs (cuBLASLt) against the simulated path, PyTorch fp32 and fp16 speed", {
  skip: noGpu || onlyPart("kernels"),
}, () => {
  const M = 128;
  const layers: FloatLinear[] = [
    { k: 768, n: 3072, w: normals(3072 * 768, 11, 0.03), b: normals(3072, 12, 0.1) },
    { k: 3072, n: 768, w: normals(768 * 3072, 13, 0.02), b: normals(768, 14, 0.1) },
  ];
  const x = normals(M * 768, 15, 1);
  const torch = noGpu || onlyPart("kernels") ? "skipped" : pytorchStack(x, M, layers);

  for (const kind of ["int8", "fp8"] as const)
    for (const dtype of ["float16", "float32"] as const)
      it(`${kind}, ${dtype} in and out: each layer matches the simulated arithmetic on its input`, () => {
        const handle = createLtHandle();
        const workspace = DeviceBuffer.alloc(32 << 20);
        const stream = Stream.create();
        const levels = kind === "int8" ? 127 : E4M3_MAX;
        const owned: DeviceBuffer[] = [workspace];
        try {
          let input = uploadAs(x, dtype);
          owned.push(input);
          for (const [i, l] of layers.entries()) {
            const inValues = downloadAs(input, M * l.k, dtype);
            const scale = amax(inValues) / levels;
            const layer = quantizedLayer(handle, workspace, kind, l, M, dtype, scale, {
              fp8PerChannel: true,
            });
            const out = DeviceBuffer.alloc(M * l.n * (dtype === "float16" ? 2 : 4));
            owned.push(out);
            // the plan first, so a failing run below still shows which variant ran and what was refused
            report(`${kind} ${dtype} layer ${i} plan`, { variant: layer.variant, refused: layer.refused });
            try {
              layer.run(input, out, stream);
              stream.synchronize();
              const got = downloadAs(out, M * l.n, dtype);
              const want =
                kind === "int8"
                  ? int8Reference(inValues, M, l, int8Weights(l), scale)
                  : fp8Reference(inValues, M, l, layer.spec as Fp8LinearSpec);
              const err = relative(got, want);
              report(`${kind} ${dtype} layer ${i} vs simulated`, {
                variant: layer.variant,
                refused: layer.refused,
                relative: err,
              });
              // int8: exact int32 sums, the fp32 epilogue rounded as the reference (fp16: one output rounding);
              // fp8: Hopper's fp8 tensor cores accumulate in reduced precision between promotions to fp32
              const bound = kind === "int8" ? (dtype === "float16" ? 2e-3 : 1e-5) : 2e-3;
              assert.ok(err <= bound, `${kind} ${dtype} layer ${i}: ${err} > ${bound}`);
              // run twice: the same bits
              layer.run(input, out, stream);
              stream.synchronize();
              assert.deepEqual(Array.from(downloadAs(out, M * l.n, dtype)), Array.from(got));
            } finally {
              layer.destroy();
            }
            input = out;
          }
          if (typeof torch !== "string") {
            const y = downloadAs(input, M * 768, dtype);
            const c = cosineOf(y, torch);
            report(`${kind} ${dtype} stack vs PyTorch fp32`, { relative: relative(y, torch), cosine: c });
            assert.ok(c >= (kind === "int8" ? 0.995 : 0.99), `${kind} ${dtype}: cosine ${c} to PyTorch fp32`);
          } else report(`${kind} ${dtype} stack vs PyTorch fp32`, { skipped: torch });
        } finally {
          stream.synchronize();
          for (const b of owned) b.free();
          stream.destroy();
          destroyLtHandle(handle);
        }
      });

  it("a 1×1 convolution (NHWC, 8×64×14×14 → 128 channels) runs as an int8 GEMM over channels", () => {
    const g = {
      layout: "NHWC",
      n: 8,
      c: 64,
      h: 14,
      w: 14,
      k: 128,
      kernel: [1, 1],
      stride: [1, 1],
      padding: [0, 0],
      groups: 1,
    } as const;
    const M = g.n * g.h * g.w;
    const l: FloatLinear = { k: g.c, n: g.k, w: normals(g.k * g.c, 21, 0.1), b: normals(g.k, 22, 0.1) };
    const xs = normals(M * g.c, 23, 1);
    const scale = amax(xs) / 127;
    const q = int8Weights(l);
    const spec = pointwiseLinearSpec(g, {
      dtype: "float16",
      inputScale: scale,
      weight: q.q,
      weightScales: q.scales,
      bias: l.b,
    });
    const handle = createLtHandle();
    const workspace = DeviceBuffer.alloc(32 << 20);
    const stream = Stream.create();
    const x = uploadAs(xs, "float16");
    const out = DeviceBuffer.alloc(M * g.k * 2);
    const built = QuantizedLinear.create(handle, spec, workspace);
    try {
      if (!built.ok) throw new Error(built.reason);
      built.layer.run(x, out, stream);
      stream.synchronize();
      const got = downloadAs(out, M * g.k, "float16");
      const want = int8Reference(downloadAs(x, M * g.c, "float16"), M, l, q, scale);
      const err = relative(got, want);
      report("1x1 conv int8 GEMM vs simulated", { variant: built.layer.variant, relative: err });
      assert.ok(err <= 2e-3, `1×1 conv: ${err}`);
    } finally {
      if (built.ok) built.layer.destroy();
      for (const b of [workspace, x, out]) b.free();
      stream.destroy();
      destroyLtHandle(handle);
    }
  });

  it("a quantized layer captured in a CUDA graph replays to the same bits, for a new input too", () => {
    const l = layers[0];
    const handle = createLtHandle();
    const workspace = DeviceBuffer.alloc(32 << 20);
    const stream = Stream.create();
    const x1 = normals(M * l.k, 31, 1);
    const x2 = normals(M * l.k, 32, 1);
    const input = uploadAs(x1, "float16");
    const eager = DeviceBuffer.alloc(M * l.n * 2);
    const replayed = DeviceBuffer.alloc(M * l.n * 2);
    const owned = [workspace, input, eager, replayed];
    try {
      for (const kind of ["int8", "fp8"] as const) {
        const layer = quantizedLayer(
          handle,
          workspace,
          kind,
          l,
          M,
          "float16",
          4 / (kind === "int8" ? 127 : 448),
        );
        const graph = captureGraph(stream, () => layer.run(input, replayed, stream));
        try {
          const eagerOuts: Float64Array[] = [];
          for (const x of [x1, x2, x1]) {
            input.upload(Uint16Array.from(x, numberToFloat16Bits));
            layer.run(input, eager, stream);
            graph.launch(stream);
            stream.synchronize();
            const a = downloadAs(eager, M * l.n, "float16");
            eagerOuts.push(a);
            assert.deepEqual(
              Array.from(downloadAs(replayed, M * l.n, "float16")),
              Array.from(a),
              `${kind} replay`,
            );
          }
          // the new input reached the layer (else eager and replay agree on a stale output)
          assert.ok(relative(eagerOuts[1], eagerOuts[0]) > 0.1, `${kind}: x2's output equals x1's`);
          assert.deepEqual(Array.from(eagerOuts[2]), Array.from(eagerOuts[0]), `${kind}: x1 again`);
          report(`${kind} graph capture`, { nodes: graph.nodeCount, variant: layer.variant });
        } finally {
          graph.destroy();
          layer.destroy();
        }
      }
    } finally {
      stream.synchronize();
      for (const b of owned) b.free();
      stream.destroy();
      destroyLtHandle(handle);
    }
  });

  it("engine with TORCHC_QUANT_KERNELS=1: a quantized MLP's linear layers run as int8 GEMMs and match the int8 reference", async () => {
    const m = 64;
    const x1 = normals(m * 768, 51, 1);
    const x2 = normals(m * 768, 52, 1.5);
    const graph = quantizedMlp(x1, m);
    const network = convertGraph(graph);
    const inputs = [x1, x2].map((data): Tensor => ({ dtype: "float32", shape: [m, 768], data }));
    const refs = inputs.map((t) => toFloat64Array(interpret(graph, [t])[0]));
    assert.ok(relative(refs[0], refs[1]) > 0.1, "the reference depends on the input");
    const saved = process.env.TORCHC_QUANT_KERNELS;
    try {
      for (const precision of ["fp32", "fp16"] as const)
        for (const mode of ["simulated", "int8"] as const) {
          process.env.TORCHC_QUANT_KERNELS = mode === "int8" ? "1" : "0";
          const logs: string[] = [];
          const engine = await buildCudaEngine(network, { precision, log: (line) => logs.push(line) });
          try {
            const int8 = logs.filter((l) => l.startsWith("int8 GEMM:"));
            if (mode === "int8")
              assert.equal(int8.filter((l) => l.includes("→ int8")).length, 2, int8.join("; "));
            else assert.equal(int8.length, 0);
            const errs: number[] = [];
            for (const i of [0, 1, 0]) {
              const [y] = engine.run([inputs[i]]) as Tensor[];
              errs.push(relative(toFloat64Array(y), refs[i]));
            }
            report(`engine MLP ${precision} ${mode} vs int8 reference`, { relative: errs, int8 });
            // Not bit-exact in any mode: the hidden activation is requantized (int8, step max|h| / 127 ≈ 0.01
            // here) before the second layer, and a value that lands within an ulp of a rounding boundary of that
            // step may round the other way when computed by other arithmetic than the reference's. The
            // simulated path sums the dequantized products in a float GEMM (cuBLASLt's order and fused
            // multiply-adds, not the reference's f32(Σ int32) · alpha), fp16 stores the hidden in half; each
            // flipped element moves outputs by one step × a weight (≈ 1e-4 against max |y| ≈ 0.35 here). The
            // H100 run measured 6.1e-4 and 2.9e-3 for the simulated fp32 engine (x2 is 1.5× the calibration
            // input: more values at boundaries). fp16 rounds the hidden (and the dequantized input) to 11 bits
            // first, ~1e-4 absolute against a 0.01 step: a few percent of the hidden values flip, so its bound is
            // looser. A wrong scale, bias, ReLU or layout errs by 1e-1 or more.
            const bound = precision === "fp32" ? 5e-3 : 2e-2;
            for (const e of errs) assert.ok(e <= bound, `${precision} ${mode}: ${e} > ${bound}`);
            assert.equal(errs[0], errs[2], "the same input twice gives the same output");
          } finally {
            engine.dispose();
          }
        }
    } finally {
      if (saved === undefined) delete process.env.TORCHC_QUANT_KERNELS;
      else process.env.TORCHC_QUANT_KERNELS = saved;
    }
  });

  it("refuses misaligned sizes with the rule, before cuBLASLt is asked", () => {
    const handle = createLtHandle();
    const workspace = DeviceBuffer.alloc(1024);
    try {
      const l: FloatLinear = { k: 30, n: 8, w: normals(240, 1, 0.1), b: normals(8, 2, 0.1) };
      assert.throws(
        () => quantizedLayer(handle, workspace, "int8", l, 4, "float16", 0.1),
        /in_features 30 is not a multiple of 4/,
      );
    } finally {
      workspace.free();
      destroyLtHandle(handle);
    }
  });

  it("times int8 / fp8 / fp16 linear layers (768→3072, 3072→768; M = 1024, 4096)", () => {
    const stream = Stream.create();
    const rows: TimingRow[] = [];
    try {
      for (const m of [1024, 4096])
        for (const [k, n] of [
          [768, 3072],
          [3072, 768],
        ])
          rows.push(timeShape(m, k, n, stream));
    } finally {
      stream.destroy();
    }
    const ms = (v: number) => `${(v * 1000).toFixed(1)} µs`;
    console.log(
      [
        "",
        "| M | K→N | fp16 cuBLASLt (+bias) | int8 GEMM | int8 layer (quantize+GEMM+epilogue) | int8 variant | int8 layer / fp16 | fp8 GEMM (per-tensor, fast accum) | fp8 layer | fp8 variant | fp8 layer / fp16 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ...rows.map(
          (r) =>
            [
              `| ${r.m} | ${r.k}→${r.n} | ${ms(r.fp16Ms)}`,
              ...timingCells(r.int8, r.fp16Ms, true),
              ...timingCells(r.fp8, r.fp16Ms, true),
            ].join(" | ") + " |",
        ),
      ].join("\n"),
    );
    for (const r of rows) report("timing", { ...r });
    if (process.env.OUT)
      writeFileSync(join(process.env.OUT, "quant-kernels.json"), JSON.stringify(rows, null, 2));
  });
});

quantConvTests(noGpu || onlyPart("convs"), report);

/**
 * The generated int8 implicit-GEMM convolution (src/backends/cuda/codegen/conv-int8-igemm.ts) on the GPU (issue 14).
 *  1. The CPU-emulated test's cases (test/backends/cuda/igemm-reference.ts), compiled by NVRTC and run on the
 *     device: every output equals the reference (exact integers, then the fp32 epilogue step by step) exactly for
 *     int8 and fp16 outputs, within 1e-6 for fp32. This is what checks the mma.sync s8 fragment layout on real
 *     tensor cores: the CPU shim only restates it.
 *  2. In the engine (TORCHC_QUANT_KERNELS=1): two quantized 3×3 convolutions, plain and with a shortcut whose add
 *     rides the epilogue, and a residual block whose first convolution also writes the second's int8 input (its
 *     quantize kernel skipped: igemm-quantize-copy.ts), built with TORCHC_INT8_IGEMM=force (every int8 convolution on the generated kernel,
 *     checked against cuDNN at build) and unset (cuDNN's int8 graph): the stats say which ran, and both match the
 *     int8 reference (the interpreter's torchc.quantized_convolution) within the bound int8-engine uses.
 *   bash scripts/gpu.sh test igemm-conv
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildCudaEngine } from "../../src/backends/cuda/builder.js";
import { generateIgemmConvKernel } from "../../src/backends/cuda/codegen/conv-int8-igemm.js";
import { KernelCache } from "../../src/backends/cuda/device/kernel-cache.js";
import { KernelArgs, launch, type ParamType } from "../../src/backends/cuda/device/launch.js";
import { DeviceBuffer } from "../../src/backends/cuda/device/memory.js";
import { buildKernels } from "../../src/backends/cuda/device/module.js";
import { Stream } from "../../src/backends/cuda/device/stream.js";
import { assembleProgram } from "../../src/backends/cuda/kernels/generated.js";
import { convertGraph } from "../../src/converters/index.js";
import { type Tensor, toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/index.js";
import { defaultPipeline, runPipeline } from "../../src/passes/pipeline.js";
import { foldQuantizedLayers } from "../../src/passes/quantize-fold.js";
import { insertQuantization, quantizationSites } from "../../src/passes/quantize-insert.js";
import { compareTensors } from "../../src/util/compare.js";
import { IGEMM_CASES, igemmCaseData, igemmMismatch, outputValues } from "../backends/cuda/igemm-reference.js";
import { residualBlock } from "../quant/residual-block.js";
import { randomTensor } from "../quant/tiny-cnn.js";
import { twoConvs } from "../quant/two-convs.js";
import { gpuReporter, openGpu, recordTestStarts } from "./support.js";

const { skip } = openGpu();
const report = gpuReporter("igemm-conv");
recordTestStarts();

describe("the generated int8 implicit-GEMM convolution on the device", { skip }, () => {
  for (const [i, t] of IGEMM_CASES.entries())
    it(`${t.name}: every output equals the reference`, () => {
      const data = igemmCaseData(t, 11 + i);
      const k = generateIgemmConvKernel(`igemm_gpu_${i}`, t.p, t.c);
      // the engine's way: one program with the fp16 prelude (NVRTC includes nothing by itself)
      const program = assembleProgram([k], new Set(["float16"]));
      const built = buildKernels(program.source, program.symbols, {
        cache: new KernelCache({ disk: false }),
      });
      const stream = Stream.create();
      const buffers = new Map<string, DeviceBuffer>();
      // the copy's qinv is a float scalar after the tensors
      const args = new KernelArgs([
        ...k.params.map((): ParamType => "ptr"),
        ...(data.qinv === undefined ? [] : ["f32" as const]),
      ]);
      try {
        const kernel = built.kernels[program.symbols[0]];
        if (k.sharedBytes > 48 * 1024) kernel.setMaxDynamicSharedBytes(k.sharedBytes);
        const hosts = { ...data.operands, y: data.y, ...(data.q ? { q: data.q } : {}) };
        for (const [name, host] of Object.entries(hosts)) buffers.set(name, DeviceBuffer.from(host));
        for (const [j, q] of k.params.entries()) args.set(j, buffers.get(q.tensor)!.ptr);
        if (data.qinv !== undefined) args.set(k.params.length, data.qinv);
        launch(kernel, { grid: k.grid, block: k.block, sharedBytes: k.sharedBytes, stream }, args);
        stream.synchronize();
        buffers.get("y")!.download(data.y);
        const mismatch = igemmMismatch(t.p, outputValues(data.y), data.want);
        report(t.name, { mismatch: mismatch ?? "none", values: data.want.length });
        assert.equal(mismatch, undefined);
        if (data.q && data.qWant) {
          buffers.get("q")!.download(data.q);
          assert.equal(igemmMismatch({ ...t.p, output: "int8" }, Array.from(data.q), data.qWant), undefined);
        }
      } finally {
        args.free();
        for (const b of buffers.values()) b.free();
        stream.destroy();
        built.module.unload();
      }
    });
});

/** Runs `body` with the environment `vars` set (undefined: unset), restoring it after. */
async function withEnv<T>(vars: Record<string, string | undefined>, body: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) delete process.env[k];
      else process.env[k] = x;
    }
  };
  set(vars);
  try {
    return await body();
  } finally {
    set(saved);
  }
}

describe("int8 convolutions on the generated kernel in the engine (TORCHC_INT8_IGEMM)", { skip }, () => {
  const graphs = {
    "two convs": twoConvs(false),
    shortcut: twoConvs(true),
    "residual block": residualBlock(),
  };
  for (const [name, source] of Object.entries(graphs)) {
    const lowered = runPipeline(source, defaultPipeline({})).graph;
    const amax = new Map(quantizationSites(lowered).map((s) => [s.input, 2]));
    const graph = foldQuantizedLayers(insertQuantization(lowered, amax, "int8"));
    const inputs = [7, 8].map((seed, i) => randomTensor([2, 16, 12, 12], seed, i === 0 ? 1.5 : 2));
    const refs = inputs.map((x) => interpret(graph, [x])[0]);
    for (const precision of ["fp32", "fp16"] as const)
      it(`${name}, ${precision}: forced onto the generated kernel, it matches the int8 reference as cuDNN does`, async () => {
        const errors: Record<string, number[]> = {};
        for (const mode of ["cudnn", "generated"] as const) {
          const logs: string[] = [];
          const engine = await withEnv(
            { TORCHC_QUANT_KERNELS: "1", TORCHC_INT8_IGEMM: mode === "generated" ? "force" : undefined },
            () =>
              buildCudaEngine(convertGraph(graph), {
                precision,
                channelsLast: true,
                log: (l) => logs.push(l),
              }),
          );
          try {
            const int8Steps = engine.stats.stepKinds["conv(int8)"] ?? 0;
            const generated =
              engine.stats.igemmConvs?.layers.filter((l) => l.ran === "generated").length ?? 0;
            const copies = engine.stats.igemmConvs?.copies ?? 0;
            report(`${name} ${precision} ${mode}`, {
              int8Steps,
              generated,
              copies,
              layers: engine.stats.igemmConvs?.layers,
              steps: engine.steps,
            });
            assert.ok(int8Steps >= 2, `int8 steps: ${int8Steps}; ${engine.stats.libraryRefusals.join("; ")}`);
            assert.equal(generated, mode === "generated" ? int8Steps : 0, logs.join("\n"));
            // the residual block's first convolution also writes the int8 input of the second (its quantize skipped)
            if (name === "residual block" && mode === "generated") assert.ok(copies >= 1, logs.join("\n"));
            errors[mode] = [0, 1, 0].map(
              (i) => compareTensors(engine.run([inputs[i]])[0] as Tensor, refs[i]).relative,
            );
            assert.equal(errors[mode][0], errors[mode][2], "the same input twice gives the same output");
          } finally {
            engine.dispose();
          }
        }
        report(`${name} ${precision} error vs int8 reference`, errors);
        // as int8-engine.gpu.test.ts: exact int32 sums; a requantized value on a rounding boundary may flip one step
        const bound = precision === "fp32" ? 5e-3 : 2e-2;
        for (const e of errors.generated) assert.ok(e <= bound, `generated ${precision}: ${e} > ${bound}`);
      });
    if (name === "residual block")
      it("residual block: the int8 copy gives the same bits as the quantize kernel it replaces", async () => {
        const outputs: number[][] = [];
        for (const copy of ["1", "0"]) {
          const engine = await withEnv(
            { TORCHC_QUANT_KERNELS: "1", TORCHC_INT8_IGEMM: "force", TORCHC_INT8_IGEMM_COPY: copy },
            () => buildCudaEngine(convertGraph(graph), { precision: "fp16", channelsLast: true }),
          );
          try {
            assert.equal(engine.stats.igemmConvs?.copies ?? 0, copy === "1" ? 1 : 0);
            outputs.push(inputs.flatMap((x) => [...toFloat64Array(engine.run([x])[0] as Tensor)]));
          } finally {
            engine.dispose();
          }
        }
        const differ = outputs[0].filter((v, i) => !Object.is(v, outputs[1][i])).length;
        report("residual block copy against quantize kernel", { values: outputs[0].length, differ });
        assert.equal(differ, 0);
      });
  }
});

/**
 * The CUDA backend against the network reference interpreter, per layer family and end to end: every check
 * builds an engine, poisons its outputs, runs it on fresh random inputs (twice, with different data) and
 * compares ‖out − ref‖ / ‖ref‖ (fp32 with TF32 off ≤ 1e-4, fp16 ≤ 1e-2; integer and bool outputs exactly).
 * Runs under Node's test runner on the GPU machine (`bash scripts/gpu.sh test cuda-engine`).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { buildCudaEngine } from "../../src/backends/cuda/builder.js";
import { fill } from "../../src/backends/cuda/device/memory.js";
import { familyCases } from "../../src/backends/cuda/testing/families.js";
import { mbconvNet, randomTensor, rng, seBlockNet } from "../../src/backends/cuda/testing/nets.js";
import type { DType } from "../../src/ir/dtype.js";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import type { Network } from "../../src/network/network.js";
import { runNetworkReference } from "../../src/network/reference/index.js";
import { gpuReporter, openGpu, recordTestStarts } from "./support.js";

const { skip } = openGpu();

const report = gpuReporter("cuda-engine");

recordTestStarts();

let seed = 1000;

function inputFor(net: Network, name: string): Tensor {
  const t = net.tensors[name];
  const r = rng(seed++);
  if (t.dtype === "bool")
    return tensorFromNumbers(
      "bool",
      t.shape,
      Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, () => (r() < 0.7 ? 1 : 0)),
    );
  if (t.dtype === "int64" || t.dtype === "int32") {
    const n = t.shape.reduce((a, b) => a * b, 1);
    return tensorFromNumbers(
      t.dtype,
      t.shape,
      Array.from({ length: n }, () => Math.floor(r() * 7) - 3),
    );
  }
  return randomTensor(r, t.dtype, t.shape, 1.5);
}

function relError(got: Tensor, want: Tensor): number {
  const g = toFloat64Array(got);
  const w = toFloat64Array(want);
  assert.equal(g.length, w.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < g.length; i++) {
    if (Number.isNaN(g[i]) !== Number.isNaN(w[i])) return Number.POSITIVE_INFINITY;
    if (Number.isNaN(w[i])) continue;
    if (!Number.isFinite(w[i]) || !Number.isFinite(g[i])) {
      if (g[i] !== w[i]) return Number.POSITIVE_INFINITY;
      continue;
    }
    num += (g[i] - w[i]) ** 2;
    den += w[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

interface CheckOptions {
  precision?: "fp32" | "fp16";
  tol?: number;
  inputs?: (net: Network) => Tensor[];
}

async function check(name: string, net: Network, opts: CheckOptions = {}): Promise<void> {
  const precision = opts.precision ?? "fp32";
  const tol = opts.tol ?? (precision === "fp32" ? 1e-4 : 1e-2);
  const engine = await buildCudaEngine(net, { precision, kernelCache: false });
  try {
    const errors: number[] = [];
    for (let round = 0; round < 2; round++) {
      const inputs = opts.inputs ? opts.inputs(net) : net.inputs.map((n) => inputFor(net, n));
      for (const b of engine.outputBuffers) fill(b, 0xff, { stream: engine.stream });
      const got = engine.run(inputs);
      const want = runNetworkReference(net, inputs);
      got.forEach((g, i) => {
        const dt: DType = g.dtype;
        const exact = !(dt === "float32" || dt === "float16" || dt === "bfloat16" || dt === "float64");
        const err = relError(g, want[i]);
        errors.push(err);
        assert.ok(
          exact ? err === 0 : err <= tol,
          `${name} [${precision}] output ${i} round ${round}: relative error ${err} > ${exact ? 0 : tol}`,
        );
      });
    }
    report(name, {
      precision,
      maxRelError: Math.max(...errors),
      steps: engine.stats.steps,
      kinds: engine.stats.stepKinds,
      nodes: engine.stats.graphNodes,
    });
  } finally {
    engine.dispose();
  }
}

describe("CUDA backend: layer families", { skip }, () => {
  for (const c of familyCases()) {
    for (const precision of c.precisions) {
      it(`${c.name} ${precision}`, async () => {
        await check(c.name, c.net, { precision });
      });
    }
  }
});

describe("CUDA backend: whole networks", { skip }, () => {
  it("an MBConv block (conv-bn-silu, depthwise, squeeze-excite, residual, linear head)", async () => {
    await check("mbconv", mbconvNet(2, 16, 12, 21));
    await check("mbconv", mbconvNet(2, 16, 12, 22), { precision: "fp16" });
    await check("mbconv", mbconvNet(3, 8, 9, 23), { precision: "fp16" });
  });

  it("generated 1×1 convolutions, the SE scale read in place and SE pooling in the depthwise kernel (fp16)", async () => {
    // thread per item with a residual; warp per item; output channels not a multiple of 8; 10 samples (separate
    // gemv kernels reading the tile sums); a 56² map (112 tiles of 28 pixels).
    await check("se-block thread", seBlockNet(1, 24, 48, 24, 9, 41), { precision: "fp16" });
    await check("se-block warp", seBlockNet(2, 40, 144, 40, 7, 42), { precision: "fp16" });
    await check("se-block cout 20", seBlockNet(1, 12, 36, 20, 6, 43), { precision: "fp16" });
    await check("se-block 10 samples", seBlockNet(10, 16, 48, 16, 7, 44), { precision: "fp16" });
    await check("se-block 56²", seBlockNet(1, 24, 144, 24, 56, 45), { precision: "fp16" });
  });

  it("zero-copy binding: outputs written into caller memory, inputs read from it", async () => {
    const net = mbconvNet(1, 8, 6, 31);
    const engine = await buildCudaEngine(net, { precision: "fp32", kernelCache: false });
    try {
      const inputs = net.inputs.map((n) => inputFor(net, n));
      const want = engine.run(inputs);
      const { DeviceBuffer } = await import("../../src/backends/cuda/device/memory.js");
      const ins = engine.inputs.map((io, i) =>
        DeviceBuffer.from(new Uint8Array(inputs[i].data.buffer, inputs[i].data.byteOffset, io.bytes)),
      );
      const outs = engine.outputs.map((io) => DeviceBuffer.alloc(Math.max(256, io.bytes)).fill(0xff));
      for (const [i, b] of ins.entries()) engine.bindInput(i, b);
      for (const [i, b] of outs.entries()) engine.bindOutput(i, b);
      engine.launch();
      engine.synchronize();
      outs.forEach((b, i) => {
        const bytes = b.download(new Uint8Array(engine.outputs[i].bytes));
        assert.deepEqual(
          bytes,
          new Uint8Array(want[i].data.buffer, want[i].data.byteOffset, engine.outputs[i].bytes),
        );
      });
      for (const b of [...ins, ...outs]) b.free();
    } finally {
      engine.dispose();
    }
  });
});

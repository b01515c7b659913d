/**
 * The LibTorch fallback on the GPU: every fixture model (both export IRs) run as ONE fallback segment through
 * `aoti_torch_call_dispatcher` and compared with PyTorch's stored output (max|Δ|/max|ref| ≤ 1e-4, fp32 with
 * TF32 off through `_convolution(allow_tf32=False)`); zero-copy hand-off (inputs wrapped in place, outputs
 * written into caller buffers); every rewrite of scalar-rewrites.ts / op-rewrites.ts against the aten
 * reference; in-place ops never writing their input; a LibTorch refusal surfacing as a TorchcError.
 * Runs under Node's test runner on the GPU machine: `bash scripts/gpu.sh test torch-fallback`.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { CudaContext } from "../../src/backends/cuda/device/context.js";
import { DeviceBuffer, download } from "../../src/backends/cuda/device/memory.js";
import {
  createTorchFallbackRunner,
  deviceValue,
  TorchFallbackError,
} from "../../src/backends/torch/index.js";
import { loadPt2 } from "../../src/frontends/pt2/load.js";
import { GraphBuilder } from "../../src/ir/builder.js";
import { DTYPE_BYTES } from "../../src/ir/dtype.js";
import { numel, type Tensor, tensorBytes, tensorFromBytes, tensorFromNumbers } from "../../src/ir/tensor.js";
import { evaluateNode } from "../../src/ops/index.js";
import { readNpy } from "../../src/util/npy.js";
import { caseGraph, REWRITE_CASES, randomTensor, rng } from "../backends/torch/cases.js";
import { relMaxError } from "../backends/torch/compare.js";
import { gpuReporter, openGpu, recordTestStarts } from "./support.js";
import { torchEnv, wholeGraph } from "./torch-support.js";

const { skip } = openGpu();

const report = gpuReporter("torch-fallback");

recordTestStarts();

/** The repository root (the folder holding fixtures/models), from wherever the compiled test lives. */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, "fixtures", "models", "manifest.json"))) return dir;
    dir = dirname(dir);
  }
  return process.cwd();
}

const MODELS = join(repoRoot(), "fixtures", "models");

interface Fixture {
  file: string;
  input: string;
  output: string;
}

function fixtures(): Fixture[] {
  const path = join(MODELS, "manifest.json");
  if (!existsSync(path)) return [];
  const m = JSON.parse(readFileSync(path, "utf8")) as {
    models: { input?: string; output?: string; archives: Record<string, string> }[];
  };
  const out: Fixture[] = [];
  for (const model of m.models) {
    if (!model.input || !model.output) continue;
    for (const k of ["export", "core"]) {
      const file = model.archives[k];
      if (file && existsSync(join(MODELS, file)))
        out.push({ file, input: model.input, output: model.output });
    }
  }
  return out;
}

const env = torchEnv;

describe("LibTorch fallback: each fixture model as one segment", { skip }, () => {
  it("reports the card", async () => {
    const e = await env();
    const info = CudaContext.get(0).info;
    report("device", { gpu: info.name, sm: `${info.computeCapability.join(".")}`, torch: e.lib.version });
  });

  for (const fx of fixtures()) {
    it(`${fx.file} matches PyTorch within 1e-4`, async () => {
      const graph = loadPt2(join(MODELS, fx.file)).graph;
      const x = readNpy(join(MODELS, fx.input));
      const ref = readNpy(join(MODELS, fx.output));
      const t0 = performance.now();
      const runner = createTorchFallbackRunner(wholeGraph(graph), await env());
      const buildMs = performance.now() - t0;
      try {
        const outs = await runner.run(new Map([[graph.inputs[0], x]]));
        const got = outs.get(graph.outputs[0]) as Tensor;
        assert.deepEqual(got.shape, ref.shape);
        const err = relMaxError(got, ref);
        // Device-resident timing: input uploaded once, outputs into runner buffers, stream-synchronized.
        const inBuf = DeviceBuffer.from(tensorBytes(x));
        try {
          const inputs = new Map([[graph.inputs[0], deviceValue(inBuf, graph.values[graph.inputs[0]])]]);
          runner.runDevice(inputs);
          const reps = 20;
          const t1 = performance.now();
          for (let i = 0; i < reps; i++) runner.launchDevice(inputs);
          runner.stream.synchronize();
          const msPerRun = (performance.now() - t1) / reps;
          const again = runner.runDevice(inputs).get(graph.outputs[0]);
          const bytes = new Uint8Array(numel(ref.shape) * DTYPE_BYTES[ref.dtype]);
          if (!again) throw new Error("no output on the second run");
          download(again, bytes);
          const second = relMaxError(tensorFromBytes(got.dtype, got.shape, bytes), got);
          report(fx.file, {
            steps: runner.plan.steps.length,
            graphNodes: graph.nodes.length,
            constants: Object.keys(runner.plan.constants).length,
            maxRelErr: Number(err.toExponential(3)),
            repeatDiff: second,
            buildMs: Math.round(buildMs),
            msPerRun: Number(msPerRun.toFixed(3)),
            usPerCall: Number(((msPerRun * 1000) / runner.plan.steps.length).toFixed(1)),
          });
          assert.equal(second, 0, "a second run gave different numbers");
        } finally {
          inBuf.free();
        }
        assert.ok(err <= 1e-4, `${fx.file}: max relative error ${err} > 1e-4`);
      } finally {
        runner.dispose();
      }
    });
  }
});

describe("LibTorch fallback: zero-copy device hand-off", { skip }, () => {
  it("wraps the caller's input buffer in place and writes the output into the caller's buffer", async () => {
    const fx = fixtures().find((f) => f.file === "mlp.pt2") ?? fixtures()[0];
    const graph = loadPt2(join(MODELS, fx.file)).graph;
    const x = readNpy(join(MODELS, fx.input));
    const ref = readNpy(join(MODELS, fx.output));
    const runner = createTorchFallbackRunner(wholeGraph(graph), await env());
    const inName = graph.inputs[0];
    const outName = graph.outputs[0];
    const outType = graph.values[outName];
    const outBytes = numel(outType.shape) * DTYPE_BYTES[outType.dtype];
    const inBuf = DeviceBuffer.from(tensorBytes(x));
    const outBuf = DeviceBuffer.alloc(outBytes + 256).fill(0xff);
    try {
      const seen = new Map<string, bigint>();
      const outs = runner.runDevice(new Map([[inName, deviceValue(inBuf, graph.values[inName])]]), {
        outputs: new Map([[outName, outBuf]]),
        onTensor: (e) => seen.set(e.role, e.tensor.dataPtr()),
      });
      const out = outs.get(outName);
      assert.ok(out);
      assert.equal(seen.get("input"), inBuf.ptr, "the input tensor does not alias the caller's buffer");
      assert.equal(seen.get("output"), outBuf.ptr, "the output tensor does not alias the caller's buffer");
      assert.equal(out.mem, outBuf);
      assert.equal(out.ptr, outBuf.ptr);
      const bytes = outBuf.download(new Uint8Array(outBytes));
      const err = relMaxError(tensorFromBytes(outType.dtype, outType.shape, bytes), ref);
      // Bare device memory in (type from the segment), runner-owned buffer out.
      const own = runner.runDevice(new Map([[inName, inBuf]])).get(outName);
      assert.ok(own);
      assert.notEqual(own.ptr, outBuf.ptr);
      const bytes2 = new Uint8Array(outBytes);
      download(own, bytes2);
      assert.deepEqual(bytes2, bytes);
      report("zero-copy", { model: fx.file, inputAliased: true, outputAliased: true, maxRelErr: err });
      assert.ok(err <= 1e-4);
    } finally {
      runner.dispose();
      inBuf.free();
      outBuf.free();
    }
  });

  it("runs an in-place op on a segment input without writing the caller's buffer; lists in and out", async () => {
    const b = new GraphBuilder();
    const f32 = (...shape: number[]) => ({ dtype: "float32" as const, shape });
    b.addInput("x", f32(2, 6));
    b.addNode(
      "aten.relu_.default",
      { self: { kind: "tensor", name: "x" } },
      [{ name: "r", type: f32(2, 6) }],
      {},
      "relu_",
    );
    b.addNode(
      "aten.split.Tensor",
      {
        self: { kind: "tensor", name: "x" },
        split_size: { kind: "int", value: 2 },
        dim: { kind: "int", value: 1 },
      },
      [
        { name: "s0", type: f32(2, 2) },
        { name: "s1", type: f32(2, 2) },
        { name: "s2", type: f32(2, 2) },
      ],
      {},
      "split",
    );
    b.addNode(
      "aten.cat.default",
      { tensors: { kind: "tensors", names: ["s2", "s0"] }, dim: { kind: "int", value: 0 } },
      [{ name: "c", type: f32(4, 2) }],
      {},
      "cat",
    );
    b.setOutputs(["c", "x"]);
    const graph = b.build();
    const x = tensorFromNumbers("float32", [2, 6], [-1, 2, -3, 4, -5, 6, 7, -8, 9, -10, 11, -12]);
    const runner = createTorchFallbackRunner(wholeGraph(graph), await env());
    const inBuf = DeviceBuffer.from(tensorBytes(x));
    try {
      const outs = runner.runDevice(new Map([["x", inBuf]]));
      const read = (name: string) => {
        const v = outs.get(name);
        assert.ok(v);
        const bytes = new Uint8Array(numel(v.type.shape) * 4);
        download(v, bytes);
        return tensorFromBytes("float32", v.type.shape, bytes);
      };
      const relu = [0, 2, 0, 4, 0, 6, 7, 0, 9, 0, 11, 0];
      assert.deepEqual(Array.from(read("x").data as Float32Array), relu);
      assert.deepEqual(Array.from(read("c").data as Float32Array), [0, 6, 11, 0, 0, 2, 7, 0]);
      const untouched = inBuf.download(new Uint8Array(x.data.byteLength));
      assert.deepEqual(untouched, tensorBytes(x), "the in-place op wrote the caller's input buffer");
      report("inplace-and-lists", { ok: true, steps: runner.plan.steps.map((s) => s.call.op) });
    } finally {
      runner.dispose();
      inBuf.free();
    }
  });

  it("turns a LibTorch refusal into a TorchFallbackError naming the node, and keeps working", async () => {
    const b = new GraphBuilder();
    const f32 = (...shape: number[]) => ({ dtype: "float32" as const, shape });
    b.addInput("x", f32(4));
    b.addNode(
      "aten.div.Tensor_mode",
      {
        self: { kind: "tensor", name: "x" },
        other: { kind: "tensor", name: "x" },
        rounding_mode: { kind: "string", value: "sideways" },
      },
      [{ name: "y", type: f32(4) }],
      { modulePath: "head.odd" },
      "bad_div",
    );
    b.setOutputs(["y"]);
    const runner = createTorchFallbackRunner(wholeGraph(b.build()), await env());
    const x = tensorFromNumbers("float32", [4], [1, 2, 3, 4]);
    try {
      await assert.rejects(runner.run(new Map([["x", x]])), (e: unknown) => {
        assert.ok(e instanceof TorchFallbackError, String(e));
        assert.match((e as Error).message, /bad_div.*head\.odd/);
        report("refusal", { message: (e as Error).message.split("\n")[0] });
        return true;
      });
    } finally {
      runner.dispose();
    }
    const fx = fixtures().find((f) => f.file === "mlp.core.pt2") ?? fixtures()[0];
    const graph = loadPt2(join(MODELS, fx.file)).graph;
    const good = createTorchFallbackRunner(wholeGraph(graph), await env());
    try {
      const outs = await good.run(new Map([[graph.inputs[0], readNpy(join(MODELS, fx.input))]]));
      assert.ok(relMaxError(outs.get(graph.outputs[0]) as Tensor, readNpy(join(MODELS, fx.output))) <= 1e-4);
    } finally {
      good.dispose();
    }
  });
});

describe("LibTorch fallback: every rewrite against the aten reference", { skip }, () => {
  it("scalar rewrites, op rewrites, in-place and convolution cases", async () => {
    const failures: string[] = [];
    const rows: Record<string, number | string> = {};
    for (const [i, k] of REWRITE_CASES.entries()) {
      try {
        const { graph, node } = caseGraph(k);
        const r = rng(500 + i);
        const inputs = new Map<string, Tensor>(
          graph.inputs.map((n) => [n, randomTensor(r, graph.values[n])]),
        );
        const want = evaluateNode(node, (n) => inputs.get(n) as Tensor);
        const runner = createTorchFallbackRunner(wholeGraph(graph), await env());
        try {
          const got = await runner.run(inputs);
          let worst = 0;
          graph.outputs.forEach((o, j) => {
            const g = got.get(o) as Tensor;
            assert.equal(g.dtype, want[j].dtype, `${k.label}: dtype`);
            assert.deepEqual(g.shape, want[j].shape, `${k.label}: shape`);
            if (k.typeOnly) return;
            const err = relMaxError(g, want[j]);
            const exact = !(g.dtype.startsWith("float") || g.dtype === "bfloat16");
            const tol = exact ? 0 : g.dtype === "float16" ? 1e-3 : 1e-5;
            worst = Math.max(worst, err);
            if (!(err <= tol)) failures.push(`${k.label}: output ${j} error ${err} > ${tol}`);
          });
          rows[k.label] = worst;
        } finally {
          runner.dispose();
        }
      } catch (e) {
        failures.push(`${k.label}: ${(e as Error).message.split("\n")[0]}`);
        rows[k.label] = "threw";
      }
    }
    report("rewrites", { cases: REWRITE_CASES.length, failures: failures.length, maxRelErr: rows });
    assert.deepEqual(failures, []);
  });
});

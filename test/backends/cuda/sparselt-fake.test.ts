/**
 * The cuSPARSELt plan and the build step that chooses it, through koffi against the fake libraries
 * (test/ffi/fakes: "device" memory is host memory, fake_cusparselt.c computes the fp16 sparse linear from the
 * compressed weight, the fake event clock advances by one tick per record, and a record captured into a graph
 * ticks at each replay). Checks the numbers against a host product of the same fp16 values, the 2:4 refusal, the
 * search's workspace, and that the build keeps the faster of sparse and dense, timed by graph replay, with both
 * times in the report. Skipped without a C compiler.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CudaContext } from "../../../src/backends/cuda/device/context.js";
import { CudaEvent } from "../../../src/backends/cuda/device/event.js";
import { DeviceBuffer } from "../../../src/backends/cuda/device/memory.js";
import {
  buildSparseLtPlan,
  destroySparseLtPlan,
  runSparseLtPlan,
  SparseLtHandle,
  searchSparseLtPlan,
  streamCell,
} from "../../../src/backends/cuda/device/sparselt-plan.js";
import { Stream } from "../../../src/backends/cuda/device/stream.js";
import type { ConvStep, MatmulStep } from "../../../src/backends/cuda/fuse/steps.js";
import type { ConvOperands } from "../../../src/backends/cuda/kernels/conv-cudnn.js";
import { SparseLtMatmul } from "../../../src/backends/cuda/kernels/matmul-sparselt.js";
import {
  chooseSparseMatmuls,
  type EngineMatmul,
  SPARSE_TIMING,
  sparseWeightsFor,
} from "../../../src/backends/cuda/sparse-select.js";
import { formatSparseSummary } from "../../../src/backends/cuda/sparse-weights.js";
import { randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { CUSPARSE_ORDER, OPAQUE_BYTES, SPARSELT_MATMUL_DESC } from "../../../src/ffi/cusparselt.js";
import { CUSPARSELT, CusparseLtError, clearDiscoveryCache } from "../../../src/ffi/index.js";
import { koffi } from "../../../src/ffi/koffi.js";
import { CudaError } from "../../../src/ffi/status.js";
import { type Tensor, tensorBytes, tensorFromNumbers, toFloat64Array } from "../../../src/ir/tensor.js";
import { buildFakes } from "../../ffi/fakes/build.js";
import { conv1x1Net, linearNet, planOf, prune24 } from "./sparse-nets.js";

const fakes = buildFakes();
const suite = fakes ? describe : describe.skip;

beforeAll(() => {
  if (!fakes) return;
  process.env.TORCHC_LIBRARY_PATH = fakes;
  process.env.TORCHC_PYTHON = "none";
  clearDiscoveryCache();
  CUSPARSELT.forget();
  CudaContext.get(0);
});

afterAll(() => {
  if (fakes) rmSync(fakes, { recursive: true, force: true });
});

const half = (t: Tensor) => tensorFromNumbers("float16", t.shape, toFloat64Array(t));
const f16bytes = (t: Tensor) => tensorBytes(half(t));

/** act(x·Wᵀ + b) on the host from the fp16-rounded values, in float64. */
function reference(x: Tensor, w: Tensor, b: Tensor | undefined, relu: boolean): Float64Array {
  const [m, k] = x.shape;
  const n = w.shape[0];
  const xv = toFloat64Array(half(x));
  const wv = toFloat64Array(half(w));
  const bv = b ? toFloat64Array(half(b)) : undefined;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let acc = bv ? bv[j] : 0;
      for (let p = 0; p < k; p++) acc += xv[i * k + p] * wv[j * k + p];
      out[i * n + j] = relu && acc < 0 ? 0 : acc;
    }
  return out;
}

function download16(buf: DeviceBuffer, count: number): Float64Array {
  const bytes = buf.download(new Uint8Array(count * 2));
  return toFloat64Array({ dtype: "float16", shape: [count], data: new Uint16Array(bytes.buffer) } as never);
}

function maxRelError(got: Float64Array, want: Float64Array): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return err / scale;
}

suite("matrix descriptors as cuSPARSELt documents them (the fake refuses what the real library refuses)", () => {
  /** Status of cusparseLtDenseDescriptorInit with these arguments, and the parameter the fake refused. */
  function dense(rows: number, cols: number, ld: number, alignment: number, order: number) {
    const k = koffi();
    const handle = k.alloc("uint8_t", OPAQUE_BYTES) as unknown as bigint;
    const mat = k.alloc("uint8_t", OPAQUE_BYTES) as unknown as bigint;
    const refusal = k.load(CUSPARSELT.load().path).func("const char *fake_cusparselt_last_refusal(void)");
    try {
      expect(CUSPARSELT.fn.cusparseLtInit(handle)).toBe(0);
      const f16 = 2;
      const rc = CUSPARSELT.fn.cusparseLtDenseDescriptorInit(
        handle,
        mat,
        rows,
        cols,
        ld,
        alignment,
        f16,
        order,
      );
      const why = rc === 0 ? "" : (refusal() as string);
      if (rc === 0) CUSPARSELT.fn.cusparseLtMatDescriptorDestroy(mat);
      CUSPARSELT.fn.cusparseLtDestroy(handle);
      return { rc, why };
    } finally {
      k.free(mat as never);
      k.free(handle as never);
    }
  }

  it("uses cusparse.h's cusparseOrder_t values: COL = 1, ROW = 2", () => {
    expect(CUSPARSE_ORDER).toEqual({ COL: 1, ROW: 2 });
  });

  it("refuses order 0 (what the first H100 run passed for the column-major y), as parameter 8", () => {
    expect(dense(48, 64, 48, 16, 0)).toEqual({ rc: 3, why: "order" });
    expect(dense(48, 64, 48, 16, 3)).toEqual({ rc: 3, why: "order" });
  });

  it("wants ld ≥ rows column-major and ld ≥ cols row-major, and the alignment in bytes (a multiple of 16)", () => {
    // y of the 64×48×128 plan: column-major [N=48, M=64], ld = N
    expect(dense(48, 64, 48, 16, CUSPARSE_ORDER.COL).rc).toBe(0);
    expect(dense(48, 64, 32, 16, CUSPARSE_ORDER.COL)).toEqual({ rc: 3, why: "ld" });
    // x: row-major [M=64, K=128], ld = K; the same numbers with ld = M are too short a row
    expect(dense(64, 128, 128, 16, CUSPARSE_ORDER.ROW).rc).toBe(0);
    expect(dense(64, 128, 64, 16, CUSPARSE_ORDER.ROW)).toEqual({ rc: 3, why: "ld" });
    // 8 elements of fp16 are 16 bytes, but the alignment is given in bytes
    expect(dense(64, 128, 128, 8, CUSPARSE_ORDER.ROW)).toEqual({ rc: 3, why: "alignment" });
    expect(dense(64, 128, 128, 0, CUSPARSE_ORDER.ROW)).toEqual({ rc: 3, why: "alignment" });
  });

  it("wants the opaque structs 16-byte aligned (cusparseLt.h: alignas(16) uint8_t data[512]), as allocated", () => {
    expect(OPAQUE_BYTES).toBeGreaterThanOrEqual(512);
    const k = koffi();
    const block = k.alloc("uint8_t", OPAQUE_BYTES + 16) as unknown as bigint;
    const refusal = k.load(CUSPARSELT.load().path).func("const char *fake_cusparselt_last_refusal(void)");
    try {
      expect(block % 16n).toBe(0n);
      expect(CUSPARSELT.fn.cusparseLtInit(block + 8n)).toBe(3);
      expect(refusal()).toBe("handle alignment");
    } finally {
      k.free(block as never);
    }
    // the plan's own structs pass (SparseLtHandle.create checks the alignment before cusparseLtInit)
    SparseLtHandle.create().destroy();
  });
});

suite("the cuSPARSELt plan through the fake library", () => {
  const m = 32;
  const n = 16;
  const k = 64;
  const r = rng(11);
  const x = randomTensor(r, "float32", [m, k], 1);
  const w = prune24(randomTensor(r, "float32", [n, k], 0.2));
  const b = randomTensor(r, "float32", [n], 0.5);

  it("compresses once, searches, and computes relu(x·Wᵀ + b) from the compressed weight", () => {
    const handle = SparseLtHandle.create();
    const stream = Stream.create();
    const weight = DeviceBuffer.from(f16bytes(w));
    const xd = DeviceBuffer.from(f16bytes(x));
    const yd = DeviceBuffer.alloc(m * n * 2);
    const ws = DeviceBuffer.alloc(1 << 16);
    try {
      expect(handle.version()).toBe(801);
      const problem = { dtype: "float16", m, n, k, bias: true, activation: "relu" } as const;
      const plan = buildSparseLtPlan(handle, problem, { weight: weight.ptr, bias: f16bytes(b) }, stream);
      expect(plan.workspaceBytes).toBe(0);
      // the dense weight is no longer read: the plan runs from its compressed copy
      weight.fill(0);
      const operands = { x: xd.ptr, y: yd.ptr, workspace: ws.ptr };
      searchSparseLtPlan(handle, plan, operands, stream);
      // the fake's search picks configuration 2 with split-K 2, which needs 4 bytes per output of workspace
      expect(plan.algorithm).toEqual({ id: 2, count: 4, splitK: 2 });
      expect(plan.workspaceBytes).toBe(m * n * 4);
      yd.fill(0);
      runSparseLtPlan(handle, plan, operands, streamCell(stream));
      const want = reference(x, w, b, true);
      expect(maxRelError(download16(yd, m * n), want)).toBeLessThan(2e-3);
      expect(want.some((v) => v === 0) && want.some((v) => v > 0)).toBe(true);
      destroySparseLtPlan(plan);
      expect(() => runSparseLtPlan(handle, plan, operands, streamCell(stream))).toThrow(/after destroy/);
    } finally {
      for (const buf of [weight, xd, yd, ws]) buf.free();
      stream.destroy();
      handle.destroy();
    }
  });

  it("checks every operand's 16-byte alignment before the call; the fake, like the library, refuses the rest", () => {
    const handle = SparseLtHandle.create();
    const stream = Stream.create();
    const weight = DeviceBuffer.from(f16bytes(w));
    const xd = DeviceBuffer.alloc(m * k * 2 + 16);
    const yd = DeviceBuffer.alloc(m * n * 2 + 16);
    const ws = DeviceBuffer.alloc(1 << 16);
    const lib = koffi().load(CUSPARSELT.load().path);
    const calls = lib.func("int fake_cusparselt_calls(int which)");
    const refusal = lib.func("const char *fake_cusparselt_last_refusal(void)");
    try {
      const problem = { dtype: "float16", m, n, k, bias: false, activation: "none" } as const;
      expect(() => buildSparseLtPlan(handle, problem, { weight: weight.ptr + 2n }, stream)).toThrow(
        /^cuSPARSELt needs 16-byte aligned operands: weight at 0x[0-9a-f]+$/,
      );
      const plan = buildSparseLtPlan(handle, problem, { weight: weight.ptr }, stream);
      const good = { x: xd.ptr, y: yd.ptr, workspace: ws.ptr };
      const [matmuls, searches] = [calls(0), calls(1)];
      expect(() => searchSparseLtPlan(handle, plan, { ...good, x: xd.ptr + 8n }, stream)).toThrow(
        /16-byte aligned operands: x at/,
      );
      expect(() => runSparseLtPlan(handle, plan, { ...good, y: yd.ptr + 2n }, streamCell(stream))).toThrow(
        /16-byte aligned operands: y at/,
      );
      expect(() =>
        runSparseLtPlan(handle, plan, { ...good, workspace: ws.ptr + 4n }, streamCell(stream)),
      ).toThrow(/16-byte aligned operands: workspace at/);
      expect([calls(0), calls(1)]).toEqual([matmuls, searches]);
      // what the library does with a misaligned d_B: INVALID_VALUE
      const one = new Float32Array([1]);
      const zero = new Float32Array([0]);
      const f = CUSPARSELT.fn;
      const cell = streamCell(stream);
      const run = (x: bigint, y: bigint) =>
        f.cusparseLtMatmul(
          handle.ptr,
          plan.structs.plan,
          one,
          plan.compressed.ptr,
          x,
          zero,
          y,
          y,
          null,
          cell,
          1,
        );
      expect(run(xd.ptr + 8n, yd.ptr)).toBe(3);
      expect(refusal()).toBe("d_B alignment");
      expect(run(xd.ptr, yd.ptr + 8n)).toBe(3);
      expect(refusal()).toBe("d_C alignment");
      expect(run(xd.ptr, yd.ptr)).toBe(0);
      destroySparseLtPlan(plan);
    } finally {
      for (const buf of [weight, xd, yd, ws]) buf.free();
      stream.destroy();
      handle.destroy();
    }
  });

  it("refuses a GELU epilogue before any call: cuSPARSELt fuses GELU only for int8/fp8, not fp16", () => {
    const handle = SparseLtHandle.create();
    const stream = Stream.create();
    const weight = DeviceBuffer.from(f16bytes(w));
    const refusal = koffi()
      .load(CUSPARSELT.load().path)
      .func("const char *fake_cusparselt_last_refusal(void)");
    try {
      const problem = { dtype: "float16", m, n, k, bias: false, activation: "gelu" } as const;
      let err: unknown;
      try {
        buildSparseLtPlan(handle, problem, { weight: weight.ptr }, stream);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CusparseLtError);
      expect((err as Error).message).toMatch(
        /GELU epilogue: cuSPARSELt fuses GELU only for int8\/fp8 inputs, not float16/,
      );
      // the fake, like the library, refuses the attribute on an fp16 matmul descriptor
      const plan = buildSparseLtPlan(
        handle,
        { ...problem, activation: "none" },
        { weight: weight.ptr },
        stream,
      );
      const on = new Int32Array([1]);
      const gelu = SPARSELT_MATMUL_DESC.ACTIVATION_GELU;
      expect(
        CUSPARSELT.fn.cusparseLtMatmulDescSetAttribute(handle.ptr, plan.structs.matmul, gelu, on, 4),
      ).toBe(10);
      expect(refusal()).toBe("GELU with fp16/bf16");
      destroySparseLtPlan(plan);
    } finally {
      weight.free();
      stream.destroy();
      handle.destroy();
    }
  });

  it("refuses a weight that is not 2:4 with cuSPARSELt's own check, and a misaligned shape before any call", () => {
    const handle = SparseLtHandle.create();
    const stream = Stream.create();
    const dense = DeviceBuffer.from(f16bytes(randomTensor(r, "float32", [n, k], 0.2)));
    try {
      const problem = { dtype: "float16", m, n, k, bias: false, activation: "none" } as const;
      expect(() => buildSparseLtPlan(handle, problem, { weight: dense.ptr }, stream)).toThrow(
        /cusparseLtSpMMAPruneCheck failed: CUSPARSE_STATUS_INVALID_VALUE \(3\): the weight is not 2:4 sparse along K/,
      );
      let err: unknown;
      try {
        buildSparseLtPlan(handle, { ...problem, k: 40 }, { weight: dense.ptr }, stream);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(CusparseLtError);
      expect((err as Error).message).toMatch(/shape not aligned: K=40 not a multiple of 16/);
    } finally {
      dense.free();
      stream.destroy();
      handle.destroy();
    }
  });
});

/**
 * A stand-in for the dense cuBLASLt plan: each call costs `ticks` event records on the fake clock, or
 * `eagerTicks` when called outside a capture (the host's per-call cost, which graph replay leaves out). It counts
 * its calls inside and outside captures; `refuseCapture` makes a call inside a capture fail as a library's
 * synchronizing call does (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED).
 */
class DensePlan {
  destroyed = false;
  bound: bigint[] = [];
  calls = { captured: 0, eager: 0 };
  // kept for the plan's life: a record captured into a graph records this event at each replay
  private readonly event = CudaEvent.create();
  constructor(
    private readonly ticks: number,
    private readonly opts: { eagerTicks?: number; refuseCapture?: boolean } = {},
  ) {}
  bind(a: bigint, b: bigint, d: bigint, bias: bigint | undefined, ws: bigint): void {
    this.bound = [a, b, d, bias ?? 0n, ws];
  }
  execute(stream: Stream): void {
    const captured = stream.isCapturing();
    if (captured && this.opts.refuseCapture) throw new CudaError("cuStreamSynchronize", 900);
    this.calls[captured ? "captured" : "eager"]++;
    const ticks = captured ? this.ticks : (this.opts.eagerTicks ?? this.ticks);
    for (let i = 0; i < ticks; i++) this.event.record(stream);
  }
  destroy(): void {
    this.destroyed = true;
    this.event.destroy();
  }
}

suite("choosing sparse or dense per layer at build time (fake timing)", () => {
  function setup(
    denseTicks: number,
    spec: Parameters<typeof linearNet>[0] = { m: 32, n: 16, k: 64 },
    opts: ConstructorParameters<typeof DensePlan>[1] = {},
  ) {
    const { net, weight, bias } = linearNet(spec);
    const { plan, matmuls } = planOf(net);
    const dense = new DensePlan(denseTicks, opts);
    const map = new Map<MatmulStep, EngineMatmul>([[matmuls[0]!, dense as unknown as EngineMatmul]]);
    return { plan, step: matmuls[0]!, dense, map, weight, bias };
  }

  it("keeps sparse where it times faster, destroys the dense plan, and the kept plan computes the layer", () => {
    const s = setup(3);
    const lines: string[] = [];
    const summary = chooseSparseMatmuls(s.plan, s.map, { mode: true }, 1 << 20, (l) => lines.push(l));
    expect(summary?.weightsChecked).toBe(1);
    expect(summary?.layers).toHaveLength(1);
    const layer = summary!.layers[0]!;
    expect(layer).toMatchObject({ ran: "sparse", shape: "M=32 N=16 K=64", algorithm: "2 of 4, split-K 2" });
    expect(layer.denseMs!).toBeGreaterThan(layer.sparseMs!);
    expect(s.dense.destroyed).toBe(true);
    const chosen = s.map.get(s.step);
    expect(chosen).toBeInstanceOf(SparseLtMatmul);
    expect(lines).toEqual(["sparse weights: 1 of 1 2:4-sparse layers run sparse (1 weights checked)"]);
    // the engine binds the dense operands' addresses; the plan reads its own weight and bias copies
    const x = randomTensor(rng(5), "float32", [32, 64], 1);
    const xd = DeviceBuffer.from(f16bytes(x));
    const yd = DeviceBuffer.alloc(32 * 16 * 2);
    const ws = DeviceBuffer.alloc(chosen!.workspaceBytes);
    const stream = Stream.create();
    try {
      chosen!.bind(xd.ptr, 0n, yd.ptr, undefined, ws.ptr);
      chosen!.execute(stream);
      expect(maxRelError(download16(yd, 32 * 16), reference(x, s.weight, s.bias, true))).toBeLessThan(2e-3);
      expect(() => chosen!.bind(xd.ptr + 2n, 0n, yd.ptr, undefined, ws.ptr)).toThrow(/16-byte aligned/);
    } finally {
      chosen!.destroy();
      for (const buf of [xd, yd, ws]) buf.free();
      stream.destroy();
    }
  });

  it("keeps dense when sparse is not faster, with both times as the reason", () => {
    const s = setup(0);
    const summary = chooseSparseMatmuls(s.plan, s.map, { mode: "prefer" }, 1 << 20, () => {});
    const layer = summary!.layers[0]!;
    expect(layer.ran).toBe("dense");
    expect(layer.reason).toMatch(/^timing lost: sparse \d+\.\d{4} ms vs dense cuBLASLt \d+\.\d{4} ms$/);
    expect(layer.sparseMs).toBe(layer.denseMs);
    expect(s.dense.destroyed).toBe(false);
    expect(s.map.get(s.step)).toBe(s.dense);
    s.dense.destroy();
  });

  it("chooses from graph replays: the calls are captured, and eager-only cost does not count", () => {
    // slow only when called eagerly: eager timing would say sparse; in the engine's graph it costs nothing
    const eagerSlow = setup(0, undefined, { eagerTicks: 5 });
    const a = chooseSparseMatmuls(eagerSlow.plan, eagerSlow.map, { mode: true }, 1 << 20, () => {});
    expect(a!.layers[0]).toMatchObject({ ran: "dense" });
    expect(a!.layers[0]!.reason).toMatch(/^timing lost: sparse (\S+) ms vs dense cuBLASLt \1 ms$/);
    // one eager call before capture, then one graph of SPARSE_TIMING.perGraph calls
    expect(eagerSlow.dense.calls).toEqual({ eager: 1, captured: SPARSE_TIMING.perGraph });
    eagerSlow.dense.destroy();
    // slow only inside the graph: eager timing would call it a tie (dense); the replays make sparse win
    const graphSlow = setup(1, undefined, { eagerTicks: 0 });
    const b = chooseSparseMatmuls(graphSlow.plan, graphSlow.map, { mode: true }, 1 << 20, () => {});
    const layer = b!.layers[0]!;
    expect(layer).toMatchObject({ ran: "sparse", algorithm: "2 of 4, split-K 2" });
    // per call: a tick of 2 ms per dense record; the replay's start and end records (2 ms) are spread over the calls
    const { perGraph, replays } = SPARSE_TIMING;
    expect(layer.sparseMs).toBeCloseTo(2 / (perGraph * replays), 6);
    expect(layer.denseMs).toBeCloseTo(2 + 2 / (perGraph * replays), 6);
    expect(graphSlow.dense.calls).toEqual({ eager: 1, captured: perGraph });
    expect(graphSlow.dense.destroyed).toBe(true);
    (graphSlow.map.get(graphSlow.step) as SparseLtMatmul).destroy();
  });

  it("falls back to eager timing when a plan cannot be captured, and says so on the layer's line", () => {
    const wins = setup(3, undefined, { refuseCapture: true });
    const a = chooseSparseMatmuls(wins.plan, wins.map, { mode: true }, 1 << 20, () => {});
    const layer = a!.layers[0]!;
    expect(layer.ran).toBe("sparse");
    expect(layer.denseMs!).toBeGreaterThan(layer.sparseMs!);
    expect(wins.dense.calls.captured).toBe(0);
    const line = formatSparseSummary(a!)[1]!;
    expect(line).toMatch(
      /^ {2}sparse: 'net\/matmul' M=32 N=16 K=64 \(\d+\.\d{4} ms vs dense \d+\.\d{4} ms, \d+\.\d{2}× faster\), algorithm 2 of 4, split-K 2; eager timing: cuStreamSynchronize failed/,
    );
    expect(line).toContain("CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED (900)");
    (wins.map.get(wins.step) as SparseLtMatmul).destroy();
    const tie = setup(0, undefined, { refuseCapture: true });
    const b = chooseSparseMatmuls(tie.plan, tie.map, { mode: true }, 1 << 20, () => {});
    expect(b!.layers[0]!.ran).toBe("dense");
    expect(b!.layers[0]!.reason).toMatch(
      /^timing lost: sparse \S+ ms vs dense cuBLASLt \S+ ms; eager timing: cuStreamSynchronize failed/,
    );
    expect(tie.map.get(tie.step)).toBe(tie.dense);
    tie.dense.destroy();
  });

  it("reports misaligned and unavailable layers as dense without touching the library", () => {
    const misaligned = setup(3, { m: 20, n: 16, k: 64 });
    const a = chooseSparseMatmuls(misaligned.plan, misaligned.map, { mode: true }, 1 << 20, () => {});
    expect(a!.layers[0]).toMatchObject({ ran: "dense", shape: "M=20 N=16 K=64" });
    expect(a!.layers[0]!.reason).toMatch(/^shape not aligned: M=20/);
    const off = setup(3);
    const b = chooseSparseMatmuls(
      off.plan,
      off.map,
      { mode: "prefer", unavailable: "no cuSPARSELt" },
      1 << 20,
      () => {},
    );
    expect(b!.layers[0]).toMatchObject({ ran: "dense", reason: "no cuSPARSELt" });
    expect(off.map.get(off.step)).toBe(off.dense);
    expect(chooseSparseMatmuls(off.plan, off.map, undefined, 1 << 20, () => {})).toBeUndefined();
    misaligned.dense.destroy();
    off.dense.destroy();
  });

  it("finds the library and a capable GPU, and names the GPU when it has no sparse tensor cores", () => {
    const fake = { info: { name: "Fake GPU 0", computeCapability: [9, 0] as [number, number] } };
    expect(sparseWeightsFor(true, fake)).toEqual({ mode: true });
    const turing = { info: { name: "Tesla T4", computeCapability: [7, 5] as [number, number] } };
    expect(() => sparseWeightsFor(true, turing)).toThrow(
      /^sparseWeights: GPU 'Tesla T4' \(sm_75\) has no sparse tensor cores/,
    );
    expect(sparseWeightsFor("prefer", turing)?.unavailable).toMatch(/compute capability 8\.0/);
  });

  it("with no cuSPARSELt anywhere, true fails in one line naming the library and the pip package", () => {
    const saved = process.env.TORCHC_LIBRARY_PATH;
    process.env.TORCHC_LIBRARY_PATH = "/nonexistent/torchc-libs";
    clearDiscoveryCache();
    CUSPARSELT.forget();
    try {
      const fake = { info: { name: "Fake GPU 0", computeCapability: [9, 0] as [number, number] } };
      let msg = "";
      try {
        sparseWeightsFor(true, fake);
      } catch (e) {
        msg = (e as Error).message;
      }
      expect(msg).not.toContain("\n");
      expect(msg).toMatch(
        /^sparseWeights: cannot load cuSPARSELt \(libcusparseLt\.so\.0\): not found in \d+ places/,
      );
      expect(msg).toContain("pip install nvidia-cusparselt-cu13");
      expect(msg).toMatch(
        /pass sparseWeights: "prefer" \(--sparse-weights=prefer\) to compile dense instead$/,
      );
      expect(sparseWeightsFor("prefer", fake)?.unavailable).toMatch(/^cannot load cuSPARSELt/);
    } finally {
      process.env.TORCHC_LIBRARY_PATH = saved;
      clearDiscoveryCache();
      CUSPARSELT.forget();
    }
  });
});

/** A stand-in for a convolution's cuDNN plan: records `ticks` events per call and keeps what it was bound to. */
class DenseConv {
  bound: ConvOperands | undefined;
  workspaceBytes = 0;
  candidateCount = 1;
  /** Where each tune() found the plan bound (a tuning build's plan still holds several cuDNN engines). */
  tunedOn: (bigint | undefined)[] = [];
  tune() {
    this.tunedOn.push(this.bound?.x);
    this.candidateCount = 1;
    return { timed: 0, switched: false, firstMs: Number.NaN, bestMs: Number.NaN, failures: [] };
  }
  private readonly event = CudaEvent.create();
  constructor(private readonly ticks: number) {}
  bind(ops: ConvOperands): void {
    this.bound = ops;
  }
  execute(stream: Stream): void {
    for (let i = 0; i < this.ticks; i++) this.event.record(stream);
  }
  destroy(): void {
    this.event.destroy();
  }
}

suite("1×1 convolutions as sparse GEMMs (fake timing, fake cuSPARSELt)", () => {
  /** relu(conv(x) + b + x) for x [2, 16, 8, 8] stored channels-last: 128 rows of 16. */
  const { net, weight, bias } = conv1x1Net({ residual: true });
  const { plan } = planOf(net);
  const step = plan.steps.filter((s) => s.kind === "conv").at(-1) as ConvStep;
  const x = randomTensor(rng(21), "float32", [128, 16], 1);

  it("keeps cuSPARSELt when it times faster and computes relu(x·Wᵀ + b + residual) with the residual as C", () => {
    const dense = new DenseConv(3);
    const sparse = new Map<ConvStep, SparseLtMatmul>();
    const summary = chooseSparseMatmuls(plan, new Map(), { mode: true }, 1 << 20, () => {}, {
      dense: new Map([[step, dense]]),
      sparse,
    });
    expect(summary!.layers).toHaveLength(1);
    expect(summary!.layers[0]).toMatchObject({ ran: "sparse", shape: "1×1 conv M=128 N=16 K=16" });
    // cuDNN was timed with its own operand order: x, w, bias, y and one buffer for the residual addition
    expect(dense.bound?.bias).toBeDefined();
    expect(dense.bound?.extra).toHaveLength(1);
    const chosen = sparse.get(step)!;
    expect(chosen.plan.problem).toMatchObject({ residual: true, bias: true, activation: "relu" });
    const xd = DeviceBuffer.from(f16bytes(x));
    const yd = DeviceBuffer.alloc(128 * 16 * 2);
    const ws = DeviceBuffer.alloc(Math.max(256, chosen.workspaceBytes));
    const stream = Stream.create();
    try {
      // a plan that adds a residual must be bound with one, and only then
      expect(() => chosen.bind(xd.ptr, 0n, yd.ptr, undefined, ws.ptr)).toThrow(/run without one/);
      chosen.bind(xd.ptr, 0n, yd.ptr, undefined, ws.ptr, xd.ptr);
      chosen.execute(stream);
      const w2 = tensorFromNumbers("float32", [16, 16], toFloat64Array(weight));
      const linear = reference(x, w2, bias, false);
      const xs = toFloat64Array(half(x));
      const want = linear.map((v, i) => Math.max(0, v + xs[i]));
      expect(maxRelError(download16(yd, 128 * 16), want)).toBeLessThan(2e-3);
      // without the residual the answer differs: the C operand was read
      expect(
        maxRelError(
          download16(yd, 128 * 16),
          linear.map((v) => Math.max(0, v)),
        ),
      ).toBeGreaterThan(0.05);
    } finally {
      chosen.destroy();
      dense.destroy();
      for (const buf of [xd, yd, ws]) buf.free();
      stream.destroy();
    }
  });

  it("keeps cuDNN when cuSPARSELt is not faster, naming cuDNN in the reason", () => {
    const dense = new DenseConv(0);
    const sparse = new Map<ConvStep, SparseLtMatmul>();
    const summary = chooseSparseMatmuls(plan, new Map(), { mode: "prefer" }, 1 << 20, () => {}, {
      dense: new Map([[step, dense]]),
      sparse,
    });
    expect(summary!.layers[0]!.ran).toBe("dense");
    expect(summary!.layers[0]!.reason).toMatch(/^timing lost: sparse \S+ ms vs dense cuDNN \S+ ms$/);
    expect(sparse.size).toBe(0);
    expect(dense.tunedOn).toEqual([]);
    dense.destroy();
  });

  it("with several cuDNN engines still in the running (tuneConvs), sparse is timed against the tuned one", () => {
    const dense = new DenseConv(0);
    dense.candidateCount = 4;
    const sparse = new Map<ConvStep, SparseLtMatmul>();
    chooseSparseMatmuls(plan, new Map(), { mode: "prefer" }, 1 << 20, () => {}, {
      dense: new Map([[step, dense]]),
      sparse,
    });
    // tuned once, on the timing's scratch (bound first), before the pair was timed
    expect(dense.tunedOn).toHaveLength(1);
    expect(dense.tunedOn[0]).toBe(dense.bound?.x);
    expect(dense.candidateCount).toBe(1);
    dense.destroy();
  });
});

/**
 * End-to-end smoke test of every native library on a real GPU, through src/ffi and the device runtime:
 * driver memory, NVRTC + launch, CUDA graphs, cuBLASLt, cuDNN and LibTorch. Every check compares numbers
 * against a CPU reference. Runs under Node's test runner (`bash scripts/gpu.sh test`).
 *
 * Without a usable GPU the whole file is skipped, unless TORCHC_REQUIRE_GPU=1 (set by scripts/gpu.sh), which
 * turns that into a failure. Set TORCHC_GPU_REPORT to a file to get one JSON line per measurement.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  arg,
  BlasLt,
  buildConvPlan,
  buildKernels,
  CudaEvent,
  Cudnn,
  captureGraph,
  copyDevice,
  DeviceArgumentError,
  DeviceBuffer,
  download,
  downloadAsync,
  KernelArgs,
  LibTorch,
  launch,
  PinnedBuffer,
  Stream,
  type TorchTensor,
  timeOnStream,
  uploadAsync,
} from "../../src/backends/cuda/device/index.js";
import { CUBLASLT, CUDA, CUDNN, NVRTC, TORCH_CPU, TORCH_CUDA, TorchShimError } from "../../src/ffi/index.js";
import { float16BitsToNumber, numberToFloat16Bits } from "../../src/ir/half.js";
import { gpuReporter, openGpu, recordTestStarts } from "./support.js";

// ----------------------------------------------------------------------------------------- harness

const { ctx, skip } = openGpu();

const report = gpuReporter("ffi.gpu");

// A native crash kills the whole file without naming the test: record each start first (synchronously).
recordTestStarts();

/** Deterministic uniform values in [lo, hi). */
function uniform(n: number, seed: number, lo = -0.5, hi = 0.5): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((s >>> 8) / 2 ** 24) * (hi - lo);
  }
  return out;
}

function toHalf(values: Float32Array): Uint16Array {
  return Uint16Array.from(values, numberToFloat16Bits);
}

function fromHalf(bits: Uint16Array): Float32Array {
  return Float32Array.from(bits, float16BitsToNumber);
}

/** Rounds through fp16, as the GPU sees fp16 inputs. */
function roundHalf(values: Float32Array): Float32Array {
  return fromHalf(toHalf(values));
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "length mismatch");
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return m;
}

function assertClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number): number {
  const err = maxAbsDiff(got, want);
  assert.ok(
    err <= tol,
    `${name}: max |error| ${err} exceeds ${tol} (first values got ${Array.from(got).slice(0, 4)}, want ${Array.from(want).slice(0, 4)})`,
  );
  return err;
}

const silu = (v: number) => v / (1 + Math.exp(-v));

const toFree: { free(): void }[] = [];
function keep<T extends { free(): void }>(x: T): T {
  toFree.push(x);
  return x;
}

after(() => {
  for (const x of toFree.reverse()) {
    try {
      x.free();
    } catch {
      // best effort
    }
  }
});

// ----------------------------------------------------------------------------------------- driver

describe("CUDA driver", { skip }, () => {
  it("initializes the primary context and reports the device", () => {
    const info = ctx!.info;
    report("device", { ...info, library: CUDA.path, arch: ctx!.arch });
    assert.ok(info.computeCapability[0] >= 7, `compute capability ${info.computeCapability} is too old`);
    assert.ok(info.totalBytes > 1 << 30);
    const mem = ctx!.memInfo();
    assert.ok(mem.free > 0 && mem.free <= mem.total);
  });

  it("round-trips memory: upload, download, memset, device copies, pinned async copies", () => {
    const n = 1 << 18;
    const host = Uint32Array.from({ length: n }, (_, i) => (i * 2654435761) >>> 0);
    const a = keep(DeviceBuffer.from(host));
    assert.deepEqual(a.download(new Uint32Array(n)), host);
    a.fill(0xab, { offset: 16, bytes: 8 });
    const bytes = a.download(new Uint8Array(32));
    assert.deepEqual(Array.from(bytes.subarray(16, 24)), new Array(8).fill(0xab));
    assert.equal(bytes[24], new Uint8Array(host.buffer)[24]);
    const b = keep(DeviceBuffer.alloc(n * 4));
    copyDevice(b, a);
    assert.deepEqual(b.download(new Uint32Array(n)), a.download(new Uint32Array(n)));
    const stream = Stream.create();
    const pinned = keep(PinnedBuffer.alloc(4096));
    pinned.as(Float32Array).set(uniform(1024, 7));
    const c = keep(DeviceBuffer.alloc(4096));
    uploadAsync(c, pinned, stream);
    const back = keep(PinnedBuffer.alloc(4096));
    downloadAsync(c, back, stream);
    stream.synchronize();
    assert.deepEqual(back.as(Float32Array), pinned.as(Float32Array));
    assert.throws(() => a.upload(new Uint8Array(n * 4 + 1)), DeviceArgumentError);
    stream.destroy();
  });
});

// ----------------------------------------------------------------------------------------- NVRTC

const KERNELS = `
#include <cuda_fp16.h>
template <typename T>
__global__ void axpb(T *y, const T *x, float a, float b, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = T(float(x[i]) * a + b);
}
extern "C" __global__ void add_one(float *p, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) p[i] += 1.0f;
}
extern "C" __global__ void empty_kernel() {}
`;

describe("NVRTC + launch", { skip }, () => {
  it("compiles a templated fp16 kernel, launches it, and matches the CPU", () => {
    const built = buildKernels(KERNELS, ["axpb<__half>", "add_one", "empty_kernel"]);
    report("nvrtc", {
      library: NVRTC.path,
      compileMs: Math.round(built.program.compileMs),
      cubinBytes: built.program.image.byteLength,
      lowered: built.program.loweredNames,
      registers: built.kernels["axpb<__half>"].registers,
    });
    assert.equal(built.program.kind, "cubin");
    assert.match(built.kernels["axpb<__half>"].symbol, /^_Z4axpbI6__halfE/);
    const n = 1000;
    const x = roundHalf(uniform(n, 1, -4, 4));
    const dx = keep(DeviceBuffer.from(toHalf(x)));
    const dy = keep(DeviceBuffer.alloc(n * 2).fill(0));
    const args = keep(new KernelArgs(["ptr", "ptr", "f32", "f32", "i32"]).setAll([dy, dx, 1.5, -0.25, n]));
    launch(built.kernels["axpb<__half>"], { grid: Math.ceil(n / 256), block: 256 }, args);
    const y = fromHalf(dy.download(new Uint16Array(n)));
    const want = roundHalf(x.map((v) => v * 1.5 - 0.25));
    const err = assertClose("axpb<__half>", y, want, 4e-3);
    report("nvrtc.axpb", { maxAbsError: err });
    assert.equal(buildKernels(KERNELS, ["axpb<__half>", "add_one", "empty_kernel"]).cacheHit, "memory");
  });

  it("launches through the reusable argument arena at a few µs of host time each", () => {
    const { kernels } = buildKernels(KERNELS, ["empty_kernel", "add_one"]);
    const stream = Stream.create();
    const args = keep(new KernelArgs([]));
    const reps = 2000;
    for (let i = 0; i < 100; i++) launch(kernels.empty_kernel, { grid: 1, block: 32, stream }, args);
    stream.synchronize();
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) launch(kernels.empty_kernel, { grid: 1, block: 32, stream }, args);
    const hostUs = ((performance.now() - t0) * 1000) / reps;
    stream.synchronize();
    report("launch", { hostUsPerLaunch: +hostUs.toFixed(2) });
    assert.ok(hostUs < 100, `a launch took ${hostUs} µs of host time`);
    stream.destroy();
  });
});

// ----------------------------------------------------------------------------------------- graphs

describe("CUDA graph", { skip }, () => {
  it("captures 10 launches and replays them with the captured arguments", () => {
    const { kernels } = buildKernels(KERNELS, ["add_one"]);
    const n = 4096;
    const buf = keep(DeviceBuffer.alloc(n * 4).fill(0));
    const stream = Stream.create();
    const args = keep(new KernelArgs(["ptr", "i32"]).setAll([buf, n]));
    const graph = captureGraph(stream, () => {
      for (let i = 0; i < 10; i++) launch(kernels.add_one, { grid: n / 256, block: 256, stream }, args);
    });
    assert.equal(graph.nodeCount, 10);
    stream.synchronize();
    assert.equal(buf.download(new Float32Array(1))[0], 0, "capture must not run the kernels");
    for (let i = 0; i < 5; i++) graph.launch(stream);
    stream.synchronize();
    const values = buf.download(new Float32Array(n));
    assert.ok(
      values.every((v) => v === 50),
      `expected 50 everywhere, got ${values.slice(0, 4)}`,
    );
    const ms = timeOnStream(stream, () => graph.launch(stream), { warmup: 5, reps: 50 });
    report("graph", { nodes: graph.nodeCount, usPerReplay: +(ms * 1000).toFixed(2) });
    graph.destroy();
    stream.destroy();
  });

  it("times work with events", () => {
    const stream = Stream.create();
    const buf = keep(DeviceBuffer.alloc(64 << 20));
    const start = CudaEvent.create().record(stream);
    buf.fill(1, { stream });
    const end = CudaEvent.create().record(stream);
    end.synchronize();
    const ms = end.elapsedSince(start);
    report("event", { memset64MiBms: +ms.toFixed(4) });
    assert.ok(ms > 0 && ms < 1000);
    start.destroy();
    end.destroy();
    stream.destroy();
  });
});

// ----------------------------------------------------------------------------------------- cuBLASLt

describe("cuBLASLt", { skip }, () => {
  const M = 64;
  const N = 96;
  const K = 128;
  const x = roundHalf(uniform(M * K, 11));
  const w = roundHalf(uniform(N * K, 12));
  const bias = roundHalf(uniform(N, 13, -1, 1));

  function reference(act: "none" | "relu"): Float32Array {
    const y = new Float32Array(M * N);
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let acc = bias[j]!;
        for (let p = 0; p < K; p++) acc += x[i * K + p]! * w[j * K + p]!;
        y[i * N + j] = act === "relu" ? Math.max(0, acc) : acc;
      }
    return y;
  }

  it("computes fp16 nn.Linear with bias (and bias+ReLU) like the CPU", () => {
    const lt = BlasLt.create();
    const dx = keep(DeviceBuffer.from(toHalf(x)));
    const dw = keep(DeviceBuffer.from(toHalf(w)));
    const db = keep(DeviceBuffer.from(toHalf(bias)));
    const dy = keep(DeviceBuffer.alloc(M * N * 2));
    for (const activation of ["none", "relu"] as const) {
      lt.linear({
        x: dx,
        weight: dw,
        bias: db,
        out: dy,
        m: M,
        inFeatures: K,
        outFeatures: N,
        dtype: "float16",
        activation,
      });
      ctx!.synchronize();
      const err = assertClose(
        `linear fp16 ${activation}`,
        fromHalf(dy.download(new Uint16Array(M * N))),
        reference(activation),
        2e-2,
      );
      report("cublaslt.linear.fp16", {
        activation,
        maxAbsError: err,
        library: CUBLASLT.path,
        version: BlasLt.version(),
      });
    }
    lt.destroy();
  });

  it("computes fp32 nn.Linear with bias, also inside a CUDA graph", () => {
    const lt = BlasLt.create();
    const dx = keep(DeviceBuffer.from(x));
    const dw = keep(DeviceBuffer.from(w));
    const db = keep(DeviceBuffer.from(bias));
    const dy = keep(DeviceBuffer.alloc(M * N * 4).fill(0));
    const stream = Stream.create();
    const run = () =>
      lt.linear({
        x: dx,
        weight: dw,
        bias: db,
        out: dy,
        m: M,
        inFeatures: K,
        outFeatures: N,
        dtype: "float32",
        stream,
      });
    run();
    stream.synchronize();
    const err = assertClose("linear fp32", dy.download(new Float32Array(M * N)), reference("none"), 1e-3);
    dy.fill(0);
    const graph = captureGraph(stream, run);
    graph.launch(stream);
    stream.synchronize();
    const errGraph = assertClose(
      "linear fp32 (graph)",
      dy.download(new Float32Array(M * N)),
      reference("none"),
      1e-3,
    );
    const ms = timeOnStream(stream, run, { reps: 50 });
    report("cublaslt.linear.fp32", {
      maxAbsError: err,
      maxAbsErrorGraph: errGraph,
      usPerCall: +(ms * 1000).toFixed(2),
    });
    graph.destroy();
    stream.destroy();
    lt.destroy();
  });
});

// ----------------------------------------------------------------------------------------- cuDNN

interface ConvCase {
  layout: "NHWC" | "NCHW";
  n: number;
  c: number;
  h: number;
  w: number;
  k: number;
  r: number;
  s: number;
  stride: number;
  pad: number;
  groups: number;
}

/** CPU reference convolution on logical NCHW values (x[n][c][h][w], w[k][c/g][r][s]). */
function convReference(
  cs: ConvCase,
  x: Float32Array,
  wt: Float32Array,
  bias: Float32Array | null,
  act: (v: number) => number,
) {
  const oh = Math.floor((cs.h + 2 * cs.pad - cs.r) / cs.stride) + 1;
  const ow = Math.floor((cs.w + 2 * cs.pad - cs.s) / cs.stride) + 1;
  const cg = cs.c / cs.groups;
  const kg = cs.k / cs.groups;
  const y = new Float32Array(cs.n * cs.k * oh * ow);
  for (let n = 0; n < cs.n; n++)
    for (let k = 0; k < cs.k; k++) {
      const g = Math.floor(k / kg);
      for (let i = 0; i < oh; i++)
        for (let j = 0; j < ow; j++) {
          let acc = bias ? bias[k]! : 0;
          for (let c = 0; c < cg; c++)
            for (let r = 0; r < cs.r; r++)
              for (let s = 0; s < cs.s; s++) {
                const hi = i * cs.stride - cs.pad + r;
                const wi = j * cs.stride - cs.pad + s;
                if (hi < 0 || hi >= cs.h || wi < 0 || wi >= cs.w) continue;
                acc +=
                  x[((n * cs.c + g * cg + c) * cs.h + hi) * cs.w + wi]! *
                  wt[((k * cg + c) * cs.r + r) * cs.s + s]!;
              }
          y[((n * cs.k + k) * oh + i) * ow + j] = act(acc);
        }
    }
  return { y, oh, ow };
}

/** Logical NCHW → memory order for `layout` (NHWC: n,h,w,c). */
function toLayout(layout: "NHWC" | "NCHW", v: Float32Array, [n, c, h, w]: number[]): Float32Array {
  if (layout === "NCHW") return v;
  const out = new Float32Array(v.length);
  for (let a = 0; a < n!; a++)
    for (let b = 0; b < c!; b++)
      for (let y = 0; y < h!; y++)
        for (let x = 0; x < w!; x++)
          out[((a * h! + y) * w! + x) * c! + b] = v[((a * c! + b) * h! + y) * w! + x]!;
  return out;
}

describe("cuDNN", { skip }, () => {
  let handle: Cudnn | undefined;
  const cudnn = () => (handle ??= Cudnn.create());

  function runConv(
    label: string,
    cs: ConvCase,
    dtype: "float16" | "float32",
    withBias: boolean,
    activation: "none" | "relu" | "silu",
    tol: number,
  ) {
    const round = dtype === "float16" ? roundHalf : (v: Float32Array) => v;
    const x = round(uniform(cs.n * cs.c * cs.h * cs.w, 21));
    const wt = round(uniform(cs.k * (cs.c / cs.groups) * cs.r * cs.s, 22));
    const bias = withBias ? round(uniform(cs.k, 23, -1, 1)) : null;
    const act =
      activation === "relu" ? (v: number) => Math.max(0, v) : activation === "silu" ? silu : (v: number) => v;
    const ref = convReference(cs, x, wt, bias, act);
    const enc = (v: Float32Array) => (dtype === "float16" ? toHalf(v) : v);
    const plan = buildConvPlan(cudnn(), {
      layout: cs.layout,
      dtype,
      n: cs.n,
      c: cs.c,
      h: cs.h,
      w: cs.w,
      k: cs.k,
      r: cs.r,
      s: cs.s,
      stride: cs.stride,
      padding: cs.pad,
      groups: cs.groups,
      bias: withBias,
      activation,
    });
    assert.deepEqual([plan.geometry.outH, plan.geometry.outW], [ref.oh, ref.ow]);
    const io = {
      x: keep(DeviceBuffer.from(enc(toLayout(cs.layout, x, [cs.n, cs.c, cs.h, cs.w])))),
      w: keep(DeviceBuffer.from(enc(toLayout(cs.layout, wt, [cs.k, cs.c / cs.groups, cs.r, cs.s])))),
      bias: bias ? keep(DeviceBuffer.from(enc(bias))) : null,
      y: keep(DeviceBuffer.alloc(plan.geometry.y.bytes)),
    };
    const stream = Stream.create();
    plan.execute(io, stream);
    stream.synchronize();
    const raw =
      dtype === "float16"
        ? fromHalf(io.y.download(new Uint16Array(ref.y.length)))
        : io.y.download(new Float32Array(ref.y.length));
    const want = toLayout(cs.layout, ref.y, [cs.n, cs.k, ref.oh, ref.ow]);
    const err = assertClose(label, raw, want, tol);
    const ms = timeOnStream(stream, () => plan.execute(io, stream), { reps: 20 });
    report(`cudnn.${label}`, {
      maxAbsError: err,
      engine: plan.engineIndex,
      configsTried: plan.configsTried,
      workspaceBytes: plan.workspaceBytes,
      usPerCall: +(ms * 1000).toFixed(2),
    });
    plan.destroy();
    stream.destroy();
  }

  it("creates a handle", () => {
    assert.ok(cudnn().handle);
    report("cudnn", { library: CUDNN.path, version: Cudnn.version() });
    assert.ok(Cudnn.version() >= 90000);
  });

  it("runs NHWC fp16 conv + bias + SiLU like the CPU", () => {
    const cs: ConvCase = {
      layout: "NHWC",
      n: 2,
      c: 16,
      h: 12,
      w: 12,
      k: 32,
      r: 3,
      s: 3,
      stride: 1,
      pad: 1,
      groups: 1,
    };
    runConv("nhwc-fp16-bias-silu", cs, "float16", true, "silu", 2e-2);
  });

  it("runs NHWC fp16 depthwise stride-2 conv + bias + ReLU like the CPU", () => {
    const cs: ConvCase = {
      layout: "NHWC",
      n: 2,
      c: 32,
      h: 14,
      w: 14,
      k: 32,
      r: 3,
      s: 3,
      stride: 2,
      pad: 1,
      groups: 32,
    };
    runConv("nhwc-fp16-depthwise-bias-relu", cs, "float16", true, "relu", 2e-2);
  });

  it("runs NCHW fp32 stride-2 conv (no bias) like the CPU", () => {
    const cs: ConvCase = {
      layout: "NCHW",
      n: 1,
      c: 8,
      h: 15,
      w: 15,
      k: 16,
      r: 3,
      s: 3,
      stride: 2,
      pad: 1,
      groups: 1,
    };
    runConv("nchw-fp32", cs, "float32", false, "none", 1e-2);
  });

  after(() => handle?.destroy());
});

// ----------------------------------------------------------------------------------------- LibTorch

describe("LibTorch shim", { skip }, () => {
  let loaded: LibTorch | undefined;
  const lib = () => (loaded ??= LibTorch.load());
  const tensors: TorchTensor[] = [];
  const t = (x: TorchTensor) => {
    tensors.push(x);
    return x;
  };

  it("loads libtorch_cuda and libtorch_cpu", () => {
    const t0 = performance.now();
    const torch = lib();
    report("torch", {
      version: torch.version,
      loadMs: Math.round(performance.now() - t0),
      cuda: TORCH_CUDA.path,
      cpu: TORCH_CPU.path,
    });
    assert.match(torch.version, /^2\.\d+\.\d+$/);
    assert.notEqual(torch.dtypeCode("float16"), torch.dtypeCode("float32"));
  });

  it("wraps a device buffer without copying and runs aten::relu through the dispatcher", () => {
    const torch = lib();
    const values = uniform(32, 31, -1, 1);
    const buf = keep(DeviceBuffer.from(values));
    const x = t(torch.wrap(buf, { sizes: [4, 8], dtype: "float32" }));
    assert.deepEqual(x.sizes(), [4, 8]);
    assert.deepEqual(x.strides(), [8, 1]);
    assert.equal(x.dataPtr(), buf.ptr);
    assert.equal(x.dtype(), "float32");
    assert.deepEqual(x.device(), { type: "cuda", index: 0 });
    const y = t(torch.callTensor("aten::relu", "", [arg.tensor(x)]));
    assert.deepEqual(y.sizes(), [4, 8]);
    const got = download(y.memory(), new Float32Array(32));
    assert.deepEqual(
      Array.from(got),
      Array.from(values, (v) => Math.max(0, v)),
    );
    assert.ok(x.alive, "our handle survives the call (a new handle was passed)");
    assert.throws(() => torch.wrap(buf, { sizes: [4, 9], dtype: "float32" }), DeviceArgumentError);
  });

  it("passes int lists, None, boxed Tensor?, floats and bools (permute, flip, layer_norm), Scalars and dtypes", () => {
    const torch = lib();
    const values = uniform(12, 41, -2, 2);
    const buf = keep(DeviceBuffer.from(values));
    const x = t(torch.wrap(buf, { sizes: [3, 4], dtype: "float32" }));
    const xt = t(torch.callTensor("aten::permute", "", [arg.tensor(x), arg.intList([1, 0])]));
    assert.deepEqual(xt.sizes(), [4, 3]);
    assert.deepEqual(xt.strides(), [1, 4]);
    assert.equal(xt.dataPtr(), buf.ptr, "permute is a view of our buffer");
    const flipped = t(torch.callTensor("aten::flip", "", [arg.tensor(x), arg.intList([1])]));
    const wantFlip = new Float32Array(12);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 4; j++) wantFlip[i * 4 + (3 - j)] = values[i * 4 + j]!;
    assert.deepEqual(Array.from(download(flipped.memory(), new Float32Array(12))), Array.from(wantFlip));
    // layer_norm(input, normalized_shape, weight?, bias?, eps, cudnn_enable)
    const gamma = uniform(4, 42, 0.5, 1.5);
    const gammaBuf = keep(DeviceBuffer.from(gamma));
    const g = t(torch.wrap(gammaBuf, { sizes: [4], dtype: "float32" }));
    const eps = 1e-5;
    const ln = t(
      torch.callTensor("aten::layer_norm", "", [
        arg.tensor(x),
        arg.intList([4]),
        arg.optional(arg.tensor(g)),
        arg.none(),
        arg.float(eps),
        arg.bool(true),
      ]),
    );
    const wantLn = new Float32Array(12);
    for (let i = 0; i < 3; i++) {
      const row = values.subarray(i * 4, i * 4 + 4);
      const mean = row.reduce((a, b) => a + b, 0) / 4;
      const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / 4;
      for (let j = 0; j < 4; j++)
        wantLn[i * 4 + j] = ((row[j]! - mean) / Math.sqrt(variance + eps)) * gamma[j]!;
    }
    assertClose("layer_norm", download(ln.memory(), new Float32Array(12)), wantLn, 1e-4);
    const sum = t(torch.addTensor(x, x, 2));
    assertClose(
      "add_Tensor alpha=2",
      download(sum.memory(), new Float32Array(12)),
      values.map((v) => 3 * v),
      1e-6,
    );
    const half = t(
      torch.callTensor("aten::to", "dtype", [
        arg.tensor(x),
        arg.dtype("float16"),
        arg.bool(false),
        arg.bool(false),
        arg.none(),
      ]),
    );
    assert.equal(half.dtype(), "float16");
    assertClose("to(float16)", fromHalf(download(half.memory(), new Uint16Array(12))), roundHalf(values), 0);
  });

  it("runs ATen work on our stream", () => {
    const torch = lib();
    const stream = Stream.create();
    torch.setCurrentStream(stream);
    assert.equal(torch.currentStream(), stream.handle);
    const values = uniform(1 << 16, 51, -1, 1);
    const buf = keep(DeviceBuffer.from(values));
    const x = t(torch.wrap(buf, { sizes: [values.length], dtype: "float32" }));
    const y = t(torch.callTensor("aten::relu", "", [arg.tensor(x)]));
    stream.synchronize();
    assert.deepEqual(
      Array.from(download(y.memory(), new Float32Array(values.length))),
      Array.from(values, (v) => Math.max(0, v)),
    );
    const reps = 200;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) torch.callTensor("aten::relu", "", [arg.tensor(x)]).delete();
    report("torch.dispatcher", { usPerReluCall: +(((performance.now() - t0) * 1000) / reps).toFixed(2) });
    torch.setCurrentStream(null);
    stream.synchronize();
    stream.destroy();
  });

  it("turns a failed dispatcher call into a TorchShimError", () => {
    const torch = lib();
    const buf = keep(DeviceBuffer.alloc(16));
    const x = t(torch.wrap(buf, { sizes: [4], dtype: "float32" }));
    assert.throws(() => torch.call("aten::definitely_not_an_op", "", [arg.tensor(x)]), TorchShimError);
  });

  after(() => {
    for (const x of tensors) x.delete();
  });
});

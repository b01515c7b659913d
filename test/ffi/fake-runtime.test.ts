/**
 * The device runtime end to end through koffi against fake native libraries (test/ffi/fakes/*.c) found
 * through TORCHC_LIBRARY_PATH: real marshalling of out-params, BigInt pointers, TypedArrays and descriptor
 * handles, with "device" memory on the host. Skipped when no C compiler is available.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BlasLt,
  buildConvPlan,
  buildKernels,
  buildKernelsAsync,
  CudaContext,
  Cudnn,
  captureGraph,
  copyDevice,
  DeviceArgumentError,
  DeviceBuffer,
  deviceCount,
  downloadAsync,
  KernelArgs,
  KernelCache,
  launch,
  PinnedBuffer,
  Stream,
  timeOnStream,
  uploadAsync,
} from "../../src/backends/cuda/device/index.js";
import {
  CUDA,
  CUDNN,
  CublasError,
  CudaError,
  clearDiscoveryCache,
  koffi,
  NVRTC,
  NvrtcError,
} from "../../src/ffi/index.js";
import { buildFakes } from "./fakes/build.js";

const fakes = buildFakes();
const suite = fakes ? describe : describe.skip;
let cacheDir: string;

function fake<T>(lib: { load(): { path: string } }, proto: string): () => T {
  const f = koffi().load(lib.load().path).func(proto);
  return () => f() as T;
}

beforeAll(() => {
  if (!fakes) return;
  process.env.TORCHC_LIBRARY_PATH = fakes;
  process.env.TORCHC_PYTHON = "none";
  clearDiscoveryCache();
  cacheDir = mkdtempSync(join(tmpdir(), "torchc-kcache-"));
});

afterAll(() => {
  if (fakes) rmSync(fakes, { recursive: true, force: true });
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
});

suite("driver through the fake libcuda", () => {
  it("finds the library through TORCHC_LIBRARY_PATH and opens the primary context", () => {
    const ctx = CudaContext.get(0);
    expect(CUDA.path).toBe(join(fakes!, "libcuda.so.1"));
    expect(ctx.info).toMatchObject({
      name: "Fake GPU 0",
      computeCapability: [9, 0],
      multiprocessors: 132,
      driverVersion: 13000,
    });
    expect(ctx.arch).toBe("sm_90");
    expect(deviceCount()).toBe(1);
    expect(ctx.memInfo().total).toBe(80 * 2 ** 30);
    expect(CudaContext.get(0)).toBe(ctx);
  });

  it("turns a driver status into a CudaError with the driver's own description", () => {
    let error: unknown;
    try {
      CudaContext.get(1);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CudaError);
    expect((error as Error).message).toBe(
      "cuDeviceGet failed: CUDA_ERROR_INVALID_DEVICE (101): fake driver error 101",
    );
  });

  it("round-trips memory through device buffers, views, copies and pinned async copies", () => {
    const live = fake<number>(CUDA, "int fake_live_allocations(void)");
    const before = live();
    const src = Float32Array.from({ length: 8 }, (_, i) => i + 0.5);
    const a = DeviceBuffer.from(src);
    expect(a.download(new Float32Array(8))).toEqual(src);
    const b = DeviceBuffer.alloc(32).fill(0);
    copyDevice(b.view(16, 16), a, { bytes: 16 });
    expect(b.download(new Float32Array(8))).toEqual(Float32Array.from([0, 0, 0, 0, 0.5, 1.5, 2.5, 3.5]));
    const stream = Stream.create();
    const pinned = PinnedBuffer.alloc(32);
    pinned.as(Float32Array).set([9, 8, 7, 6, 5, 4, 3, 2]);
    uploadAsync(a, pinned, stream, { srcOffset: 8, dstOffset: 0, bytes: 8 });
    downloadAsync(a, pinned, stream);
    stream.synchronize();
    expect(Array.from(pinned.as(Float32Array))).toEqual([7, 6, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5]);
    expect(() => a.upload(new Float32Array(9))).toThrow(DeviceArgumentError);
    expect(live()).toBe(before + 2);
    a.free();
    a.free();
    b.free();
    pinned.free();
    stream.destroy();
    expect(() => a.download(new Float32Array(1))).toThrow("src has been freed");
    expect(live()).toBe(before);
  });
});

suite("NVRTC, modules and launches through the fakes", () => {
  const source =
    'extern "C" __global__ void fill_f32(float *p, float v, int n) {}\ntemplate <typename T> __global__ void scale(T *p) {}\n';

  it("compiles, loads and launches with a reusable argument arena", () => {
    const built = buildKernels(source, ["fill_f32", "scale<float>"]);
    expect(built.cacheHit).toBe("miss");
    expect(built.program.log).toContain("--gpu-architecture=sm_90");
    expect(built.kernels.fill_f32.symbol).toBe("fill_f32");
    expect(built.kernels["scale<float>"].symbol).toBe("_lowered_scale<float>");
    const buf = DeviceBuffer.alloc(8 * 4);
    const args = new KernelArgs(["ptr", "f32", "i32"]).setAll([buf, 2.5, 8]);
    expect(() =>
      launch(built.kernels.fill_f32, { grid: 1, block: 8 }, new KernelArgs(["ptr", "f32", "i32"])),
    ).toThrow("not every argument has been set");
    launch(built.kernels.fill_f32, { grid: 1, block: 8 }, args);
    expect(Array.from(buf.download(new Float32Array(8)))).toEqual(new Array(8).fill(2.5));
    args.set(1, -1).set(2, 4);
    launch(built.kernels.fill_f32, { grid: [2, 1, 1], block: [2, 1] }, args);
    expect(Array.from(buf.download(new Float32Array(8)))).toEqual([-1, -1, -1, -1, 2.5, 2.5, 2.5, 2.5]);
    // On compute capability 9.0 (the fake's) launches carry the programmatic-dependent-launch attribute, read by
    // the fake through cuda.h's struct layout; programmatic: false takes cuLaunchKernel.
    const programmatic = fake<number>(CUDA, "int fake_cuda_last_programmatic(void)");
    expect(programmatic()).toBe(1);
    const exLaunches = fake<number>(CUDA, "int fake_cuda_ex_launches(void)");
    const before = exLaunches();
    args.set(1, 7);
    launch(built.kernels.fill_f32, { grid: [2, 1, 1], block: [2, 1], programmatic: false }, args);
    expect(exLaunches()).toBe(before);
    expect(Array.from(buf.download(new Float32Array(8)))).toEqual([7, 7, 7, 7, 2.5, 2.5, 2.5, 2.5]);
    args.set(1, -1);
    expect(() => launch(built.kernels.fill_f32, { grid: 1, block: [32, 33] }, args)).toThrow(
      "at most 1024 threads",
    );
    args.free();
    buf.free();
    built.module.unload();
  });

  it("serves the second build from the cache, in memory and on disk", () => {
    const count = fake<number>(NVRTC, "int fake_nvrtc_compile_count(void)");
    const n = count();
    expect(buildKernels(source, ["fill_f32", "scale<float>"]).cacheHit).toBe("memory");
    expect(count()).toBe(n);
    const first = new KernelCache({ disk: cacheDir }).compile(source, { nameExpressions: ["scale<float>"] });
    expect(first.hit).toBe("miss");
    const second = new KernelCache({ disk: cacheDir }).compile(source, { nameExpressions: ["scale<float>"] });
    expect(second.hit).toBe("disk");
    expect(second.key).toBe(first.key);
    expect(second.loweredNames).toEqual({ "scale<float>": "_lowered_scale<float>" });
    expect(Buffer.from(second.image).toString()).toBe(`FAKECUBIN\n${source}`);
    expect(count()).toBe(n + 1);
  });

  it("compiles separate programs at once on worker threads, each with its options and lowered names", async () => {
    const count = fake<number>(NVRTC, "int fake_nvrtc_compile_count(void)");
    const n = count();
    const sources = [0, 1, 2].map(
      (i) =>
        `extern "C" __global__ void part${i}(float *p) {}\ntemplate <typename T> __global__ void t${i}(T *p) {}\n`,
    );
    const built = await Promise.all(
      sources.map((src, i) =>
        buildKernelsAsync(src, [`part${i}`, `t${i}<float>`], {
          cache: new KernelCache(),
          options: ["--split-compile=4"],
          name: `p${i}.cu`,
        }),
      ),
    );
    expect(count()).toBe(n + 3);
    built.forEach((b, i) => {
      expect(b.cacheHit).toBe("miss");
      expect(b.program.log).toContain("--gpu-architecture=sm_90");
      expect(b.program.log).toContain("--split-compile=4");
      expect(Buffer.from(b.program.image).toString()).toBe(`FAKECUBIN\n${sources[i]}`);
      expect(b.kernels[`t${i}<float>`].symbol).toBe(`_lowered_t${i}<float>`);
      b.module.unload();
    });
    // a failing program rejects with NVRTC's log, as the synchronous path throws
    await expect(buildKernelsAsync('#error "nope"\n', ["k"], { cache: new KernelCache() })).rejects.toThrow(
      NvrtcError,
    );
  });

  it("reports compile errors with the NVRTC log", () => {
    let error: unknown;
    try {
      buildKernels('#error "nope"\n', ["k"]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NvrtcError);
    expect((error as NvrtcError).log).toContain("error: #error directive");
    expect((error as Error).message).toMatch(
      /^nvrtcCompileProgram failed: NVRTC_ERROR_COMPILATION \(6\): options: --gpu-architecture=sm_90/,
    );
  });

  it("captures launches into a graph that replays them with the arguments of capture time", () => {
    const { kernels, module } = buildKernels('extern "C" __global__ void add_i32(int *p, int d, int n) {}', [
      "add_i32",
    ]);
    const buf = DeviceBuffer.alloc(16).fill(0);
    const stream = Stream.create();
    const args = new KernelArgs(["ptr", "i32", "i32"]).setAll([buf, 1, 4]);
    const graph = captureGraph(stream, () => {
      for (let i = 0; i < 3; i++) launch(kernels.add_i32, { grid: 1, block: 4, stream }, args);
    });
    expect(graph.nodeCount).toBe(3);
    expect(Array.from(buf.download(new Int32Array(4)))).toEqual([0, 0, 0, 0]);
    graph.launch(stream);
    args.set(1, 100);
    graph.launch(stream);
    stream.synchronize();
    expect(Array.from(buf.download(new Int32Array(4)))).toEqual([6, 6, 6, 6]);
    expect(() =>
      captureGraph(stream, () => {
        throw new Error("body failed");
      }),
    ).toThrow("body failed");
    expect(stream.isCapturing()).toBe(false);
    expect(() => captureGraph(null as never, () => {})).toThrow(DeviceArgumentError);
    expect(timeOnStream(stream, () => graph.launch(stream), { warmup: 1, reps: 2 })).toBe(1);
    graph.destroy();
    args.free();
    buf.free();
    stream.destroy();
    module.unload();
  });
});

suite("cuBLASLt through the fake (a real fp32 column-major GEMM)", () => {
  const M = 5;
  const K = 4;
  const N = 3;
  const x = Float32Array.from({ length: M * K }, (_, i) => ((i * 7) % 11) - 5);
  const w = Float32Array.from({ length: N * K }, (_, i) => ((i * 5) % 7) - 3);
  const bias = Float32Array.from([0.5, -20, 3]);

  function reference(relu: boolean): Float32Array {
    const y = new Float32Array(M * N);
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let acc = bias[j]!;
        for (let p = 0; p < K; p++) acc += x[i * K + p]! * w[j * K + p]!;
        y[i * N + j] = relu ? Math.max(0, acc) : acc;
      }
    return y;
  }

  it("computes nn.Linear with bias and ReLU through the row-major recipe", () => {
    const lt = BlasLt.create({ workspaceBytes: 1024 });
    const [dx, dw, db, dy] = [
      DeviceBuffer.from(x),
      DeviceBuffer.from(w),
      DeviceBuffer.from(bias),
      DeviceBuffer.alloc(M * N * 4),
    ];
    lt.linear({
      x: dx,
      weight: dw,
      bias: db,
      out: dy,
      m: M,
      inFeatures: K,
      outFeatures: N,
      dtype: "float32",
      activation: "relu",
    });
    expect(Array.from(dy.download(new Float32Array(M * N)))).toEqual(Array.from(reference(true)));
    lt.linear({
      x: dx,
      weight: dw,
      bias: db,
      out: dy,
      m: M,
      inFeatures: K,
      outFeatures: N,
      dtype: "float32",
    });
    expect(Array.from(dy.download(new Float32Array(M * N)))).toEqual(Array.from(reference(false)));
    expect(lt.planCount).toBe(2);
    lt.linear({
      x: dx,
      weight: dw,
      bias: db,
      out: dy,
      m: M,
      inFeatures: K,
      outFeatures: N,
      dtype: "float32",
    });
    expect(lt.planCount).toBe(2);
    expect(() =>
      lt.linear({ x: dx, weight: dw, out: dy, m: M + 1, inFeatures: K, outFeatures: N, dtype: "float32" }),
    ).toThrow("x holds 80 bytes; 96 bytes at offset 0 are needed");
    let error: unknown;
    try {
      lt.linear({ x: dx, weight: dw, out: dy, m: 2, inFeatures: K, outFeatures: N, dtype: "float16" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CublasError);
    expect((error as Error).message).toContain(
      "CUBLAS_STATUS_NOT_SUPPORTED (15): the functionality requested is not supported",
    );
    for (const b of [dx, dw, db, dy]) b.free();
    lt.destroy();
  });

  it("computes plain and transposed row-major products", () => {
    const lt = BlasLt.create({ workspaceBytes: 1024 });
    const a = Float32Array.from([1, 2, 3, 4, 5, 6]); // [2,3]
    const b = Float32Array.from([1, 0, -1, 2, 3, 1]); // [3,2]
    const [da, db, dc] = [DeviceBuffer.from(a), DeviceBuffer.from(b), DeviceBuffer.alloc(16)];
    lt.matmul({ a: da, b: db, out: dc, m: 2, n: 2, k: 3, dtype: "float32" });
    expect(Array.from(dc.download(new Float32Array(4)))).toEqual([8, 7, 17, 16]);
    // Aᵀ·Bᵀ with A read as [3,2] and B as [2,3]: same buffers, other shapes.
    lt.matmul({
      a: da,
      b: db,
      out: dc,
      m: 2,
      n: 2,
      k: 3,
      transA: true,
      transB: true,
      alpha: 2,
      dtype: "float32",
    });
    expect(Array.from(dc.download(new Float32Array(4)))).toEqual([
      2 * (1 * 1 + 3 * 0 + 5 * -1),
      2 * (1 * 2 + 3 * 3 + 5 * 1),
      2 * (2 * 1 + 4 * 0 + 6 * -1),
      2 * (2 * 2 + 4 * 3 + 6 * 1),
    ]);
    for (const buf of [da, db, dc]) buf.free();
    lt.destroy();
  });
});

suite("cuDNN graph building through the recording fake", () => {
  it("builds conv+bias+SiLU, tries engine configs in order and reuses the variant pack", () => {
    const log = fake<string>(CUDNN, "const char *fake_cudnn_log(void)");
    const executions = fake<number>(CUDNN, "int fake_cudnn_executions(void)");
    const cudnn = Cudnn.create();
    expect(Cudnn.version()).toBe(91900);
    const spec = {
      layout: "NHWC",
      dtype: "float16",
      n: 2,
      c: 16,
      h: 10,
      w: 10,
      k: 32,
      r: 3,
      s: 3,
      padding: 1,
      bias: true,
      activation: "silu",
    } as const;
    const plan = buildConvPlan(cudnn, spec);
    expect(plan).toMatchObject({ engineIndex: 41, configsTried: 2, workspaceBytes: 1024 });
    const lines = log().split("\n");
    for (const expected of [
      "17.901=2",
      "17.902=2,16,10,10",
      "17.903=1600,1,160,16",
      "17.902=32,16,3,3",
      "17.903=144,1,48,16",
      "17.902=1,32,1,1",
      "17.907=true",
      "1.100=0",
      "1.101=1",
      "1.105=1,1",
      "1.104=1,1",
      "10.700=1",
      "0.0=0",
      "0.0=106",
      "15.801=desc10,desc13,desc13",
      "4.200=3",
    ]) {
      expect(lines, expected).toContain(expected);
    }
    const g = plan.geometry;
    const io = {
      x: DeviceBuffer.alloc(g.x.bytes),
      w: DeviceBuffer.alloc(g.w.bytes),
      bias: DeviceBuffer.alloc(g.b.bytes),
      y: DeviceBuffer.alloc(g.y.bytes),
    };
    const stream = Stream.create();
    plan.execute(io, stream);
    plan.execute(io, stream);
    expect(executions()).toBe(2);
    const packs = () =>
      log()
        .split("\n")
        .filter((l) => l.startsWith("16.1001=")).length;
    expect(packs()).toBe(1);
    const y2 = DeviceBuffer.alloc(g.y.bytes);
    plan.execute({ ...io, y: y2 }, stream);
    expect(packs()).toBe(2);
    expect(() => plan.execute({ ...io, bias: undefined })).toThrow("this plan adds a bias");
    expect(() => plan.execute({ ...io, y: io.y.view(2, g.y.bytes - 16) })).toThrow(DeviceArgumentError);
    expect(() => plan.execute({ ...io, x: io.x.view(16, g.x.bytes - 16) })).toThrow("x holds");
    plan.destroy();
    for (const b of [...Object.values(io), y2]) b.free();
    stream.destroy();
    cudnn.destroy();
  });
});

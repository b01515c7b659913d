/**
 * The CUDA device layer (src/backends/cuda/device/) as the one wrapper over cuDNN, cuBLASLt and LibTorch:
 * nothing in kernels/ or torch/ reaches src/ffi past it; the plan builders production uses, in their pure parts
 * (graph layout, activation table, strides, engine filter, tuning pick, step → spec) and through the fake
 * libraries (test/ffi/fakes) for the native parts, refusals included. Enum values are cuDNN's and cuBLASLt's
 * header values (cudnn_graph.h, cublasLt.h), not read back from src/ffi.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { convGraphSpecOf } from "../../src/backends/cuda/device/conv.js";
import { ACTIVATION_MODE, convGraphLayout } from "../../src/backends/cuda/device/conv-graph.js";
import {
  type ConvActivationKind,
  channelStrides,
  convGeometry,
  layoutStrides,
} from "../../src/backends/cuda/device/conv-shape.js";
import { cudnnRefusal, skipEngine } from "../../src/backends/cuda/device/cudnn-engines.js";
import { describeEngine } from "../../src/backends/cuda/engine.js";
import {
  type CudnnConvSpec,
  convGraphSpec,
  cudnnConvSpec,
  pickFastest,
} from "../../src/backends/cuda/kernels/conv-cudnn.js";
import { matmulGeometry } from "../../src/backends/cuda/kernels/matmul-cublaslt.js";
import type { TensorInfo } from "../../src/backends/cuda/plan/tensors.js";
import { fakeLibrarySuite } from "../ffi/fakes/suite.js";
import { ROOT } from "../helpers.js";
import { convSpec, fusedEpilogue, matmulShape } from "./cuda/specs.js";

const SRC = join(ROOT, "src");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith(".ts") ? [p] : [];
  });
}

/** Every import or re-export (type-only ones included) of `file` that resolves into src/ffi. */
function ffiImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const ffi = join(SRC, "ffi");
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\b[^;]*?from "(\.[^"]+)"/gms)) {
    const target = normalize(join(dirname(file), m[1]));
    if (target === ffi || target.startsWith(`${ffi}/`)) out.push(`${relative(SRC, file)} -> ${m[1]}`);
  }
  return out;
}

describe("one device layer", () => {
  it("kernels/ and torch/ reach src/ffi only through device/", () => {
    const files = [...sources(join(SRC, "backends/cuda/kernels")), ...sources(join(SRC, "backends/torch"))];
    expect(files.length).toBeGreaterThan(10);
    expect(files.flatMap(ffiImports)).toEqual([]);
  });

  it("the check itself sees an ffi import (device/ has them)", () => {
    expect(ffiImports(join(SRC, "backends/cuda/device/conv.ts"))).not.toEqual([]);
  });
});

/** NHWC fp16 3×3 conv with bias → tanh → + r → × channel → gelu_erf. */
const spec = convSpec({
  layout: "NHWC",
  dtype: "float16",
  x: [2, 16, 10, 10],
  w: [32, 16, 3, 3],
  y: [2, 32, 10, 10],
  epilogue: fusedEpilogue("r", new Float64Array(32)),
});

describe("the cuDNN conv graph (pure part)", () => {
  it("maps every activation to cuDNN's pointwise mode (cudnnPointwiseMode_t)", () => {
    const expected: Record<ConvActivationKind, number> = {
      relu: 100,
      tanh: 101,
      sigmoid: 102,
      gelu_erf: 104,
      silu: 106,
      gelu_tanh: 107,
    };
    expect(ACTIVATION_MODE).toEqual(expected);
  });

  it("computes NHWC/NCHW strides of logical NCHW dims", () => {
    expect(layoutStrides("NHWC", [2, 16, 10, 10])).toEqual([1600, 1, 160, 16]);
    expect(layoutStrides("NCHW", [2, 16, 10, 10])).toEqual([1600, 100, 10, 1]);
    // KRSC weights of [K=32, C=16, R=3, S=3]
    expect(layoutStrides("NHWC", [32, 16, 3, 3])).toEqual([144, 1, 48, 16]);
    expect(channelStrides("NHWC", 32)).toEqual([32, 1, 32, 32]);
    expect(channelStrides("NCHW", 32)).toEqual([32, 1, 1, 1]);
  });

  it("lays out real tensors first in variant-pack order, then the virtual fp32 intermediates", () => {
    const g = convGraphLayout(convGraphSpec(spec));
    const t = g.tensors.map((x) => [x.label, Number(x.uid), x.dataType, x.isVirtual]);
    expect(t).toEqual([
      ["x", 1, 2, false],
      ["w", 2, 2, false],
      ["bias", 3, 2, false],
      ["y", 4, 2, false],
      ["operand 1", 5, 2, false],
      ["channel 2", 6, 2, false],
      ["conv out", 7, 0, true],
      ["bias out", 8, 0, true],
      ["tanh out", 9, 0, true],
      ["tensor add out", 10, 0, true],
      ["channel mul out", 11, 0, true],
    ]);
    expect(g.uids).toEqual([1n, 2n, 3n, 4n, 5n, 6n]);
    expect(g.tensors[5].dims).toEqual([1, 32, 1, 1]);
    expect(g.tensors[5].strides).toEqual([32, 1, 32, 32]);
    // bias add → tanh → add residual → mul channel → gelu (erf), each reading the previous stage's output
    expect(g.pointwise.map((p) => [p.mode, p.input, p.operand, p.output])).toEqual([
      [0, 6, 2, 7],
      [101, 7, undefined, 8],
      [0, 8, 4, 9],
      [1, 9, 5, 10],
      [104, 10, undefined, 3],
    ]);
  });

  it("writes y directly when there is no epilogue", () => {
    const g = convGraphLayout(convGraphSpec({ ...spec, bias: false, epilogue: [] }));
    expect(g.tensors.map((x) => x.label)).toEqual(["x", "w", "y"]);
    expect(g.convOut).toBe(2);
    expect(g.pointwise).toEqual([]);
  });

  it("builds the same graph for the device API's ConvSpec and the engine's conv spec", () => {
    const device = convGraphSpecOf(
      convGeometry({
        layout: "NCHW",
        dtype: "float32",
        n: 1,
        c: 8,
        h: 7,
        w: 9,
        k: 4,
        r: 3,
        s: 3,
        stride: 2,
        padding: 1,
        dilation: 1,
        bias: true,
        activation: "silu",
      }),
    );
    const engine = convGraphSpec(
      convSpec({
        layout: "NCHW",
        dtype: "float32",
        x: [1, 8, 7, 9],
        w: [4, 8, 3, 3],
        y: [1, 4, 4, 5],
        stride: [2, 2],
        epilogue: [{ kind: "act", fn: "silu" }],
        allowTf32: true,
      }),
    );
    expect(convGraphLayout(device)).toEqual(convGraphLayout(engine));
  });
});

describe("engine choice and tuning (pure part)", () => {
  it("skips tensor-core and down-converting engines only in strict fp32, and unstable ones after the first", () => {
    // cudnnBackendNumericalNote_t: TENSOR_CORE 0, DOWN_CONVERT_INPUTS 1, REDUCED_PRECISION 2, FFT 3,
    // NONDETERMINISTIC 4, WINOGRAD 5..8, STRICT_NAN_PROP 9
    expect(skipEngine([0], true, 0)).toBe(true);
    expect(skipEngine([1], true, 0)).toBe(true);
    expect(skipEngine([0], false, 0)).toBe(false);
    expect(skipEngine([3], false, 0)).toBe(false);
    expect(skipEngine([3], false, 1)).toBe(true);
    expect(skipEngine([4], false, 2)).toBe(true);
    expect(skipEngine([9], true, 3)).toBe(false);
    expect(skipEngine([], true, 0)).toBe(false);
  });

  it("keeps the first plan unless another is faster by more than the margin", () => {
    expect(pickFastest([1, 0.98], 0.03)).toBe(0);
    expect(pickFastest([1, 0.9, 0.95], 0.03)).toBe(1);
    expect(pickFastest([Number.POSITIVE_INFINITY, 2], 0.03)).toBe(1);
    expect(pickFastest([Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY], 0.03)).toBe(0);
  });

  it("words a refusal with cuDNN's status name and message", () => {
    expect(cudnnRefusal(3002, "no engine for NHWC fp16")).toBe(
      "cuDNN refused: CUDNN_STATUS_NOT_SUPPORTED_SHAPE (no engine for NHWC fp16)",
    );
    expect(cudnnRefusal(3000, undefined)).toBe(
      "cuDNN refused: CUDNN_STATUS_NOT_SUPPORTED (no detail from cuDNN)",
    );
  });

  it("puts library refusals in the engine's one-line description", () => {
    const stats = { layers: 10, kernels: 4, fusedGroups: 1, libraryRefusals: [] as string[] };
    expect(describeEngine(stats as never)).toBe(
      "cuda engine (10 layers → 4 kernels and library calls, 1 fused groups)",
    );
    const refused = { ...stats, libraryRefusals: ["conv 'c1' (1 epilogue ops): cuDNN refused: X", "b"] };
    expect(describeEngine(refused as never)).toBe(
      "cuda engine (10 layers → 4 kernels and library calls, 1 fused groups); 2 library refusals, first: conv 'c1' (1 epilogue ops): cuDNN refused: X",
    );
    // a warm compile says how many conv plans came from the plan cache, and in which form
    expect(describeEngine({ ...stats, restoredConvs: { fromJson: 50, fromEngine: 3 } } as never)).toBe(
      "cuda engine (10 layers → 4 kernels and library calls, 1 fused groups, 53 conv plans restored (50 serialized, 3 from engine and knobs))",
    );
    // an approximation of the graph's function is said, before any refusal
    expect(describeEngine({ ...refused, approximations: ["exact GELU as X"] } as never)).toBe(
      "cuda engine (10 layers → 4 kernels and library calls, 1 fused groups); approximated: exact GELU as X; 2 library refusals, first: conv 'c1' (1 epilogue ops): cuDNN refused: X",
    );
    // a built engine's stats carry its phase times: a second line says where the build's time went
    const ms = {
      plan: 12.2000001,
      cudnn: 340,
      cublas: 20,
      nvrtc: 2099.6,
      upload: 15,
      capture: 0,
      total: 2487,
    };
    expect(describeEngine({ ...stats, ms, nvrtcCache: "miss" } as never).split("\n")).toEqual([
      "cuda engine (10 layers → 4 kernels and library calls, 1 fused groups)",
      "engine build 2487 ms: schedule 12, cuDNN plans 340, cuBLASLt plans 20, NVRTC 2100 (kernel cache: miss), weights 15",
    ]);
  });
});

function infoOf(shape: number[], storage: string, layout?: number[]): TensorInfo {
  return {
    name: "",
    shape,
    logicalDType: "float32",
    storage: storage as never,
    layout: layout ?? shape.map((_, i) => i),
    role: "activation" as never,
  };
}

describe("engine steps → library problems", () => {
  it("turns a conv step into a cuDNN spec, or says why not", () => {
    const infos: Record<string, TensorInfo> = {
      x: infoOf([1, 3, 8, 8], "float16"),
      w: infoOf([4, 3, 3, 3], "float16"),
      y: infoOf([1, 4, 8, 8], "float16"),
      w32: infoOf([4, 3, 3, 3], "float32"),
    };
    const step = {
      kind: "conv",
      x: "x",
      output: "y",
      layout: "NHWC",
      epilogue: [{ kind: "act", fn: "relu" }],
      layer: { name: "c", inputs: ["x", "w", "b"], stride: [1, 1], padding: [1, 1], dilation: [1, 1] },
    };
    expect(cudnnConvSpec(step as never, (t) => infos[t], false)).toEqual(
      convSpec({
        layout: "NHWC",
        dtype: "float16",
        x: [1, 3, 8, 8],
        w: [4, 3, 3, 3],
        y: [1, 4, 8, 8],
        epilogue: [{ kind: "act", fn: "relu" }],
      }),
    );
    const mixed = { ...step, layer: { ...step.layer, inputs: ["x", "w32"] } };
    expect(cudnnConvSpec(mixed as never, (t) => infos[t], false)).toBe("dtypes float16/float32/float16");
  });

  it("folds a batch into M when B has none, and keeps batch strides when both have one", () => {
    const infos: Record<string, TensorInfo> = {
      a: infoOf([3, 5, 8], "float32"),
      b: infoOf([8, 6], "float32"),
      out: infoOf([3, 5, 6], "float32"),
      bb: infoOf([3, 6, 8], "float32", [0, 2, 1]),
    };
    const step = (b: string, transposeB: boolean) => ({
      kind: "matmul",
      a: "a",
      b,
      output: "out",
      layer: { transposeA: false, transposeB },
    });
    expect(matmulGeometry(step("b", false) as never, (t) => infos[t])).toEqual({
      ...matmulShape(15, 6, 8),
      dtype: "float32",
    });
    // bb is [3, 6, 8] stored with its last two axes swapped: used transposed, it is already [K, N] in memory
    expect(matmulGeometry(step("bb", true) as never, (t) => infos[t])).toMatchObject({
      m: 5,
      n: 6,
      k: 8,
      bT: false,
      batch: 3,
      strideA: 40,
      strideB: 48,
      strideD: 30,
    });
  });
});

// ------------------------------------------------------------------------- native parts, through the fakes

const native = fakeLibrarySuite();

native("production plan builders through the fake cuDNN and cuBLASLt", () => {
  // the pure part's conv with its epilogue cut after the residual add (bias → tanh → + r)
  const twoOps: CudnnConvSpec = { ...spec, epilogue: spec.epilogue.slice(0, 2) };

  async function fakeCudnn() {
    const ffi = await import("../../src/ffi/index.js");
    const lib = ffi.koffi().load(ffi.CUDNN.load().path);
    return {
      log: lib.func("const char *fake_cudnn_log(void)") as () => string,
      executions: lib.func("int fake_cudnn_executions(void)") as () => number,
      refuse: lib.func("void fake_cudnn_refuse_plans(int on)") as (on: number) => void,
    };
  }

  it("builds the engine's fused conv graph, binds its operands and executes", async () => {
    const device = await import("../../src/backends/cuda/device/index.js");
    const { buildCudnnConv } = await import("../../src/backends/cuda/kernels/conv-cudnn.js");
    const fake = await fakeCudnn();
    const cudnn = device.Cudnn.create();
    const built = buildCudnnConv(cudnn, twoOps, { tune: false });
    if (!built.ok) throw new Error(built.reason);
    const plan = built.plan;
    // engine config 0 is refused by the fake; config 1 (global index 41) is kept
    expect(plan).toMatchObject({ engineIndex: 41, candidateCount: 1, workspaceBytes: 1024 });
    const lines = fake.log().split("\n");
    for (const expected of [
      "0.0=101",
      "17.906=6",
      "17.906=7",
      "17.906=8",
      "15.801=desc10,desc13,desc13,desc13",
    ])
      expect(lines, expected).toContain(expected);
    expect(lines).not.toContain("17.906=9");
    expect(() => plan.bind({ x: 256n, w: 512n, bias: 768n, y: 1024n, extra: [] }, 0n)).toThrow(
      "conv plan needs 5 pointers, got 4",
    );
    expect(() => plan.bind({ x: 256n, w: 512n, bias: 768n, y: 1025n, extra: [2048n] }, 0n)).toThrow(
      "not 16-byte aligned",
    );
    const stream = device.Stream.create();
    const before = fake.executions();
    plan.bind({ x: 256n, w: 512n, bias: 768n, y: 1024n, extra: [2048n] }, 4096n);
    plan.execute(stream);
    expect(fake.executions()).toBe(before + 1);
    plan.destroy();
    stream.destroy();
    cudnn.destroy();
  });

  it("returns cuDNN's status and message when no engine takes the graph", async () => {
    const device = await import("../../src/backends/cuda/device/index.js");
    const { buildCudnnConv } = await import("../../src/backends/cuda/kernels/conv-cudnn.js");
    const fake = await fakeCudnn();
    const cudnn = device.Cudnn.create();
    fake.refuse(1);
    try {
      const built = buildCudnnConv(cudnn, twoOps, { tune: false });
      expect(built).toEqual({
        ok: false,
        reason: "cuDNN refused: CUDNN_STATUS_NOT_SUPPORTED_SHAPE (fake: no engine supports this shape)",
      });
      expect(() =>
        device.buildConvPlan(cudnn, {
          layout: "NHWC",
          dtype: "float16",
          n: 1,
          c: 8,
          h: 4,
          w: 4,
          k: 8,
          r: 1,
          s: 1,
        }),
      ).toThrow("cuDNN refused: CUDNN_STATUS_NOT_SUPPORTED_SHAPE (fake: no engine supports this shape)");
    } finally {
      fake.refuse(0);
      cudnn.destroy();
    }
  });

  it("plans and runs a matmul through the device layer's cuBLASLt plan, and reports a refusal", async () => {
    const device = await import("../../src/backends/cuda/device/index.js");
    const { buildLtMatmul, createLtHandle, destroyLtHandle } = await import(
      "../../src/backends/cuda/kernels/matmul-cublaslt.js"
    );
    device.CudaContext.current();
    const handle = createLtHandle();
    const g = matmulShape(2, 2, 3);
    const built = buildLtMatmul(
      handle,
      { ...g, dtype: "float32" },
      { bias: false, activation: "none" },
      false,
      1024,
    );
    if (!built.ok) throw new Error(built.reason);
    const a = device.DeviceBuffer.from(Float32Array.from([1, 2, 3, 4, 5, 6])); // [2,3]
    const b = device.DeviceBuffer.from(Float32Array.from([1, 0, -1, 2, 3, 1])); // [3,2]
    const d = device.DeviceBuffer.alloc(16);
    const stream = device.Stream.create();
    built.plan.bind(a.ptr, b.ptr, d.ptr, undefined, 0n);
    built.plan.execute(stream);
    stream.synchronize();
    // [1 2 3; 4 5 6]·[1 0; -1 2; 3 1]
    expect(Array.from(d.download(new Float32Array(4)))).toEqual([8, 7, 17, 16]);
    built.plan.destroy();
    const refused = buildLtMatmul(
      handle,
      { ...g, dtype: "float16" },
      { bias: false, activation: "none" },
      false,
      1024,
    );
    expect(refused.ok).toBe(false);
    if (!refused.ok)
      expect(refused.reason).toMatch(/^cuBLASLt refused: .*CUBLAS_STATUS_NOT_SUPPORTED \(15\)/);
    for (const buf of [a, b, d]) buf.free();
    stream.destroy();
    destroyLtHandle(handle);
  });
});

import { describe, expect, it } from "vitest";
import {
  type ArgHost,
  arg,
  checkDevice,
  checkDim3,
  contiguousStrides,
  convGeometry,
  copyDevice,
  DeviceArgumentError,
  decodeFloat,
  decodeInt,
  defaultKernelCacheDir,
  download,
  encodeDevice,
  encodeFloat,
  encodeStack,
  epilogueFor,
  fill,
  KernelArgs,
  kernelCacheKey,
  ltRecipe,
  paramLayout,
  resolveOptions,
  upload,
  viewExtentBytes,
} from "../../src/backends/cuda/device/index.js";
import { ALL_LIBRARIES } from "../../src/ffi/index.js";
import { float16BitsToNumber } from "../../src/ir/half.js";

const mem = (bytes: number, alive = true) => ({ ptr: 0x7f0000000000n, bytes, alive });

function thrown(f: () => unknown): DeviceArgumentError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DeviceArgumentError);
    return e as DeviceArgumentError;
  }
  throw new Error("expected DeviceArgumentError");
}

describe("memory arguments are checked before any library is touched", () => {
  it("refuses copies that do not fit, freed memory, bad offsets and non-typed-array hosts", () => {
    expect(thrown(() => upload(mem(4), new Float32Array(2))).message).toBe(
      "dst holds 4 bytes; 8 bytes at offset 0 are needed",
    );
    expect(thrown(() => upload(mem(8), new Float32Array(2), 4)).message).toContain("8 bytes at offset 4");
    expect(thrown(() => download(mem(16, false), new Uint8Array(4))).message).toBe("src has been freed");
    expect(thrown(() => upload(mem(8), new DataView(new ArrayBuffer(4)) as never)).message).toContain(
      "TypedArray or Buffer",
    );
    expect(thrown(() => upload(mem(8), [1, 2] as never)).message).toContain("got Array");
    expect(thrown(() => fill(mem(8), 256)).message).toContain("byte must be in [0, 255]");
    expect(thrown(() => fill(mem(8), 0, { offset: 4, bytes: 8 })).message).toContain("8 bytes at offset 4");
    expect(thrown(() => copyDevice(mem(8), mem(16), { bytes: 16 })).message).toContain(
      "dst holds 8 bytes; 16 bytes",
    );
    expect(thrown(() => copyDevice(mem(8), mem(8), { srcOffset: 12 })).message).toContain(
      "bytes must be in [0",
    );
    expect(thrown(() => upload({ ptr: 0n, bytes: 8, alive: true }, new Uint8Array(4))).message).toContain(
      "not a valid address",
    );
    expect(
      thrown(() => upload({ ptr: 4096, bytes: 8, alive: true } as never, new Uint8Array(4))).message,
    ).toContain("BigInt");
    expect(thrown(() => upload(null as never, new Uint8Array(4))).message).toContain("device memory");
    expect(thrown(() => checkDevice("x", mem(1.5), 1)).message).toContain("x size must be an integer");
    for (const lib of ALL_LIBRARIES) expect(lib.isLoaded).toBe(false);
  });

  it("returns the address at the offset when everything fits", () => {
    expect(checkDevice("x", mem(64), 16, 48)).toBe(0x7f0000000000n + 48n);
  });
});

describe("kernel parameters", () => {
  it("lays parameters out at their natural alignment", () => {
    expect(paramLayout(["ptr", "f32", "i32"])).toEqual({ offsets: [0, 8, 12], size: 16 });
    expect(paramLayout(["f16", "ptr", "bf16", "f64"])).toEqual({ offsets: [0, 8, 16, 24], size: 32 });
    expect(paramLayout([])).toEqual({ offsets: [], size: 8 });
    expect(thrown(() => paramLayout(["f32", "float" as never])).message).toBe(
      'parameter 1: unknown type "float"',
    );
  });

  it("writes each value where its pointer points, and range-checks it", () => {
    const args = new KernelArgs(["ptr", "f32", "i32", "u64", "f16", "i64"]);
    try {
      expect(args.complete).toBe(false);
      args.setAll([mem(64), 2.5, -7, 2n ** 63n, 0.333, -1]);
      expect(args.complete).toBe(true);
      const base = args.params[0]!;
      expect([...args.params].map((p) => Number(p - base))).toEqual([0, 8, 12, 16, 24, 32]);
      expect(thrown(() => args.set(2, 2 ** 31)).message).toContain("argument 2 (i32) must be in");
      expect(thrown(() => args.set(2, 1.5)).message).toContain("must be an integer");
      expect(thrown(() => args.set(3, -1n)).message).toContain("out of range");
      expect(thrown(() => args.set(0, mem(64, false))).message).toContain("has been freed");
      expect(thrown(() => args.set(1, 1n)).message).toContain("must be a number");
      expect(thrown(() => args.set(6, 0)).message).toContain("out of range (kernel takes 6)");
      expect(thrown(() => args.setAll([1])).message).toBe("expected 6 arguments, got 1");
      expect(float16BitsToNumber(0x3555)).toBeCloseTo(0.333, 3);
    } finally {
      args.free();
    }
    expect(thrown(() => args.set(1, 1)).message).toContain("freed");
  });

  it("checks grid and block dimensions", () => {
    expect(checkDim3("grid", 7, [2 ** 31 - 1, 65535, 65535])).toEqual([7, 1, 1]);
    expect(checkDim3("block", [32, 4], [1024, 1024, 64])).toEqual([32, 4, 1]);
    expect(thrown(() => checkDim3("grid", 0, [10, 10, 10])).message).toBe("grid.x must be in [1, 10], got 0");
    expect(thrown(() => checkDim3("block", [1, 1, 65], [1024, 1024, 64])).message).toContain("block.z");
  });
});

describe("cuBLASLt row-major recipe", () => {
  it("computes nn.Linear as D[N,M] = Wᵀ(T)·X(N), as verified on the GPU", () => {
    expect(ltRecipe({ m: 5, n: 3, k: 4, transA: false, transB: true })).toEqual({
      transa: 1,
      transb: 0,
      a: { rows: 4, cols: 3, ld: 4 },
      b: { rows: 4, cols: 5, ld: 4 },
      d: { rows: 3, cols: 5, ld: 3 },
    });
  });

  it("handles plain and transposed A", () => {
    expect(ltRecipe({ m: 5, n: 3, k: 4, transA: false, transB: false })).toMatchObject({
      transa: 0,
      a: { rows: 3, cols: 4, ld: 3 },
    });
    expect(ltRecipe({ m: 5, n: 3, k: 4, transA: true, transB: false })).toMatchObject({
      transb: 1,
      b: { rows: 5, cols: 4, ld: 5 },
    });
  });

  it("maps activations and bias to epilogues", () => {
    expect([
      epilogueFor("none", false),
      epilogueFor("none", true),
      epilogueFor("relu", true),
      epilogueFor("gelu", true),
    ]).toEqual([1, 4, 6, 36]);
  });
});

describe("convolution geometry", () => {
  it("expresses NHWC through strides over logical NCHW dims", () => {
    const g = convGeometry({
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
    });
    expect([g.outH, g.outW]).toEqual([10, 10]);
    expect(g.x).toEqual({ dims: [2, 16, 10, 10], strides: [1600, 1, 160, 16], bytes: 6400 });
    expect(g.w).toEqual({ dims: [32, 16, 3, 3], strides: [144, 1, 48, 16], bytes: 9216 });
    expect(g.b).toEqual({ dims: [1, 32, 1, 1], strides: [32, 1, 32, 32], bytes: 64 });
    expect(g.y.strides).toEqual([3200, 1, 320, 32]);
  });

  it("handles NCHW, stride, dilation, asymmetric padding and groups", () => {
    const g = convGeometry({
      layout: "NCHW",
      dtype: "float32",
      n: 1,
      c: 8,
      h: 9,
      w: 7,
      k: 8,
      r: 3,
      s: 3,
      stride: 2,
      padding: [0, 1, 1, 0],
      dilation: [1, 2],
      groups: 8,
    });
    expect([g.outH, g.outW]).toEqual([4, 2]);
    expect(g.w).toEqual({ dims: [8, 1, 3, 3], strides: [9, 9, 3, 1], bytes: 288 });
    expect(g.x.strides).toEqual([504, 63, 7, 1]);
    expect([g.prePadding, g.postPadding]).toEqual([
      [0, 1],
      [1, 0],
    ]);
  });

  it("refuses inconsistent specs", () => {
    const base = { layout: "NHWC", dtype: "float16", n: 1, c: 6, h: 4, w: 4, k: 4, r: 3, s: 3 } as const;
    expect(thrown(() => convGeometry({ ...base, groups: 4 })).message).toBe(
      "groups (4) must divide c (6) and k (4)",
    );
    expect(thrown(() => convGeometry({ ...base, r: 7 })).message).toContain("does not fit");
    expect(thrown(() => convGeometry({ ...base, layout: "NCDHW" as never })).message).toContain(
      'layout must be one of "NHWC", "NCHW"',
    );
    expect(thrown(() => convGeometry({ ...base, activation: "gelu" as never })).message).toContain(
      "activation",
    );
    expect(thrown(() => convGeometry({ ...base, stride: [1, 0] })).message).toContain("stride[1]");
  });
});

describe("dispatcher arguments", () => {
  const calls: string[] = [];
  const host: ArgHost = {
    newTensorHandle: (h) => {
      calls.push(`handle ${h}`);
      return h + 1n;
    },
    newIntList: (v) => {
      calls.push(`list ${v.join(",")}`);
      return 0x5000n;
    },
    newString: (s) => {
      calls.push(`str ${s}`);
      return 0x6000n;
    },
    box: (v) => {
      calls.push(`box ${v}`);
      return 0x7000n;
    },
    dtypeCode: (d) => ({ float16: 5, float32: 6 })[d as "float16"] ?? 99,
    deviceTypeCode: (t) => (t === "cuda" ? 1 : 0),
  };

  it("encodes each schema type as a StableIValue", () => {
    calls.length = 0;
    const stack = encodeStack(
      [
        arg.tensor({ handle: 0x1000n }),
        arg.int(-1),
        arg.float(1e-5),
        arg.bool(true),
        arg.dtype("float16"),
        arg.device("cuda", 3),
        arg.none(),
        arg.optional(arg.tensor({ handle: 0x2000n })),
        arg.intList([1, -2]),
        arg.str("tanh"),
      ],
      1,
      host,
    );
    expect(stack.length).toBe(10);
    expect(stack[0]).toBe(0x1001n);
    expect(stack[1]).toBe(2n ** 64n - 1n);
    expect(decodeInt(stack[1]!)).toBe(-1n);
    expect(decodeFloat(stack[2]!)).toBe(1e-5);
    expect(stack[2]).toBe(encodeFloat(1e-5));
    expect([stack[3], stack[4], stack[5], stack[6]]).toEqual([1n, 5n, encodeDevice(1, 3), 0n]);
    expect(encodeDevice(1, 3)).toBe((1n << 32n) | 3n);
    expect([stack[7], stack[8], stack[9]]).toEqual([0x7000n, 0x5000n, 0x6000n]);
    expect(calls).toEqual([
      `handle ${0x1000n}`,
      `handle ${0x2000n}`,
      `box ${0x2001n}`,
      `list 1,${2n ** 64n - 2n}`,
      "str tanh",
    ]);
  });

  it("sizes the stack for the larger of arguments and returns", () => {
    expect(encodeStack([arg.int(1)], 3, host).length).toBe(3);
    expect(encodeStack([], 0, host).length).toBe(1);
  });

  it("validates every argument before allocating anything", () => {
    calls.length = 0;
    const e = thrown(() => encodeStack([arg.tensor({ handle: 0x1000n }), arg.intList([1, 0.5])], 1, host));
    expect(e.message).toBe("argument 1[1] must be a safe integer, got 0.5");
    expect(calls).toEqual([]);
    expect(thrown(() => encodeStack([arg.tensor({ handle: 0n })], 1, host)).message).toContain(
      "no live handle",
    );
    expect(thrown(() => encodeStack([arg.optional(arg.none())], 1, host)).message).toContain(
      "optional must hold a value",
    );
    expect(thrown(() => encodeStack([arg.int(2n ** 63n)], 1, host)).message).toContain("outside int64");
    expect(thrown(() => encodeStack([{ kind: "scalar" } as never], 1, host)).message).toContain(
      'unknown argument kind "scalar"',
    );
  });
});

describe("tensor views", () => {
  it("computes contiguous strides and the bytes a view spans", () => {
    expect(contiguousStrides([2, 3, 4])).toEqual([12, 4, 1]);
    expect(contiguousStrides([])).toEqual([]);
    expect(viewExtentBytes([2, 3], [3, 1], 0, 4)).toBe(24);
    expect(viewExtentBytes([3, 2], [1, 3], 2, 2)).toBe(16);
    expect(viewExtentBytes([0, 5], [5, 1], 0, 4)).toBe(0);
    expect(viewExtentBytes([], [], 0, 2)).toBe(2);
  });
});

describe("kernel compilation inputs", () => {
  it("resolves NVRTC options from the target and include folders", () => {
    const none = () => [];
    expect(resolveOptions({}, "sm_90", none)).toEqual(["--gpu-architecture=sm_90"]);
    expect(
      resolveOptions({ arch: "sm_90a", options: ["--use_fast_math"], includeDirs: ["/inc"] }, "sm_80", () => [
        "/cuda/include",
        "/other",
      ]),
    ).toEqual(["--gpu-architecture=sm_90a", "-I/inc", "-I/cuda/include", "--use_fast_math"]);
    expect(resolveOptions({ output: "ptx" }, "sm_90", none)).toEqual(["--gpu-architecture=compute_90"]);
    expect(thrown(() => resolveOptions({ arch: "hopper" }, "sm_90", none)).message).toContain(
      'arch must look like "sm_90"',
    );
  });

  it("keys the cache on every input that changes the image", () => {
    const base = {
      source: "k",
      options: ["--gpu-architecture=sm_90"],
      nameExpressions: [],
      output: "cubin",
      nvrtcVersion: [13, 0],
    } as const;
    const key = kernelCacheKey(base);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(kernelCacheKey({ ...base })).toBe(key);
    expect(kernelCacheKey({ ...base, source: "k2" })).not.toBe(key);
    expect(kernelCacheKey({ ...base, options: ["--gpu-architecture=sm_80"] })).not.toBe(key);
    expect(kernelCacheKey({ ...base, nameExpressions: ["f<int>"] })).not.toBe(key);
    expect(kernelCacheKey({ ...base, output: "ptx" })).not.toBe(key);
    expect(kernelCacheKey({ ...base, nvrtcVersion: [13, 1] })).not.toBe(key);
  });

  it("puts the disk cache under ~/.cache/torchc unless told otherwise", () => {
    expect(defaultKernelCacheDir({ TORCHC_CACHE_DIR: "/c" })).toBe("/c/kernels");
    expect(defaultKernelCacheDir({ XDG_CACHE_HOME: "/x" })).toBe("/x/torchc/kernels");
    expect(defaultKernelCacheDir({})).toMatch(/\.cache\/torchc\/kernels$/);
  });
});

// The CUDA backend's saved-engine bookkeeping that needs no GPU: problem keys (a conv's key ignores its epilogue's
// constant values, so a refit or a different checkpoint finds the same plan) and the kernel cache that serves a
// package's NVRTC images without compiling.
import { describe, expect, it } from "vitest";
import { convKey, matmulKey } from "../../src/backends/cuda/artifacts.js";
import { PackageKernelCache, programId } from "../../src/backends/cuda/artifacts-kernels.js";
import type { CudnnConvSpec } from "../../src/backends/cuda/kernels/conv-cudnn.js";
import { convSpec, matmulShape } from "../backends/cuda/specs.js";

const spec: CudnnConvSpec = convSpec({
  layout: "NHWC",
  dtype: "float16",
  x: [1, 32, 112, 112],
  w: [16, 32, 1, 1],
  y: [1, 16, 112, 112],
  padding: [0, 0],
  epilogue: [
    { kind: "channel", op: "mul", values: [1, 2, 3] } as never,
    { kind: "act", fn: "silu" } as never,
  ],
});

describe("saved-engine problem keys", () => {
  it("a conv's key ignores its epilogue's constants but not its shape, layout or epilogue ops", () => {
    const other = {
      ...spec,
      epilogue: [{ kind: "channel", op: "mul", values: [9, 9, 9] } as never, spec.epilogue[1]],
    };
    expect(convKey(other)).toBe(convKey(spec));
    expect(convKey({ ...spec, layout: "NCHW" })).not.toBe(convKey(spec));
    expect(convKey({ ...spec, stride: [2, 2] })).not.toBe(convKey(spec));
    expect(convKey({ ...spec, epilogue: [spec.epilogue[0]] })).not.toBe(convKey(spec));
  });

  it("a matmul's key covers geometry, epilogue, TF32 and the workspace bound", () => {
    const g = matmulShape(8, 16, 32, { bT: true }) as never;
    const e = { bias: true, activation: "gelu" } as const;
    const k = matmulKey(g, e, false, 1 << 20);
    expect(matmulKey(g, e, false, 1 << 20)).toBe(k);
    expect(matmulKey(g, { ...e, bias: false }, false, 1 << 20)).not.toBe(k);
    expect(matmulKey(g, e, true, 1 << 20)).not.toBe(k);
    expect(matmulKey(g, e, false, 1 << 21)).not.toBe(k);
  });
});

describe("the package's kernel cache", () => {
  const source = 'extern "C" __global__ void k0(float* x) { x[0] = 1; }';
  const image = new Uint8Array([1, 2, 3, 4]);

  it("serves a saved image for the same source and target without compiling, and records it for the next save", () => {
    const id = programId(source, { nameExpressions: [] }, "sm_90");
    const cache = new PackageKernelCache(false, new Map([[id, { kind: "cubin", image, loweredNames: {} }]]));
    const p = cache.compile(source, { nameExpressions: [] }, "sm_90");
    expect(p.hit).toBe("package");
    expect(p.image).toBe(image);
    expect(cache.restored).toBe(1);
    expect([...cache.used.keys()]).toEqual([id]);
  });

  it("keys images by architecture, output kind, name expressions, options and source", () => {
    const id = programId(source, {}, "sm_90");
    expect(programId(source, {}, "sm_80")).not.toBe(id);
    expect(programId(source, { arch: "sm_89" }, "sm_90")).not.toBe(id);
    expect(programId(source, { output: "ptx" }, "sm_90")).not.toBe(id);
    expect(programId(source, { nameExpressions: ["k<float>"] }, "sm_90")).not.toBe(id);
    expect(programId(source, { options: ["--use_fast_math"] }, "sm_90")).not.toBe(id);
    expect(programId(`${source} `, {}, "sm_90")).not.toBe(id);
    expect(programId(source, { includeDirs: ["/elsewhere"] }, "sm_90")).toBe(id);
  });
});

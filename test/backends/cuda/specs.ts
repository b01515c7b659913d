// Library problems the device-layer tests build (test/backends/device-layer.test.ts,
// test/runtime/package-kernels.test.ts, test/gpu/device-plans.gpu.test.ts): no vitest here, the GPU tests
// import it under Node's test runner.
import type { ConvEpilogueOp } from "../../../src/backends/cuda/fuse/steps.js";
import type { CudnnConvSpec } from "../../../src/backends/cuda/kernels/conv-cudnn.js";
import type { MatmulGeometry } from "../../../src/backends/cuda/kernels/matmul-cublaslt.js";

/** An engine conv spec: stride and dilation 1, padding 1, a bias and TF32 off unless `s` says otherwise. */
export function convSpec(
  s: Pick<CudnnConvSpec, "layout" | "dtype" | "x" | "w" | "y" | "epilogue"> & Partial<CudnnConvSpec>,
): CudnnConvSpec {
  return {
    layout: s.layout,
    dtype: s.dtype,
    x: s.x,
    w: s.w,
    y: s.y,
    stride: s.stride ?? [1, 1],
    padding: s.padding ?? [1, 1],
    dilation: s.dilation ?? [1, 1],
    bias: s.bias ?? true,
    epilogue: s.epilogue,
    allowTf32: s.allowTf32 ?? false,
  };
}

/** The epilogue with every kind: tanh → + tensor `tensor` → × `channel` → gelu_erf. */
export function fusedEpilogue(tensor: string, channel: Float64Array): ConvEpilogueOp[] {
  return [
    { kind: "act", fn: "tanh" },
    { kind: "tensor", op: "add", tensor },
    { kind: "channel", op: "mul", values: channel },
    { kind: "act", fn: "gelu_erf" },
  ];
}

/** A cuBLASLt matmul's geometry without its dtype: [M, K]·[K, N], one batch, unless `g` says otherwise. */
export function matmulShape(
  m: number,
  n: number,
  k: number,
  g: Partial<Omit<MatmulGeometry, "m" | "n" | "k" | "dtype">> = {},
): Omit<MatmulGeometry, "dtype"> {
  return { m, n, k, aT: false, bT: false, batch: 1, strideA: 0, strideB: 0, strideD: 0, ...g };
}

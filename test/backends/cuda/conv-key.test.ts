/**
 * convKey (backends/cuda/artifacts.ts): which conv layers are one problem, sharing one set of cuDNN plans and one
 * plan-cache entry. Constant values and the name of an added tensor do not change a plan (the values are refit, the
 * tensor is a pointer bound per layer, always of y's shape); shapes, ops and types do.
 */
import { describe, expect, it } from "vitest";
import { convKey } from "../../../src/backends/cuda/artifacts.js";
import type { CudnnConvSpec } from "../../../src/backends/cuda/kernels/conv-cudnn.js";
import { convSpec } from "./specs.js";

const base: CudnnConvSpec = convSpec({
  layout: "NHWC",
  dtype: "float16",
  x: [8, 64, 56, 56],
  w: [256, 64, 1, 1],
  y: [8, 256, 56, 56],
  padding: [0, 0],
  epilogue: [
    { kind: "channel", op: "mul", values: Float64Array.of(1, 2) },
    { kind: "tensor", op: "add", tensor: "layer1.0.downsample" },
    { kind: "act", fn: "relu" },
  ],
});

const withEpilogue = (f: (e: CudnnConvSpec["epilogue"]) => CudnnConvSpec["epilogue"]): CudnnConvSpec => ({
  ...base,
  epilogue: f(base.epilogue),
});

describe("convKey: one conv problem", () => {
  it("ignores constant values and the added tensor's name", () => {
    const other = withEpilogue((e) =>
      e.map((op) =>
        op.kind === "tensor"
          ? { ...op, tensor: "layer1.1.relu" }
          : op.kind === "channel"
            ? { ...op, values: Float64Array.of(5, 6) }
            : op,
      ),
    );
    expect(convKey(other)).toBe(convKey(base));
  });

  it("tells apart what changes the plan: the op, the epilogue's order, shapes, int8, bias", () => {
    const keys = [
      convKey(base),
      convKey(
        withEpilogue((e) => e.map((op) => (op.kind === "tensor" ? { ...op, op: "mul" as const } : op))),
      ),
      convKey(withEpilogue((e) => [e[1], e[0], e[2]])),
      convKey(withEpilogue((e) => e.slice(0, 2))),
      convKey({ ...base, x: [8, 64, 28, 28], y: [8, 256, 28, 28] }),
      convKey({ ...base, int8: true }),
      convKey({ ...base, bias: false }),
      convKey({ ...base, stride: [2, 2], y: [8, 256, 28, 28] }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});

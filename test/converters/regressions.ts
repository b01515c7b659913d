import type { OpCase } from "./harness.js";

/**
 * Counterexamples fast-check found, kept as concrete cases (not seeds, which change meaning when a
 * generator changes). properties.test.ts runs each before the random draws of its converter, and
 * regressions.test.ts runs them all on their own. To keep a new one, paste the JSON a failing property
 * prints after "counterexample".
 */
export interface Regression {
  readonly op: OpCase["op"];
  readonly converter: string;
  /** What went wrong, and what fixed it. */
  readonly note: string;
  readonly case: OpCase;
}

export const REGRESSIONS: readonly Regression[] = [
  {
    op: "aten.eq.Tensor",
    converter: "eq",
    note: "comparison converters passed ctx.typeOf unbound to the promotion helper; ConversionNet methods are now bound",
    case: {
      op: "aten.eq.Tensor",
      args: { self: { kind: "tensor", name: "x" }, other: { kind: "tensor", name: "y" } },
      tensors: {
        x: { dtype: "float32", shape: [], data: [0] },
        y: { dtype: "float32", shape: [], data: [0] },
      },
    },
  },
  {
    op: "aten.eq.Scalar",
    converter: "eq",
    note: "same unbound typeOf, through a Python-number operand",
    case: {
      op: "aten.eq.Scalar",
      args: { self: { kind: "tensor", name: "x" }, other: { kind: "int", value: -1 } },
      tensors: { x: { dtype: "float32", shape: [], data: [0] } },
    },
  },
  {
    op: "aten.mul.Tensor",
    converter: "mul",
    note: "bool × bool was refused as 'result of dtype bool'; PyTorch defines it as logical and",
    case: {
      op: "aten.mul.Tensor",
      args: { self: { kind: "tensor", name: "x" }, other: { kind: "tensor", name: "y" } },
      tensors: {
        x: { dtype: "bool", shape: [3], data: [1, 0, 1] },
        y: { dtype: "bool", shape: [1], data: [1] },
      },
    },
  },
  {
    op: "aten.std.correction",
    converter: "std",
    note: "two-pass variance in fp32 layers cancels where the float64 reference does not; compared against input magnitude",
    case: {
      op: "aten.std.correction",
      args: {
        self: { kind: "tensor", name: "x" },
        dim: { kind: "ints", value: [0] },
        correction: { kind: "int", value: 1 },
        keepdim: { kind: "bool", value: false },
      },
      tensors: {
        x: {
          dtype: "float32",
          shape: [2, 4],
          data: [0, 0, 2.999958038330078, 0, 0, 0, 2.999920606613159, 0],
        },
      },
    },
  },
  {
    op: "aten._native_batch_norm_legit_no_training.default",
    converter: "batch-norm-folded-scale",
    note: "x·s + t loses digits when x ≈ mean (as TensorRT's scale layer does); compared against input magnitude",
    case: {
      op: "aten._native_batch_norm_legit_no_training.default",
      args: {
        input: { kind: "tensor", name: "x" },
        weight: { kind: "none" },
        bias: { kind: "none" },
        running_mean: { kind: "tensor", name: "m" },
        running_var: { kind: "tensor", name: "v" },
        momentum: { kind: "float", value: 0.1 },
        eps: { kind: "float", value: 0.00001 },
      },
      tensors: {
        x: { dtype: "float32", shape: [1, 3], data: [0, 0, 2.978980302810669] },
        m: { dtype: "float32", shape: [3], data: [0, 0, 2.9881694316864014], weight: true },
        v: {
          dtype: "float32",
          shape: [3],
          data: [0.10000000149011612, 0.10000000149011612, 0.10000011324882507],
          weight: true,
        },
      },
    },
  },
  {
    op: "aten.batch_norm.default",
    converter: "batch-norm-batch-statistics",
    note: "fp32 x − mean on a nearly constant channel (var ≪ eps) amplified by rsqrt(var + eps); tolerance scaled by the channel's conditioning (batchStatsScale)",
    case: {
      op: "aten.batch_norm.default",
      args: {
        input: { kind: "tensor", name: "x" },
        weight: { kind: "tensor", name: "w" },
        bias: { kind: "none" },
        running_mean: { kind: "none" },
        running_var: { kind: "none" },
        training: { kind: "bool", value: false },
        momentum: { kind: "float", value: 0.1 },
        eps: { kind: "float", value: 0.00001 },
        cudnn_enabled: { kind: "bool", value: true },
      },
      tensors: {
        x: {
          dtype: "float32",
          shape: [1, 3, 2, 1],
          data: [-3.9999377727508545, -3.9999327659606934, 0, 0, 0, 0],
        },
        w: { dtype: "float32", shape: [3], data: [1.0612902641296387, 0, 0] },
      },
    },
  },
];

// planDispatch: schema-ordered argument encoding for aoti_torch_call_dispatcher, defaults included, and
// refusals (with reasons) for what the 2.11 shim cannot carry.
import { describe, expect, it } from "vitest";
import {
  type DispatchPlan,
  formatPlan,
  isUnsupported,
  splitOpName,
} from "../../../src/backends/torch/encoded-arg.js";
import { planDispatch } from "../../../src/backends/torch/plan-dispatch.js";
import type { Arg, Node } from "../../../src/ir/graph.js";

const T = (name: string): Arg => ({ kind: "tensor", name });
const I = (value: number): Arg => ({ kind: "int", value });
const F = (value: number): Arg => ({ kind: "float", value });
const L = (...value: number[]): Arg => ({ kind: "ints", value });

function node(op: string, args: Record<string, Arg>, outputs = ["y"]): Node {
  return { name: "n", op, args, outputs, meta: {} };
}

function plan(op: string, args: Record<string, Arg>): DispatchPlan {
  const p = planDispatch(node(op, args));
  if (isUnsupported(p)) throw new Error(p.unsupported);
  return p;
}

function refusal(op: string, args: Record<string, Arg>): string {
  const p = planDispatch(node(op, args));
  if (!isUnsupported(p)) throw new Error(`planned: ${formatPlan(p)}`);
  return p.unsupported;
}

describe("op names", () => {
  it("splits dotted overloads into the dispatcher's name and overload", () => {
    expect(splitOpName("aten.add.Tensor")).toEqual(["aten::add", "Tensor"]);
    expect(splitOpName("aten.relu.default")).toEqual(["aten::relu", ""]);
    expect(splitOpName("aten._native_batch_norm_legit_no_training.default")).toEqual([
      "aten::_native_batch_norm_legit_no_training",
      "",
    ]);
    expect(splitOpName("relu")).toBeUndefined();
  });
});

describe("argument encoding", () => {
  it("fills every defaulted argument, expanding single ints to the schema's list length", () => {
    const p = plan("aten.conv2d.default", { input: T("x"), weight: T("w"), stride: I(2) });
    expect(p.op).toBe("aten::conv2d");
    expect(p.overload).toBe("");
    expect(p.names).toEqual(["input", "weight", "bias", "stride", "padding", "dilation", "groups"]);
    expect(p.args).toEqual([
      { kind: "tensor", value: "x" },
      { kind: "tensor", value: "w" },
      { kind: "none" },
      { kind: "intList", values: [2, 2] },
      { kind: "intList", values: [0, 0] },
      { kind: "intList", values: [1, 1] },
      { kind: "int", value: 1 },
    ]);
    expect(p.returns).toBe(1);
    expect(p.via).toBe("dispatcher");
  });

  it("boxes present optionals (int?, int[]?, Tensor?, str?, MemoryFormat?) and passes None as 0", () => {
    expect(plan("aten.slice.Tensor", { self: T("x"), dim: I(1), start: I(0), end: I(32) }).args).toEqual([
      { kind: "tensor", value: "x" },
      { kind: "int", value: 1 },
      { kind: "optional", value: { kind: "int", value: 0 } },
      { kind: "optional", value: { kind: "int", value: 32 } },
      { kind: "int", value: 1 },
    ]);
    expect(
      plan("aten.mean.dim", { self: T("x"), dim: L(2, 3), keepdim: { kind: "bool", value: true } }).args,
    ).toEqual([
      { kind: "tensor", value: "x" },
      { kind: "optional", value: { kind: "intList", values: [2, 3] } },
      { kind: "bool", value: true },
      { kind: "none" },
    ]);
    expect(
      plan("aten.layer_norm.default", { input: T("x"), normalized_shape: L(32), weight: T("g") }).args.slice(
        2,
        4,
      ),
    ).toEqual([{ kind: "optional", value: { kind: "tensor", value: "g" } }, { kind: "none" }]);
    expect(
      plan("aten.clone.default", {
        self: T("x"),
        memory_format: { kind: "memoryFormat", value: "contiguous_format" },
      }).args[1],
    ).toEqual({
      kind: "optional",
      value: { kind: "memoryFormat", value: "contiguous_format", code: 0 },
    });
    expect(
      plan("aten.div.Tensor_mode", {
        self: T("x"),
        other: T("y"),
        rounding_mode: { kind: "string", value: "floor" },
      }).args[2],
    ).toEqual({
      kind: "optional",
      value: { kind: "str", value: "floor" },
    });
  });

  it("encodes str, float, dtype, float[]? and reads TorchScript dtype codes", () => {
    expect(
      plan("aten.gelu.default", { self: T("x"), approximate: { kind: "string", value: "tanh" } }).args[1],
    ).toEqual({ kind: "str", value: "tanh" });
    expect(plan("aten.gelu.default", { self: T("x") }).args[1]).toEqual({ kind: "str", value: "none" });
    expect(plan("aten.to.dtype", { self: T("x"), dtype: I(5) }).args[1]).toEqual({
      kind: "dtype",
      value: "float16",
    });
    expect(
      plan("aten.upsample_nearest2d.vec", {
        input: T("x"),
        output_size: { kind: "none" },
        scale_factors: { kind: "floats", value: [2, 2] },
      }).args,
    ).toEqual([
      { kind: "tensor", value: "x" },
      { kind: "none" },
      { kind: "optional", value: { kind: "floatList", values: [2, 2] } },
    ]);
    const ln = plan("aten.native_layer_norm.default", {
      input: T("x"),
      normalized_shape: L(8),
      weight: T("g"),
      bias: T("b"),
      eps: { kind: "float", value: "1e-05" as never },
    });
    expect(ln.args[4]).toEqual({ kind: "float", value: 1e-5 });
    expect(ln.returns).toBe(3);
  });

  it("encodes Tensor[] and Tensor?[] lists", () => {
    expect(
      plan("aten.cat.default", { tensors: { kind: "tensors", names: ["a", "b"] }, dim: I(1) }).args[0],
    ).toEqual({ kind: "tensorList", values: ["a", "b"] });
    expect(
      plan("aten.index.Tensor", { self: T("x"), indices: { kind: "tensors", names: [null, "i"] } }).args[1],
    ).toEqual({ kind: "optTensorList", values: [null, "i"] });
  });

  it("marks list results and multi-result ops", () => {
    expect(plan("aten.split.Tensor", { self: T("x"), split_size: I(2) }).returns).toBe("list");
    expect(plan("aten.max_pool2d_with_indices.default", { self: T("x"), kernel_size: L(2, 2) }).returns).toBe(
      2,
    );
  });

  it("passes Device? as None (one GPU) and never pins memory", () => {
    const p = plan("aten.zeros_like.default", {
      self: T("x"),
      device: { kind: "device", value: "cpu" },
      pin_memory: { kind: "bool", value: true },
    });
    expect(p.args[3]).toEqual({ kind: "none" });
    expect(p.args[4]).toEqual({ kind: "none" });
  });

  it("routes add.Tensor's Scalar alpha to the generated shim as a double", () => {
    const p = plan("aten.add.Tensor", { self: T("x"), other: T("y"), alpha: F(0.5) });
    expect(p.via).toBe("aoti_torch_cuda_add_Tensor");
    expect(p.args[2]).toEqual({ kind: "double", value: 0.5 });
  });
});

describe("refusals", () => {
  it("refuses Scalar arguments outside the shim table, naming the rewrite table", () => {
    expect(refusal("aten.mul.Scalar", { self: T("x"), other: F(2) })).toMatch(
      /'other' \(Scalar\).*Scalar.*scalar-rewrites/,
    );
    expect(refusal("aten.hardtanh.default", { self: T("x") })).toMatch(/min_val/);
  });

  it("refuses numbers in Tensor slots until they are constants", () => {
    expect(refusal("aten.mul.Tensor", { self: T("x"), other: F(0.5) })).toMatch(/0-d constant/);
  });

  it("refuses ops it cannot name, creation ops without a tensor, and a required Device", () => {
    expect(refusal("aten.not_an_op.default", { self: T("x") })).toMatch(/torchc's op table/);
    expect(refusal("aten.zeros.default", { size: L(2) })).toMatch(/without a tensor input/);
    expect(
      refusal("aten.to.device", {
        self: T("x"),
        device: { kind: "device", value: "cuda" },
        dtype: { kind: "dtype", value: "float32" },
      }),
    ).toMatch(/Device/);
    expect(refusal("aten.relu.default", {})).toMatch(/required/);
  });

  it("refuses the add shim for integral results (ATen rejects a double alpha there)", () => {
    const p = planDispatch(node("aten.add.Tensor", { self: T("x"), other: T("y") }), {
      typeOf: () => ({ dtype: "int64", shape: [2] }),
    });
    expect(isUnsupported(p) && p.unsupported).toMatch(/double alpha/);
  });
});

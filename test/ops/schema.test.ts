import { describe, expect, it } from "vitest";
import { TorchcError } from "../../src/errors.js";
import {
  getOp,
  isOpName,
  normalizeArgs,
  OP_NAMES,
  OPS,
  parseSchema,
  withDefaults,
} from "../../src/ops/index.js";
import { F, I, Is, NONE, T } from "./helpers.js";

describe("parseSchema", () => {
  it("reads types, fixed list sizes, defaults and keyword-only arguments", () => {
    const s = parseSchema(
      "x",
      'Tensor(a!) self, SymInt[2] stride=1, int[2] padding=[0, 0], Scalar alpha=1, float eps=1e-05, str mode="valid", *, bool k=False, int? d=None',
    );
    expect(s.map((a) => a.name)).toEqual(["self", "stride", "padding", "alpha", "eps", "mode", "k", "d"]);
    expect(s[0]).toEqual({ name: "self", type: "Tensor" });
    expect(s[1]).toEqual({
      name: "stride",
      type: "int[]",
      size: 2,
      default: { kind: "ints", value: [1, 1] },
    });
    expect(s[2].default).toEqual({ kind: "ints", value: [0, 0] });
    expect(s[3].default).toEqual({ kind: "int", value: 1 });
    expect(s[4].default).toEqual({ kind: "float", value: 1e-5 });
    expect(s[5].default).toEqual({ kind: "string", value: "valid" });
    expect(s[6]).toEqual({
      name: "k",
      type: "bool",
      kwargOnly: true,
      default: { kind: "bool", value: false },
    });
    expect(s[7].default).toEqual({ kind: "none" });
  });

  it("strips alias annotations with arrows", () => {
    expect(parseSchema("x", "Tensor(a -> *) self, int dim=0")[0]).toEqual({ name: "self", type: "Tensor" });
  });
});

describe("the op table", () => {
  it("lists every op once, sorted, with well-formed names and schemas", () => {
    expect(OP_NAMES.length).toBe(Object.keys(OPS).length);
    expect([...OP_NAMES].sort()).toEqual(OP_NAMES);
    for (const name of OP_NAMES) {
      expect(name).toMatch(/^(aten|quantized_decomposed|torchc)\.\w+\.\w+$/);
      const def = getOp(name);
      expect(def?.name).toBe(name);
      const argNames = def?.schema.map((a) => a.name) ?? [];
      expect(new Set(argNames).size).toBe(argNames.length);
    }
  });

  it("answers isOpName and getOp", () => {
    expect(isOpName("aten.conv2d.default")).toBe(true);
    expect(isOpName("aten.conv2d")).toBe(false);
    expect(isOpName("toString")).toBe(false);
    expect(getOp("aten.nope.default")).toBeUndefined();
  });

  it("covers the issue's op list in both IR flavours", () => {
    const needed = [
      "aten.conv2d.default",
      "aten.convolution.default",
      "aten.conv_transpose2d.input",
      "aten.batch_norm.default",
      "aten._native_batch_norm_legit_no_training.default",
      "aten.linear.default",
      "aten.addmm.default",
      "aten.mm.default",
      "aten.bmm.default",
      "aten.matmul.default",
      "aten.add.Tensor",
      "aten.mul.Scalar",
      "aten.relu.default",
      "aten.hardtanh.default",
      "aten.silu.default",
      "aten.sigmoid.default",
      "aten.tanh.default",
      "aten.gelu.default",
      "aten.hardswish.default",
      "aten.hardsigmoid.default",
      "aten.leaky_relu.default",
      "aten.mean.dim",
      "aten.sum.dim_IntList",
      "aten.amax.default",
      "aten.adaptive_avg_pool2d.default",
      "aten._adaptive_avg_pool2d.default",
      "aten.avg_pool2d.default",
      "aten.max_pool2d.default",
      "aten.max_pool2d_with_indices.default",
      "aten.softmax.int",
      "aten._softmax.default",
      "aten.log_softmax.int",
      "aten._log_softmax.default",
      "aten.layer_norm.default",
      "aten.native_layer_norm.default",
      "aten.view.default",
      "aten.reshape.default",
      "aten.flatten.using_ints",
      "aten.permute.default",
      "aten.transpose.int",
      "aten.unsqueeze.default",
      "aten.squeeze.dim",
      "aten.expand.default",
      "aten.cat.default",
      "aten.slice.Tensor",
      "aten.select.int",
      "aten.clone.default",
      "aten.contiguous.default",
      "aten.dropout.default",
      "aten.scaled_dot_product_attention.default",
      "aten.embedding.default",
    ];
    expect(needed.filter((n) => !isOpName(n))).toEqual([]);
  });
});

describe("argument records", () => {
  it("applies schema defaults when parsing", () => {
    const a = OPS["aten.conv2d.default"].parse({ input: T("x"), weight: T("w") });
    expect(a).toMatchObject({ bias: null, stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 });
  });

  it("repeats a single int for fixed-size list arguments", () => {
    const a = OPS["aten.max_pool2d.default"].parse({ self: T("x"), kernel_size: I(3), padding: I(1) });
    expect(a).toMatchObject({ kernel: [3, 3], stride: [3, 3], padding: [1, 1] });
  });

  it("names the op and argument on a bad record", () => {
    const conv = OPS["aten.conv2d.default"];
    expect(() => conv.parse({ weight: T("w") })).toThrow(
      /aten\.conv2d\.default: argument 'input': required but missing/,
    );
    expect(() => conv.parse({ input: T("x"), weight: T("w"), stride: F(1.5) })).toThrow(
      /argument 'stride': expected an int list, got float/,
    );
    expect(() => conv.parse({ input: T("x"), weight: T("w"), bogus: I(1) })).toThrow(
      /argument 'bogus': not in the schema/,
    );
    try {
      conv.parse({ weight: T("w") });
    } catch (e) {
      expect(e).toBeInstanceOf(TorchcError);
      expect((e as TorchcError).code).toBe("op.args");
    }
  });
});

describe("normalizeArgs and withDefaults", () => {
  it("binds positional arguments in schema order, keyword-only ones included, then keywords", () => {
    const args = normalizeArgs("aten.add.Tensor", [T("a"), T("b")], { alpha: I(2) });
    expect(args).toEqual({ self: T("a"), other: T("b"), alpha: I(2) });
    expect(Object.keys(normalizeArgs("aten.add.Tensor", [T("a"), T("b"), I(3)]))).toEqual([
      "self",
      "other",
      "alpha",
    ]);
  });

  it("keeps schema order whatever order keywords come in", () => {
    const args = normalizeArgs("aten.conv2d.default", [T("x")], { groups: I(2), weight: T("w"), bias: NONE });
    expect(Object.keys(args)).toEqual(["input", "weight", "bias", "groups"]);
  });

  it("rejects unknown, duplicate and surplus arguments", () => {
    expect(() => normalizeArgs("aten.relu.default", [T("a")], { self: T("b") })).toThrow(
      /given both positionally and by name/,
    );
    expect(() => normalizeArgs("aten.relu.default", [], { x: T("b") })).toThrow(/'x': not in the schema/);
    expect(() => normalizeArgs("aten.relu.default", [T("a"), T("b")])).toThrow(
      /2 positional arguments for 1 parameters/,
    );
    expect(() => normalizeArgs("aten.nope.default", [])).toThrow(/not in torchc's op table/);
  });

  it("fills every default and insists on required arguments", () => {
    expect(withDefaults("aten.softmax.int", { self: T("x"), dim: I(-1) })).toEqual({
      self: T("x"),
      dim: I(-1),
      dtype: NONE,
    });
    expect(withDefaults("aten.avg_pool2d.default", { self: T("x"), kernel_size: Is(2, 2) }).stride).toEqual(
      Is(),
    );
    expect(() => withDefaults("aten.softmax.int", { self: T("x") })).toThrow(/'dim': required but missing/);
  });
});

import { numel, scalarTensor } from "../../ir/tensor.js";
import { callAten, type EmitContext, OpError } from "./aten.js";
import { knownScalar } from "./static-ops.js";
import { describe, numberOf, SCALAR_TYPES, type Val } from "./values.js";

type Lowering = (args: Val[], kwargs: ReadonlyMap<string, Val>, cx: EmitContext) => Val | undefined;

function arg(args: Val[], kwargs: ReadonlyMap<string, Val>, i: number, name: string): Val | undefined {
  return args[i] ?? kwargs.get(name);
}

/** A Python number as a 0-d tensor, as `prim::NumToTensor` makes it (int → int64, float → float64). */
export function numToTensor(v: Val): Val | undefined {
  if (v.k === "dyn") return { k: "tensor", box: v.box };
  if (v.k === "int")
    return { k: "tensor", box: { known: scalarTensor("int64", v.v), type: { dtype: "int64", shape: [] } } };
  if (v.k === "float")
    return {
      k: "tensor",
      box: { known: scalarTensor("float64", v.v), type: { dtype: "float64", shape: [] } },
    };
  if (v.k === "bool")
    return {
      k: "tensor",
      box: { known: scalarTensor("bool", v.v ? 1 : 0), type: { dtype: "bool", shape: [] } },
    };
  return undefined;
}

/** A Python number from a tensor: static when the tensor is known, else a number computed at run time. */
export function tensorToNumber(v: Val, kind: "int" | "float" | "bool"): Val | undefined {
  if (v.k === "dyn") return { k: "dyn", type: kind, box: v.box };
  if (v.k !== "tensor") return undefined;
  const known = knownScalar(v, kind);
  if (known) return known;
  if (numel(v.box.type.shape) !== 1) {
    throw new OpError(
      `cannot convert ${describe(v)} to a Python ${kind}: it has ${numel(v.box.type.shape)} elements`,
      `aten::${kind}`,
      "op.args",
    );
  }
  return { k: "dyn", type: kind, box: v.box };
}

/** `torch.tensor(data)`: a constant tensor from nested lists of Python numbers. */
function tensorLiteral(data: Val, dtypeCode: number | undefined): Val | undefined {
  const shape: number[] = [];
  const flat: Val[] = [];
  const walk = (v: Val, depth: number): boolean => {
    if (v.k === "list" || v.k === "tuple") {
      if (shape.length === depth) shape.push(v.items.length);
      else if (shape[depth] !== v.items.length) return false;
      return v.items.every((x) => walk(x, depth + 1));
    }
    if (v.k !== "int" && v.k !== "float" && v.k !== "bool") return false;
    if (depth !== shape.length) return false;
    flat.push(v);
    return true;
  };
  if (!walk(data, 0)) return undefined;
  const inferred: DType =
    flat.length > 0 && flat.every((x) => x.k === "bool")
      ? "bool"
      : flat.every((x) => x.k === "int" || x.k === "bool") && flat.length > 0
        ? "int64"
        : "float32";
  const dtype = dtypeCode !== undefined ? SCALAR_TYPES[dtypeCode] : inferred;
  if (!dtype) return undefined;
  const t = tensorFromNumbers(dtype, shape, flat.map(numberOf));
  return { k: "tensor", box: { known: t, type: { dtype, shape } } };
}

/** A fresh alias of a tensor (clone, contiguous, detach): same value, its own box so in-place ops stay local. */
function alias(v: Val | undefined): Val | undefined {
  if (v?.k !== "tensor") return undefined;
  return { k: "tensor", box: { ...v.box } };
}

/**
 * Operators that exist only in TorchScript (`prim::NumToTensor`, `aten::Int`, …) or that torchc lowers to the
 * ops export graphs use (`aten::_convolution` → `aten.conv2d.default`). Keyed `ns::name`.
 */
export const LOWERINGS: Record<string, Lowering> = {
  "prim::NumToTensor": ([v]) => (v ? numToTensor(v) : undefined),
  "aten::Int": ([v]) => (v ? tensorToNumber(v, "int") : undefined),
  "aten::Float": ([v]) => (v ? tensorToNumber(v, "float") : undefined),
  "aten::Bool": ([v]) => (v ? tensorToNumber(v, "bool") : undefined),
  "aten::ScalarImplicit": ([v]) =>
    v
      ? tensorToNumber(v, v.k === "tensor" && v.box.type.dtype.startsWith("float") ? "float" : "int")
      : undefined,
  "aten::IntImplicit": ([v]) => (v ? tensorToNumber(v, "int") : undefined),
  "aten::FloatImplicit": ([v]) => (v ? tensorToNumber(v, "float") : undefined),
  "aten::item": ([v]) =>
    v
      ? tensorToNumber(v, v.k === "tensor" && v.box.type.dtype.startsWith("float") ? "float" : "int")
      : undefined,
  "aten::tensor": (args, kwargs) => {
    const data = arg(args, kwargs, 0, "data");
    const dtypeArg = arg(args, kwargs, 1, "dtype");
    return data ? tensorLiteral(data, dtypeArg?.k === "int" ? dtypeArg.v : undefined) : undefined;
  },
  "aten::contiguous": ([v]) => alias(v),
  "aten::detach": ([v]) => alias(v),
  "prim::data": ([v]) => alias(v),
  // A slice over a whole dimension is the tensor itself (export graphs drop it too).
  "aten::slice": (args, kwargs) => {
    const self = arg(args, kwargs, 0, "self");
    if (self?.k !== "tensor") return undefined;
    const [dim, start, end, step] = [1, 2, 3, 4].map((i) =>
      arg(args, kwargs, i, ["", "dim", "start", "end", "step"][i]),
    );
    const rank = self.box.type.shape.length;
    const d =
      dim === undefined || dim.k === "none" ? 0 : dim.k === "int" ? (dim.v < 0 ? dim.v + rank : dim.v) : -1;
    if (d < 0 || d >= rank) return undefined;
    const whole =
      (start === undefined || start.k === "none" || (start.k === "int" && start.v === 0)) &&
      (end === undefined || end.k === "none" || (end.k === "int" && end.v >= self.box.type.shape[d])) &&
      (step === undefined || step.k === "none" || (step.k === "int" && step.v === 1));
    return whole ? self : undefined;
  },
  "aten::_convolution": (args, kwargs, cx) => {
    const input = arg(args, kwargs, 0, "input");
    const weight = arg(args, kwargs, 1, "weight");
    if (input?.k !== "tensor" || !weight) return undefined;
    const [bias, stride, padding, dilation, transposed, outputPadding, groups] = [2, 3, 4, 5, 6, 7, 8].map(
      (i) =>
        arg(
          args,
          kwargs,
          i,
          ["", "", "bias", "stride", "padding", "dilation", "transposed", "output_padding", "groups"][i],
        ),
    );
    if (!bias || !stride || !padding || !dilation || transposed?.k !== "bool" || !outputPadding || !groups)
      return undefined;
    const rank = input.box.type.shape.length;
    const none = new Map<string, Val>();
    if (!transposed.v && (rank === 4 || rank === 3)) {
      return callAten(
        rank === 4 ? "conv2d" : "conv1d",
        [input, weight, bias, stride, padding, dilation, groups],
        none,
        cx,
      );
    }
    if (transposed.v && (rank === 4 || rank === 3)) {
      return callAten(
        rank === 4 ? "conv_transpose2d" : "conv_transpose1d",
        [input, weight, bias, stride, padding, outputPadding, groups, dilation],
        none,
        cx,
      );
    }
    return callAten(
      "convolution",
      [input, weight, bias, stride, padding, dilation, transposed, outputPadding, groups],
      none,
      cx,
    );
  },
};

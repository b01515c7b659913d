import type { DType } from "../../ir/dtype.js";
import { numel, scalarTensor, tensorFromNumbers } from "../../ir/tensor.js";
import { callAten, type EmitContext, linkView, OpError } from "./aten.js";
import { dynScalarOp } from "./dyn-scalars.js";
import { knownScalar } from "./static-ops.js";
import { describe, int, numberOf, SCALAR_TYPES, type Val } from "./values.js";

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
export function tensorToNumber(v: Val, kind: "int" | "float" | "bool", cx: EmitContext): Val | undefined {
  if (v.k === "dyn")
    return v.type === kind
      ? v
      : dynScalarOp(kind === "int" ? "Int" : kind === "float" ? "Float" : "Bool", [v], cx);
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
  // a one-element tensor read as a Python number at run time: reshaped to 0-d, converted as Python converts
  const none = new Map<string, Val>();
  let t: Val =
    v.box.type.shape.length === 0 ? v : callAten("reshape", [v, { k: "list", items: [] }], none, cx);
  const d = v.box.type.dtype;
  const floating = d === "float32" || d === "float64" || d === "float16" || d === "bfloat16";
  if (kind === "bool" && d !== "bool") t = callAten("ne", [t, int(0)], none, cx);
  if (kind === "int" && d !== "int64")
    t = callAten("to", [floating ? callAten("trunc", [t], none, cx) : t, int(4)], none, cx);
  if (kind === "float" && !floating) t = callAten("to", [t, int(7)], none, cx);
  return t.k === "tensor" ? { k: "dyn", type: kind, box: t.box } : undefined;
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
function alias(v: Val | undefined, shares: boolean): Val | undefined {
  if (v?.k !== "tensor") return undefined;
  const box = { name: v.box.name, known: v.box.known, type: v.box.type, stale: v.box.stale };
  if (shares) linkView(v.box, box);
  return { k: "tensor", box };
}

/**
 * Operators that exist only in TorchScript (`prim::NumToTensor`, `aten::Int`, …) or that torchc lowers to the
 * ops export graphs use (`aten::_convolution` → `aten.conv2d.default`). Keyed `ns::name`.
 */
export const LOWERINGS: Record<string, Lowering> = {
  "prim::NumToTensor": ([v]) => (v ? numToTensor(v) : undefined),
  "aten::Int": ([v], _, cx) => (v ? tensorToNumber(v, "int", cx) : undefined),
  "aten::Float": ([v], _, cx) => (v ? tensorToNumber(v, "float", cx) : undefined),
  "aten::Bool": ([v], _, cx) => (v ? tensorToNumber(v, "bool", cx) : undefined),
  "aten::ScalarImplicit": ([v], _, cx) =>
    v
      ? tensorToNumber(v, v.k === "tensor" && v.box.type.dtype.startsWith("float") ? "float" : "int", cx)
      : undefined,
  "aten::IntImplicit": ([v], _, cx) => (v ? tensorToNumber(v, "int", cx) : undefined),
  "aten::FloatImplicit": ([v], _, cx) => (v ? tensorToNumber(v, "float", cx) : undefined),
  "aten::item": ([v], _, cx) =>
    v
      ? tensorToNumber(v, v.k === "tensor" && v.box.type.dtype.startsWith("float") ? "float" : "int", cx)
      : undefined,
  "aten::tensor": (args, kwargs) => {
    const data = arg(args, kwargs, 0, "data");
    const dtypeArg = arg(args, kwargs, 1, "dtype");
    return data ? tensorLiteral(data, dtypeArg?.k === "int" ? dtypeArg.v : undefined) : undefined;
  },
  "aten::contiguous": ([v]) => alias(v, true),
  "aten::detach": ([v]) => alias(v, true),
  "prim::data": ([v]) => alias(v, true),
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

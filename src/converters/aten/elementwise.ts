import type { ElementwiseOp } from "../../network/layers/elementwise.js";
import type { Operand, ScalarValue } from "../../ops/index.js";
import { binary, unary } from "../impl/elementwise.js";
import { scalar } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter, SUPPORTED } from "../types.js";
import { notBool, operand, outType } from "./common.js";

// Binary arithmetic: computed in the node's result dtype (PyTorch's promotion already decided it), so
// operands are cast to it and numbers become 0-d constants.

interface Binary {
  readonly self: Operand;
  readonly other: Operand;
}

/** On bool, PyTorch's mul/max are logical and, min is and, max is or. */
const BOOL_FORM: Partial<Record<ElementwiseOp, ElementwiseOp>> = { mul: "and", min: "and", max: "or" };

function arithmetic(op: ElementwiseOp, name: string = op): ConverterSpec<Binary> {
  return {
    name,
    supports: (node, _a, ctx) => (BOOL_FORM[op] ? SUPPORTED : notBool(outType(node, ctx).dtype, "result")),
    convert: (node, a, net) => {
      const d = outType(node, net).dtype;
      const layerOp = d === "bool" ? (BOOL_FORM[op] ?? op) : op;
      return [binary(net.net, layerOp, operand(net, a.self, d), operand(net, a.other, d))];
    },
  };
}

interface Alpha extends Binary {
  readonly alpha: ScalarValue;
}

/** self ± alpha·other (rsub: other − alpha·self); the multiplication is skipped when alpha is 1. Bool add is or. */
function alphaOp(op: "add" | "sub", reversed = false): ConverterSpec<Alpha> {
  return {
    name: reversed ? "rsub" : op,
    supports: (node, _a, ctx) =>
      op === "add" && !reversed ? SUPPORTED : notBool(outType(node, ctx).dtype, "result"),
    convert: (node, a, net) => {
      const d = outType(node, net).dtype;
      if (d === "bool") return [binary(net.net, "or", operand(net, a.self, d), operand(net, a.other, d))];
      const [x, y] = reversed ? [a.other, a.self] : [a.self, a.other];
      let yt = operand(net, y, d);
      if (a.alpha.value !== 1) yt = binary(net.net, "mul", yt, scalar(net.net, d, a.alpha.value));
      return [binary(net.net, op, operand(net, x, d), yt)];
    },
  };
}

interface DivMode extends Binary {
  readonly roundingMode: "trunc" | "floor" | null;
}

/** True division, or division rounded toward zero / down (integers: exact integer division). */
const divMode: ConverterSpec<DivMode> = {
  name: "div-rounding",
  supports: (node, _a, ctx) => notBool(outType(node, ctx).dtype, "result"),
  convert: (node, a, net) => {
    const d = outType(node, net).dtype;
    const [x, y] = [operand(net, a.self, d), operand(net, a.other, d)];
    if (a.roundingMode === "floor") return [binary(net.net, "floor_div", x, y)];
    const q = binary(net.net, "div", x, y);
    const float = d === "float32" || d === "float16" || d === "bfloat16" || d === "float64";
    return [a.roundingMode === "trunc" && float ? unary(net.net, "trunc", q) : q];
  },
};

interface PowScalarBase {
  readonly self: ScalarValue;
  readonly exponent: Operand;
}

const pow: ConverterSpec<{ readonly self: Operand; readonly exponent: Operand }> = {
  name: "pow",
  supports: (node, _a, ctx) => notBool(outType(node, ctx).dtype, "result"),
  convert: (node, a, net) => {
    const d = outType(node, net).dtype;
    return [binary(net.net, "pow", operand(net, a.self, d), operand(net, a.exponent, d))];
  },
};

const powScalarBase: ConverterSpec<PowScalarBase> = {
  name: "pow",
  supports: pow.supports,
  convert: (node, a, net) => pow.convert(node, { self: a.self, exponent: a.exponent }, net),
};

interface Clamp {
  readonly self: Operand;
  readonly min: Operand | null;
  readonly max: Operand | null;
}

/**
 * Number bounds become one clip activation; tensor bounds become max/min layers. Either way min is
 * applied first, so min > max gives max, as PyTorch documents.
 */
const clamp: ConverterSpec<Clamp> = {
  name: "clamp",
  supports: (node, _a, ctx) => notBool(outType(node, ctx).dtype, "result"),
  convert: (node, a, net) => {
    const d = outType(node, net).dtype;
    const x = operand(net, a.self, d);
    const isNumber = (o: Operand | null): o is ScalarValue | null => o === null || typeof o !== "string";
    if (isNumber(a.min) && isNumber(a.max)) {
      const lo = a.min?.value ?? Number.NEGATIVE_INFINITY;
      const hi = a.max?.value ?? Number.POSITIVE_INFINITY;
      return [
        net.net.add({ type: "activation", inputs: [x], fn: { kind: "clip", min: lo, max: hi } }, "clamp"),
      ];
    }
    let y = x;
    if (a.min !== null) y = binary(net.net, "max", y, operand(net, a.min, d));
    if (a.max !== null) y = binary(net.net, "min", y, operand(net, a.max, d));
    return [y];
  },
};

export const ELEMENTWISE_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.add.Tensor", alphaOp("add")),
  converter("aten.add.Scalar", alphaOp("add")),
  converter("aten.sub.Tensor", alphaOp("sub")),
  converter("aten.sub.Scalar", alphaOp("sub")),
  converter("aten.rsub.Tensor", alphaOp("sub", true)),
  converter("aten.rsub.Scalar", alphaOp("sub", true)),
  converter("aten.mul.Tensor", arithmetic("mul")),
  converter("aten.mul.Scalar", arithmetic("mul")),
  converter("aten.div.Tensor", arithmetic("div")),
  converter("aten.div.Scalar", arithmetic("div")),
  converter("aten.div.Tensor_mode", divMode),
  converter("aten.div.Scalar_mode", divMode),
  converter("aten.floor_divide.default", arithmetic("floor_div")),
  converter("aten.remainder.Tensor", arithmetic("remainder")),
  converter("aten.remainder.Scalar", arithmetic("remainder")),
  converter("aten.fmod.Tensor", arithmetic("fmod")),
  converter("aten.fmod.Scalar", arithmetic("fmod")),
  converter("aten.pow.Tensor_Tensor", pow),
  converter("aten.pow.Tensor_Scalar", pow),
  converter("aten.pow.Scalar", powScalarBase),
  converter("aten.maximum.default", arithmetic("max", "maximum")),
  converter("aten.minimum.default", arithmetic("min", "minimum")),
  converter("aten.max.other", arithmetic("max", "maximum")),
  converter("aten.min.other", arithmetic("min", "minimum")),
  converter("aten.clamp.default", clamp),
  converter("aten.clamp.Tensor", clamp),
  converter("aten.clamp_min.default", {
    ...clamp,
    convert: (n, a, net) => clamp.convert(n, { ...a, max: null }, net),
  }),
  converter("aten.clamp_min.Tensor", {
    ...clamp,
    convert: (n, a, net) => clamp.convert(n, { ...a, max: null }, net),
  }),
  converter("aten.clamp_max.default", {
    ...clamp,
    convert: (n, a, net) => clamp.convert(n, { ...a, min: null }, net),
  }),
  converter("aten.clamp_max.Tensor", {
    ...clamp,
    convert: (n, a, net) => clamp.convert(n, { ...a, min: null }, net),
  }),
];

import { isFloating } from "../../ir/dtype.js";
import type { UnaryOp } from "../../network/layers/unary.js";
import { binary, unary } from "../impl/elementwise.js";
import { cast, fill, scalar } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter, refuse, SUPPORTED } from "../types.js";
import { notBool, outType } from "./common.js";

interface Self {
  readonly self: string;
}

/** A math function applied in the result dtype (integers become float first for exp, log, …). */
function math(op: UnaryOp): ConverterSpec<Self> {
  return {
    name: op,
    supports: (_node, a, ctx) => notBool(ctx.typeOf(a.self).dtype),
    convert: (node, a, net) => [
      unary(net.net, op, cast(net.net, net.input(a.self), outType(node, net).dtype)),
    ],
  };
}

/** floor/ceil/round/trunc leave integers as they are. */
function rounding(op: UnaryOp): ConverterSpec<Self> {
  return {
    name: op,
    supports: (_node, a, ctx) => notBool(ctx.typeOf(a.self).dtype),
    convert: (_node, a, net) => {
      const x = net.input(a.self);
      return [isFloating(net.typeOf(a.self).dtype) ? unary(net.net, op, x) : x];
    },
  };
}

const isnan: ConverterSpec<Self> = {
  name: "isnan",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const t = net.typeOf(a.self);
    // Integers are never NaN: a constant, so the engine reads nothing.
    return [
      isFloating(t.dtype)
        ? unary(net.net, "isnan", net.input(a.self))
        : fill(net.net, "bool", outType(node, net).shape, 0),
    ];
  },
};

const logicalNot: ConverterSpec<Self> = {
  name: "logical_not",
  supports: () => SUPPORTED,
  convert: (node, a, net) => [
    cast(net.net, unary(net.net, "not", cast(net.net, net.input(a.self), "bool")), outType(node, net).dtype),
  ],
};

/** ~x: logical not for bool, −x − 1 for two's-complement integers. */
const bitwiseNot: ConverterSpec<Self> = {
  name: "bitwise_not",
  supports: (_node, a, ctx) => {
    const d = ctx.typeOf(a.self).dtype;
    return isFloating(d) ? refuse(`bitwise_not is not defined on ${d}`) : SUPPORTED;
  },
  convert: (_node, a, net) => {
    const x = net.input(a.self);
    const d = net.typeOf(a.self).dtype;
    if (d === "bool") return [unary(net.net, "not", x)];
    return [binary(net.net, "sub", unary(net.net, "neg", x), scalar(net.net, d, 1))];
  },
};

export const UNARY_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.neg.default", math("neg")),
  converter("aten.abs.default", math("abs")),
  converter("aten.sign.default", math("sign")),
  converter("aten.sqrt.default", math("sqrt")),
  converter("aten.rsqrt.default", math("rsqrt")),
  converter("aten.reciprocal.default", math("reciprocal")),
  converter("aten.exp.default", math("exp")),
  converter("aten.exp2.default", math("exp2")),
  converter("aten.expm1.default", math("expm1")),
  converter("aten.log.default", math("log")),
  converter("aten.log2.default", math("log2")),
  converter("aten.log10.default", math("log10")),
  converter("aten.log1p.default", math("log1p")),
  converter("aten.erf.default", math("erf")),
  converter("aten.sin.default", math("sin")),
  converter("aten.cos.default", math("cos")),
  converter("aten.tan.default", math("tan")),
  converter("aten.atan.default", math("atan")),
  converter("aten.floor.default", rounding("floor")),
  converter("aten.ceil.default", rounding("ceil")),
  converter("aten.round.default", rounding("round")),
  converter("aten.trunc.default", rounding("trunc")),
  converter("aten.isnan.default", isnan),
  converter("aten.logical_not.default", logicalNot),
  converter("aten.bitwise_not.default", bitwiseNot),
];

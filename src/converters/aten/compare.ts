import type { Operand } from "../../ops/index.js";
import { binary } from "../impl/elementwise.js";
import { cast } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter, SUPPORTED } from "../types.js";
import { operand, outType, promotedType } from "./common.js";

interface Binary {
  readonly self: Operand;
  readonly other: Operand;
}

/** Compares in the operands' promoted dtype (so int vs 2.5 compares as float), giving bool. */
function comparison(op: "eq" | "ne" | "lt" | "le" | "gt" | "ge"): ConverterSpec<Binary> {
  return {
    name: op,
    supports: () => SUPPORTED,
    convert: (_node, a, net) => {
      const d = promotedType(net, a.self, a.other);
      return [binary(net.net, op, operand(net, a.self, d), operand(net, a.other, d))];
    },
  };
}

function logical(op: "and" | "or" | "xor"): ConverterSpec<Binary> {
  return {
    name: `logical_${op}`,
    supports: () => SUPPORTED,
    convert: (node, a, net) => {
      const y = binary(net.net, op, operand(net, a.self, "bool"), operand(net, a.other, "bool"));
      return [cast(net.net, y, outType(node, net).dtype)];
    },
  };
}

interface Where {
  readonly condition: string;
  readonly self: Operand;
  readonly other: Operand;
}

const where: ConverterSpec<Where> = {
  name: "where",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const d = outType(node, net).dtype;
    const c = cast(net.net, net.input(a.condition), "bool");
    return [
      net.net.add(
        { type: "select", inputs: [c, operand(net, a.self, d), operand(net, a.other, d)] },
        "where",
      ),
    ];
  },
};

interface MaskedFill {
  readonly self: string;
  readonly mask: string;
  readonly value: Operand;
}

/** masked_fill(x, m, v) = where(m, v, x) in x's dtype. */
const maskedFill: ConverterSpec<MaskedFill> = {
  name: "masked_fill",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const d = outType(node, net).dtype;
    const m = cast(net.net, net.input(a.mask), "bool");
    return [
      net.net.add(
        { type: "select", inputs: [m, operand(net, a.value, d), operand(net, a.self, d)] },
        "masked_fill",
      ),
    ];
  },
};

export const COMPARE_CONVERTERS: readonly AnyCandidate[] = [
  ...(["eq", "ne", "lt", "le", "gt", "ge"] as const).flatMap((op) => [
    converter(`aten.${op}.Tensor`, comparison(op)),
    converter(`aten.${op}.Scalar`, comparison(op)),
  ]),
  converter("aten.logical_and.default", logical("and")),
  converter("aten.logical_or.default", logical("or")),
  converter("aten.logical_xor.default", logical("xor")),
  converter("aten.where.self", where),
  converter("aten.where.ScalarOther", where),
  converter("aten.where.ScalarSelf", where),
  converter("aten.where.Scalar", where),
  converter("aten.masked_fill.Scalar", maskedFill),
  converter("aten.masked_fill.Tensor", maskedFill),
];

import type { DType } from "../../ir/dtype.js";
import { cast, normalizeDim } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter } from "../types.js";
import { needsFloat, outType } from "./common.js";

interface Softmax {
  readonly self: string;
  readonly dim: number;
  readonly dtype: DType | null;
  readonly halfToFloat: boolean;
}

/** Softmax in the result dtype (`dtype=` or half_to_float cast first, as PyTorch does). */
function softmax(log: boolean): ConverterSpec<Softmax> {
  return {
    name: log ? "log_softmax" : "softmax",
    supports: (node, _a, ctx) => needsFloat(outType(node, ctx).dtype, "result"),
    convert: (node, a, net) => {
      const x = cast(net.net, net.input(a.self), outType(node, net).dtype);
      const rank = net.typeOf(a.self).shape.length;
      const axis = rank === 0 ? 0 : normalizeDim(a.dim, rank);
      return [net.net.add({ type: "softmax", inputs: [x], axis, log }, log ? "log_softmax" : "softmax")];
    },
  };
}

export const SOFTMAX_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.softmax.int", softmax(false)),
  converter("aten._softmax.default", softmax(false)),
  converter("aten.log_softmax.int", softmax(true)),
  converter("aten._log_softmax.default", softmax(true)),
];

import { cast, normalizeDim, reshape } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter, SUPPORTED } from "../types.js";
import { outType } from "./common.js";

interface Join {
  readonly tensors: readonly string[];
  readonly dim: number;
}

/** cat promotes dtypes and skips legacy empty 1-d inputs (shape [0]), as PyTorch does. */
const cat: ConverterSpec<Join> = {
  name: "concatenation",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const out = outType(node, net);
    const parts = a.tensors.filter((v) => out.shape.length === 1 || net.typeOf(v).shape.join() !== "0");
    const axis = normalizeDim(a.dim, out.shape.length);
    const inputs = parts.map((v) => cast(net.net, net.input(v), out.dtype));
    return [inputs.length === 1 ? inputs[0] : net.net.add({ type: "concatenation", inputs, axis })];
  },
};

const stack: ConverterSpec<Join> = {
  name: "stack",
  supports: () => SUPPORTED,
  convert: (node, a, net) => {
    const out = outType(node, net);
    const axis = normalizeDim(a.dim, out.shape.length);
    const inputs = a.tensors.map((v) => {
      const s = net.typeOf(v).shape;
      return reshape(net.net, cast(net.net, net.input(v), out.dtype), [
        ...s.slice(0, axis),
        1,
        ...s.slice(axis),
      ]);
    });
    return [inputs.length === 1 ? inputs[0] : net.net.add({ type: "concatenation", inputs, axis }, "stack")];
  },
};

export const JOIN_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.cat.default", cat),
  converter("aten.stack.default", stack),
];

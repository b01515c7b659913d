import type { ScalarValue } from "../../ops/index.js";
import { gemm, linear, matmul } from "../impl/matmul.js";
import { cast } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter } from "../types.js";
import { notBool, outType } from "./common.js";

const mm: ConverterSpec<{ readonly self: string; readonly mat2: string }> = {
  name: "matmul",
  supports: (_node, a, ctx) => notBool(ctx.typeOf(a.self).dtype),
  convert: (_node, a, net) => [matmul(net.net, net.input(a.self), net.input(a.mat2))],
};

const torchMatmul: ConverterSpec<{ readonly self: string; readonly other: string }> = {
  name: "matmul",
  supports: (_node, a, ctx) => notBool(ctx.typeOf(a.self).dtype),
  convert: (_node, a, net) => [matmul(net.net, net.input(a.self), net.input(a.other))],
};

interface Linear {
  readonly input: string;
  readonly weight: string;
  readonly bias: string | null;
}

/** x·Wᵀ + b with the transpose folded into the matmul layer, so the weight keeps its layout. */
const linearSpec: ConverterSpec<Linear> = {
  name: "linear",
  supports: (_node, a, ctx) => notBool(ctx.typeOf(a.input).dtype),
  convert: (_node, a, net) => [
    linear(net.net, net.input(a.input), net.input(a.weight), a.bias === null ? null : net.input(a.bias)),
  ],
};

interface Addmm {
  readonly self: string;
  readonly mat1: string;
  readonly mat2: string;
  readonly beta: ScalarValue;
  readonly alpha: ScalarValue;
}

const addmm: ConverterSpec<Addmm> = {
  name: "addmm",
  supports: (_node, a, ctx) => notBool(ctx.typeOf(a.mat1).dtype),
  convert: (node, a, net) => {
    const d = outType(node, net).dtype;
    const c = cast(net.net, net.input(a.self), d);
    return [gemm(net.net, c, net.input(a.mat1), net.input(a.mat2), a.alpha.value, a.beta.value)];
  },
};

export const MATMUL_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.mm.default", mm),
  converter("aten.bmm.default", mm),
  converter("aten.matmul.default", torchMatmul),
  converter("aten.linear.default", linearSpec),
  converter("aten.addmm.default", addmm),
];

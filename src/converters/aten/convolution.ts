import { convolution, perAxis } from "../impl/convolution.js";
import { type AnyCandidate, allOf, type ConverterSpec, converter, refuse, SUPPORTED } from "../types.js";
import { needsFloat } from "./common.js";

/** Every convolution overload parses to this record (see src/ops/conv.ts). */
interface Conv {
  readonly input: string;
  readonly weight: string;
  readonly bias: string | null;
  readonly stride: readonly number[];
  readonly padding: readonly number[] | "same" | "valid";
  readonly dilation: readonly number[];
  readonly transposed: boolean;
  readonly outputPadding: readonly number[];
  readonly groups: number;
}

/**
 * One (de)convolution layer with the bias fused. "same" padding that is odd in total (PyTorch puts the
 * extra element at the end) becomes an explicit padding layer in front.
 */
const conv: ConverterSpec<Conv> = {
  name: "convolution",
  supports: (_node, a, ctx) => {
    const w = ctx.typeOf(a.weight);
    return allOf(
      () => needsFloat(ctx.typeOf(a.input).dtype),
      () =>
        w.shape.length >= 3 && w.shape.length <= 5
          ? SUPPORTED
          : refuse(`a ${w.shape.length}-d weight is not a 1-, 2- or 3-d convolution`),
      () =>
        a.bias === null || ctx.typeOf(a.bias).dtype === ctx.typeOf(a.input).dtype
          ? SUPPORTED
          : refuse("bias dtype differs from the input's"),
    );
  },
  convert: (_node, a, net) => {
    const w = net.typeOf(a.weight);
    const sp = w.shape.length - 2;
    const dilation = perAxis(a.dilation, sp);
    let input = net.input(a.input);
    let padding: number[];
    if (a.padding === "valid") padding = new Array<number>(sp).fill(0);
    else if (a.padding === "same") {
      const total = w.shape.slice(2).map((k, i) => dilation[i] * (k - 1));
      const lo = total.map((t) => Math.floor(t / 2));
      if (total.some((t, i) => t - lo[i] !== lo[i])) {
        const rank = net.net.typeOf(input).shape.length;
        const lead = new Array<number>(rank - sp).fill(0);
        input = net.net.add({
          type: "padding",
          inputs: [input],
          pre: [...lead, ...lo],
          post: [...lead, ...total.map((t, i) => t - lo[i])],
          mode: "constant",
          value: 0,
        });
        padding = new Array<number>(sp).fill(0);
      } else padding = lo;
    } else padding = perAxis(a.padding, sp);
    return [
      convolution(net.net, {
        input,
        weight: net.input(a.weight),
        bias: a.bias === null ? null : net.input(a.bias),
        stride: a.stride,
        padding,
        dilation,
        groups: a.groups,
        transposed: a.transposed,
        outputPadding: a.outputPadding.length > 0 ? a.outputPadding : [0],
      }),
    ];
  },
};

export const CONVOLUTION_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.convolution.default", conv),
  converter("aten._convolution.default", conv),
  converter("aten._convolution.deprecated", conv),
  converter("aten.conv1d.default", conv),
  converter("aten.conv1d.padding", conv),
  converter("aten.conv2d.default", conv),
  converter("aten.conv2d.padding", conv),
  converter("aten.conv_transpose1d.default", conv),
  converter("aten.conv_transpose2d.input", conv),
];

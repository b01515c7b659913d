// Every convolution overload becomes aten.convolution.default, the one form converters handle.
import type { Arg } from "../../ir/graph.js";
import { arg } from "../rewrite/args.js";
import { bool, op, str, value } from "../rewrite/pattern.js";
import { rule, ruleSet } from "../rewrite/rule.js";
import { intsOfLength } from "./int-lists.js";

const CONVOLUTION = "aten.convolution.default";

function convolutionArgs(
  a: Readonly<Record<string, Arg>>,
  spatial: number,
  transposed: boolean,
  padding?: number[],
) {
  return {
    input: a.input,
    weight: a.weight,
    bias: a.bias ?? arg.none,
    stride: arg.ints(intsOfLength(a.stride, spatial, 1)),
    padding: arg.ints(padding ?? intsOfLength(a.padding, spatial, 0)),
    dilation: arg.ints(intsOfLength(a.dilation, spatial, 1)),
    transposed: arg.bool(transposed),
    output_padding: arg.ints(intsOfLength(a.output_padding, spatial, 0)),
    groups: a.groups ?? arg.int(1),
  };
}

const w = value();
export const convNdToConvolution = rule({
  name: "conv-to-convolution",
  doc: "conv1d/2d/3d(x, W, b, stride, padding, dilation, groups) ⇒ convolution(…, transposed=False)",
  pattern: op(["aten.conv1d.default", "aten.conv2d.default", "aten.conv3d.default"], { weight: w }),
  captures: { w },
  rewrite: ({ w, root }, ctx) =>
    ctx.replaceWithNode(
      CONVOLUTION,
      convolutionArgs(root.args, w.type.shape.length - 2, false),
      root.out.type,
    ),
});

const wt = value();
export const convTransposeToConvolution = rule({
  name: "conv-transpose-to-convolution",
  doc: "conv_transpose1d/2d/3d(x, W, b, stride, padding, output_padding, groups, dilation) ⇒ convolution(…, transposed=True)",
  pattern: op(
    ["aten.conv_transpose1d.default", "aten.conv_transpose2d.input", "aten.conv_transpose3d.input"],
    { weight: wt },
  ),
  captures: { wt },
  rewrite: ({ wt, root }, ctx) =>
    ctx.replaceWithNode(
      CONVOLUTION,
      convolutionArgs(root.args, wt.type.shape.length - 2, true),
      root.out.type,
    ),
});

const ws = value();
const mode = str();
export const stringPaddedConvToConvolution = rule({
  name: "string-padding-conv-to-convolution",
  doc: "conv2d(x, W, b, stride, padding='same'|'valid', …) ⇒ convolution with explicit symmetric padding",
  pattern: op(["aten.conv1d.padding", "aten.conv2d.padding", "aten.conv3d.padding"], {
    weight: ws,
    padding: mode,
  }),
  captures: { ws, mode },
  rewrite: ({ ws, mode, root }, ctx) => {
    const spatial = ws.type.shape.length - 2;
    const dilation = intsOfLength(root.args.dilation, spatial, 1);
    const total = ws.type.shape.slice(2).map((k, i) => dilation[i] * (k - 1));
    // 'same' with an even total needs asymmetric padding, which convolution cannot express.
    if (mode === "same" && total.some((t) => t % 2 !== 0)) return undefined;
    const padding = mode === "valid" ? total.map(() => 0) : total.map((t) => t / 2);
    return ctx.replaceWithNode(
      CONVOLUTION,
      convolutionArgs(root.args, spatial, false, padding),
      root.out.type,
    );
  },
});

const wl = value();
const transposed = bool();
export const legacyConvolutionToConvolution = rule({
  name: "legacy-convolution-to-convolution",
  doc: "_convolution(x, W, b, …, benchmark, deterministic, cudnn_enabled[, allow_tf32]) ⇒ convolution(…)",
  pattern: op(["aten._convolution.default", "aten._convolution.deprecated"], { weight: wl, transposed }),
  captures: { wl, transposed },
  rewrite: ({ wl, transposed, root }, ctx) =>
    ctx.replaceWithNode(
      CONVOLUTION,
      convolutionArgs(root.args, wl.type.shape.length - 2, transposed),
      root.out.type,
    ),
});

export const convolutionRules = ruleSet(
  convNdToConvolution,
  convTransposeToConvolution,
  stringPaddedConvToConvolution,
  legacyConvolutionToConvolution,
);

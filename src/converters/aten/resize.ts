import { type AnyCandidate, type ConverterSpec, converter } from "../types.js";
import { needsFloat, outType } from "./common.js";

interface Resize {
  readonly self: string;
  readonly scales: readonly (number | null)[];
  readonly alignCorners: boolean;
}

/** upsample_* onto the resize layer, keeping the user's scale factors (they decide PyTorch's sampling). */
function resize(mode: "nearest" | "linear"): ConverterSpec<Resize> {
  return {
    name: `resize-${mode}`,
    supports: (_node, a, ctx) => needsFloat(ctx.typeOf(a.self).dtype),
    convert: (node, a, net) => {
      const out = outType(node, net).shape;
      const outputSize = out.slice(-2);
      const scales = [a.scales[0] ?? null, a.scales[1] ?? null];
      return [
        net.net.add({
          type: "resize",
          inputs: [net.input(a.self)],
          mode,
          outputSize,
          scales,
          alignCorners: a.alignCorners,
        }),
      ];
    },
  };
}

export const RESIZE_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten.upsample_nearest2d.default", resize("nearest")),
  converter("aten.upsample_nearest2d.vec", resize("nearest")),
  converter("aten.upsample_bilinear2d.default", resize("linear")),
  converter("aten.upsample_bilinear2d.vec", resize("linear")),
];

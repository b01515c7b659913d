import type { TensorType } from "../../ir/graph.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

export type PaddingMode = "constant" | "reflect" | "replicate" | "circular";

/** Pads (or, with negative amounts in constant mode, crops) each axis by `pre` before and `post` after. */
export interface PaddingLayer extends LayerBase<"padding", readonly [input: string]> {
  readonly pre: readonly number[];
  readonly post: readonly number[];
  readonly mode: PaddingMode;
  /** Fill value in constant mode. */
  readonly value: number;
}

export function inferPadding(layer: PaddingLayer, [x]: InputTypes): TensorType {
  const name = `padding ${layer.mode}`;
  const rank = x.shape.length;
  if (layer.pre.length !== rank || layer.post.length !== rank)
    throw new LayerShapeError(name, `needs ${rank} entries`);
  const shape = x.shape.map((d, i) => {
    const [a, b] = [layer.pre[i], layer.post[i]];
    if (layer.mode !== "constant") {
      if (a < 0 || b < 0) throw new LayerShapeError(name, "negative padding");
      if (layer.mode === "reflect" && (a >= d || b >= d))
        throw new LayerShapeError(name, `reflect pad ${a},${b} of size ${d}`);
      if (layer.mode === "circular" && (a > d || b > d))
        throw new LayerShapeError(name, `circular pad ${a},${b} of size ${d}`);
      if (layer.mode === "replicate" && d === 0 && a + b > 0)
        throw new LayerShapeError(name, "replicate of an empty axis");
    }
    const n = d + a + b;
    if (n < 0) throw new LayerShapeError(name, `axis ${i} would have size ${n}`);
    return n;
  });
  return { dtype: x.dtype, shape };
}

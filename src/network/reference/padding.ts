import { numel, stridesOf } from "../../ir/tensor.js";
import type { PaddingLayer } from "../layers/padding.js";
import { read, write } from "./data.js";
import type { LayerRunner } from "./types.js";

/** The source index along one axis, or -1 for a position filled with the constant. */
function sourceIndex(mode: PaddingLayer["mode"], i: number, d: number): number {
  if (i >= 0 && i < d) return i;
  switch (mode) {
    case "constant":
      return -1;
    case "reflect":
      return i < 0 ? -i : 2 * (d - 1) - i;
    case "replicate":
      return i < 0 ? 0 : d - 1;
    case "circular":
      return ((i % d) + d) % d;
  }
}

export const runPadding: LayerRunner<PaddingLayer> = (layer, [xt], out) => {
  const x = read(xt);
  const strides = stridesOf(xt.shape);
  const n = numel(out.shape);
  const res = new Float64Array(n);
  const rank = out.shape.length;
  for (let k = 0; k < n; k++) {
    let rem = k;
    let src = 0;
    for (let a = rank - 1; a >= 0 && src >= 0; a--) {
      const o = rem % out.shape[a];
      rem = Math.floor(rem / out.shape[a]);
      const s = sourceIndex(layer.mode, o - layer.pre[a], xt.shape[a]);
      src = s < 0 ? -1 : src + s * strides[a];
    }
    res[k] = src < 0 ? layer.value : x[src];
  }
  return write(out, res);
};

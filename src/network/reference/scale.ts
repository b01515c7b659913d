import type { ScaleLayer } from "../layers/scale.js";
import { axisSplit, read, write } from "./data.js";
import type { LayerRunner } from "./types.js";

export const runScale: LayerRunner<ScaleLayer> = (layer, [xt, st, ht], out) => {
  const x = read(xt);
  const scale = read(st);
  const shift = read(ht);
  const { size, inner } = axisSplit(xt.shape, layer.channelAxis);
  for (let i = 0; i < x.length; i++) {
    const c = Math.floor(i / inner) % size;
    x[i] = x[i] * scale[scale.length === 1 ? 0 : c] + shift[shift.length === 1 ? 0 : c];
  }
  return write(out, x);
};

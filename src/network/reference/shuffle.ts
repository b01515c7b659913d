import type { ShuffleLayer } from "../layers/shuffle.js";
import { read, transpose, write } from "./data.js";
import type { LayerRunner } from "./types.js";

export const runShuffle: LayerRunner<ShuffleLayer> = (layer, [xt], out) => {
  let x = read(xt);
  let shape: readonly number[] = xt.shape;
  if (layer.firstTranspose) {
    x = transpose(x, shape, layer.firstTranspose);
    const s = shape;
    shape = layer.firstTranspose.map((p) => s[p]);
  }
  if (layer.reshape) shape = layer.reshape;
  if (layer.secondTranspose) x = transpose(x, shape, layer.secondTranspose);
  return write(out, x);
};

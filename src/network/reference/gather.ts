import { TorchcError } from "../../errors.js";
import { numel, stridesOf } from "../../ir/tensor.js";
import type { GatherLayer } from "../layers/gather.js";
import { axisSplit, read, write } from "./data.js";
import type { LayerRunner } from "./types.js";

function resolve(i: number, size: number): number {
  const j = i < 0 ? i + size : i;
  if (!(j >= 0 && j < size))
    throw new TorchcError(`gather: index ${i} is out of range for size ${size}`, "network.index");
  return j;
}

export const runGather: LayerRunner<GatherLayer> = (layer, [dt, it], out) => {
  const data = read(dt);
  const idx = read(it);
  const res = new Float64Array(numel(out.shape));
  const size = dt.shape[layer.axis];
  if (layer.mode === "default") {
    const { outer, inner } = axisSplit(dt.shape, layer.axis);
    const m = idx.length;
    for (let o = 0; o < outer; o++) {
      for (let j = 0; j < m; j++) {
        const src = (o * size + resolve(idx[j], size)) * inner;
        res.set(data.subarray(src, src + inner), (o * m + j) * inner);
      }
    }
    return write(out, res);
  }
  const ds = stridesOf(dt.shape);
  const rank = it.shape.length;
  for (let k = 0; k < idx.length; k++) {
    let rem = k;
    let src = 0;
    for (let a = rank - 1; a >= 0; a--) {
      const i = rem % it.shape[a];
      rem = Math.floor(rem / it.shape[a]);
      src += (a === layer.axis ? resolve(idx[k], size) : i) * ds[a];
    }
    res[k] = data[src];
  }
  return write(out, res);
};

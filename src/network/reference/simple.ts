import { castTensor, numel } from "../../ir/tensor.js";
import type { BroadcastLayer } from "../layers/broadcast.js";
import type { CastLayer } from "../layers/cast.js";
import type { ConstantLayer } from "../layers/constant.js";
import type { IdentityLayer } from "../layers/identity.js";
import type { SelectLayer } from "../layers/select.js";
import { broadcastIndex, read, write } from "./data.js";
import type { LayerRunner } from "./types.js";

// Layers with nothing to compute: data movement and dtype conversion.

export const runConstant: LayerRunner<ConstantLayer> = (layer, _inputs, _out, env) =>
  env.constant(layer.weight);

export const runIdentity: LayerRunner<IdentityLayer> = (_layer, [x]) => x;

/** Float to integer truncates toward zero, anything to bool tests nonzero (PyTorch's `.to`). */
export const runCast: LayerRunner<CastLayer> = (layer, [x]) => castTensor(x, layer.to);

export const runSelect: LayerRunner<SelectLayer> = (_layer, [ct, at, bt], out) => {
  const [c, a, b] = [read(ct), read(at), read(bt)];
  const [ci, ai, bi] = [ct, at, bt].map((t) => broadcastIndex(t.shape, out.shape));
  const res = new Float64Array(numel(out.shape));
  for (let i = 0; i < res.length; i++) res[i] = c[ci[i]] !== 0 ? a[ai[i]] : b[bi[i]];
  return write(out, res);
};

export const runBroadcast: LayerRunner<BroadcastLayer> = (_layer, [xt], out) => {
  const x = read(xt);
  const idx = broadcastIndex(xt.shape, out.shape);
  const res = new Float64Array(idx.length);
  for (let i = 0; i < idx.length; i++) res[i] = x[idx[i]];
  return write(out, res);
};

import { numel } from "../../ir/tensor.js";
import type { AttentionLayer } from "../layers/attention.js";
import { broadcastIndex, read, write } from "./data.js";
import { softmaxInPlace } from "./softmax.js";
import type { LayerRunner } from "./types.js";

/** The unfused definition: scores, mask, softmax over keys, weighted sum of values. */
export const runAttention: LayerRunner<AttentionLayer> = (layer, [qt, kt, vt, mt], out) => {
  const [q, k, v] = [read(qt), read(kt), read(vt)];
  const batch = out.shape.slice(0, -2);
  const nb = numel(batch);
  const [L, E] = qt.shape.slice(-2);
  const S = kt.shape[kt.shape.length - 2];
  const Ev = vt.shape[vt.shape.length - 1];
  const [qb, kb, vb] = [qt, kt, vt].map((t) => broadcastIndex(t.shape.slice(0, -2), batch));
  const mask = mt ? read(mt) : null;
  const mIdx = mt ? broadcastIndex(mt.shape, [...batch, L, S]) : null;
  const res = new Float64Array(nb * L * Ev);
  const scores = new Float64Array(L * S);
  for (let b = 0; b < nb; b++) {
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < S; j++) {
        let s = 0;
        for (let e = 0; e < E; e++) s += q[(qb[b] * L + i) * E + e] * k[(kb[b] * S + j) * E + e];
        s *= layer.scale;
        if (layer.causal && j > i) s = Number.NEGATIVE_INFINITY;
        if (mask && mIdx) {
          const m = mask[mIdx[(b * L + i) * S + j]];
          if (mt?.dtype === "bool") {
            if (m === 0) s = Number.NEGATIVE_INFINITY;
          } else s += m;
        }
        scores[i * S + j] = s;
      }
    }
    // Fully masked rows give zeros, as PyTorch's math SDPA (`_safe_softmax`) does, not NaN.
    const dead = new Set<number>();
    for (let i = 0; i < L; i++)
      if (scores.subarray(i * S, (i + 1) * S).every((x) => x === Number.NEGATIVE_INFINITY)) dead.add(i);
    softmaxInPlace(scores, [L, S], 1, false);
    for (const i of dead) scores.fill(0, i * S, (i + 1) * S);
    for (let i = 0; i < L; i++) {
      for (let e = 0; e < Ev; e++) {
        let acc = 0;
        for (let j = 0; j < S; j++) acc += scores[i * S + j] * v[(vb[b] * S + j) * Ev + e];
        res[(b * L + i) * Ev + e] = acc;
      }
    }
  }
  return write(out, res);
};

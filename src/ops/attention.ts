import type { TensorType } from "../ir/graph.js";
import { numel, type Shape, type Tensor } from "../ir/tensor.js";
import { broadcastIndex, broadcastShapes, expandNums, f64, fromF64, tt } from "./data.js";
import { defineOp, OpArgError, opTable } from "./schema.js";
import type { TypeOf } from "./types.js";

export interface SdpaArgs {
  readonly query: string;
  readonly key: string;
  readonly value: string;
  readonly attnMask: string | null;
  readonly dropoutP: number;
  readonly isCausal: boolean;
  readonly scale: number | null;
  readonly enableGqa: boolean;
}

interface SdpaPlan {
  readonly batch: number[];
  readonly L: number;
  readonly S: number;
  readonly E: number;
  readonly Ev: number;
  /** q heads per k/v head (1 without grouped-query attention). */
  readonly group: number;
}

function plan(op: string, a: SdpaArgs, q: Shape, k: Shape, v: Shape): SdpaPlan {
  if (q.length < 2 || k.length !== q.length || v.length !== q.length) {
    throw new OpArgError(
      op,
      "query",
      `query [${q.join(", ")}], key [${k.join(", ")}], value [${v.join(", ")}] must have the same rank >= 2`,
    );
  }
  if (a.dropoutP !== 0)
    throw new OpArgError(
      op,
      "dropout_p",
      `${a.dropoutP}: attention dropout is random; only inference (0.0) is supported`,
    );
  if (a.isCausal && a.attnMask !== null)
    throw new OpArgError(op, "is_causal", "is_causal and attn_mask cannot both be set");
  const [L, E] = q.slice(-2);
  const [S, Ek] = k.slice(-2);
  const [Sv, Ev] = v.slice(-2);
  if (Ek !== E || Sv !== S)
    throw new OpArgError(
      op,
      "key",
      `query [${q.join(", ")}], key [${k.join(", ")}], value [${v.join(", ")}] do not fit`,
    );
  let group = 1;
  let kb = k.slice(0, -2);
  let vb = v.slice(0, -2);
  if (a.enableGqa && q.length >= 3) {
    const hq = q[q.length - 3];
    const hk = k[k.length - 3];
    if (hk !== v[v.length - 3] || hq % hk !== 0)
      throw new OpArgError(op, "key", `${hq} query heads are not a multiple of ${hk} key/value heads`);
    group = hq / hk;
    kb = [...kb.slice(0, -1), hq];
    vb = [...vb.slice(0, -1), hq];
  }
  const batch = broadcastShapes(op, q.slice(0, -2), kb, vb);
  return { batch, L, S, E, Ev, group };
}

function inferSdpa(op: string, a: SdpaArgs, typeOf: TypeOf): [TensorType, number[]] {
  const q = typeOf(a.query);
  const p = plan(op, a, q.shape, typeOf(a.key).shape, typeOf(a.value).shape);
  return [tt(q.dtype, [...p.batch, p.L, p.Ev]), [...p.batch, p.L]];
}

/** Batch offsets into a k/v tensor for each output batch, undoing the head repeat of grouped-query attention. */
function kvBatchIndex(shape: Shape, batch: number[], group: number): Int32Array {
  const b = shape.slice(0, -2);
  if (group === 1) return broadcastIndex(b, batch);
  const expanded = [...b.slice(0, -1), b[b.length - 1] * group];
  const hq = expanded[expanded.length - 1];
  const idx = broadcastIndex(expanded, batch);
  // expanded flat index = outer·hq + h  →  original = outer·hk + floor(h / group)
  const hk = b[b.length - 1];
  return idx.map((i) => Math.floor(i / hq) * hk + Math.floor((i % hq) / group));
}

export function sdpa(
  op: string,
  a: SdpaArgs,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
): { out: Tensor; lse: Tensor } {
  const p = plan(op, a, q.shape, k.shape, v.shape);
  const { L, S, E, Ev } = p;
  const nb = numel(p.batch);
  const qd = f64(q);
  const kd = f64(k);
  const vd = f64(v);
  const qi = broadcastIndex(q.shape.slice(0, -2), p.batch);
  const ki = kvBatchIndex(k.shape, p.batch, p.group);
  const vi = kvBatchIndex(v.shape, p.batch, p.group);
  const scale = a.scale ?? 1 / Math.sqrt(E);
  let m: ArrayLike<number> | null = null;
  let boolMask = false;
  if (mask) {
    boolMask = mask.dtype === "bool";
    m = expandNums(mask, [...p.batch, L, S]);
  }
  const out = new Float64Array(nb * L * Ev);
  const lse = new Float64Array(nb * L);
  const row = new Float64Array(S);
  for (let b = 0; b < nb; b++) {
    const qo = qi[b] * L * E;
    const ko = ki[b] * S * E;
    const vo = vi[b] * S * Ev;
    for (let i = 0; i < L; i++) {
      let mx = -Infinity;
      for (let j = 0; j < S; j++) {
        let s = 0;
        for (let e = 0; e < E; e++) s += qd[qo + i * E + e] * kd[ko + j * E + e];
        s *= scale;
        if (a.isCausal && j > i) s = -Infinity;
        if (m) {
          const mv = m[(b * L + i) * S + j];
          if (boolMask) {
            if (mv === 0) s = -Infinity;
          } else s += mv;
        }
        row[j] = s;
        if (s > mx) mx = s;
      }
      const o = (b * L + i) * Ev;
      // A row with every key masked out attends to nothing: zeros, as PyTorch's math path gives.
      if (mx === -Infinity) {
        lse[b * L + i] = -Infinity;
        continue;
      }
      let sum = 0;
      for (let j = 0; j < S; j++) {
        row[j] = Math.exp(row[j] - mx);
        sum += row[j];
      }
      lse[b * L + i] = mx + Math.log(sum);
      for (let j = 0; j < S; j++) {
        const w = row[j] / sum;
        if (w === 0) continue;
        for (let e = 0; e < Ev; e++) out[o + e] += w * vd[vo + j * Ev + e];
      }
    }
  }
  return { out: fromF64(q.dtype, [...p.batch, L, Ev], out), lse: fromF64("float32", [...p.batch, L], lse) };
}

export const ATTENTION_OPS = opTable(
  defineOp({
    name: "aten.scaled_dot_product_attention.default",
    schema:
      "Tensor query, Tensor key, Tensor value, Tensor? attn_mask=None, float dropout_p=0., bool is_causal=False, *, float? scale=None, bool enable_gqa=False",
    read: (r): SdpaArgs => ({
      query: r.tensor("query"),
      key: r.tensor("key"),
      value: r.tensor("value"),
      attnMask: r.optTensor("attn_mask"),
      dropoutP: r.float("dropout_p"),
      isCausal: r.bool("is_causal"),
      scale: r.optFloat("scale"),
      enableGqa: r.bool("enable_gqa"),
    }),
    infer: (a, typeOf) => [inferSdpa("aten.scaled_dot_product_attention.default", a, typeOf)[0]],
    evaluate: (a, valueAt) => {
      const m = a.attnMask === null ? null : valueAt(a.attnMask);
      return [
        sdpa(
          "aten.scaled_dot_product_attention.default",
          a,
          valueAt(a.query),
          valueAt(a.key),
          valueAt(a.value),
          m,
        ).out,
      ];
    },
  }),
  defineOp({
    name: "aten._scaled_dot_product_flash_attention_for_cpu.default",
    schema:
      "Tensor query, Tensor key, Tensor value, float dropout_p=0., bool is_causal=False, *, Tensor? attn_mask=None, float? scale=None",
    returns: 2,
    read: (r): SdpaArgs => ({
      query: r.tensor("query"),
      key: r.tensor("key"),
      value: r.tensor("value"),
      attnMask: r.optTensor("attn_mask"),
      dropoutP: r.float("dropout_p"),
      isCausal: r.bool("is_causal"),
      scale: r.optFloat("scale"),
      enableGqa: false,
    }),
    infer: (a, typeOf) => {
      const [out, lse] = inferSdpa("aten._scaled_dot_product_flash_attention_for_cpu.default", a, typeOf);
      return [out, tt("float32", lse)];
    },
    evaluate: (a, valueAt) => {
      const m = a.attnMask === null ? null : valueAt(a.attnMask);
      const r = sdpa(
        "aten._scaled_dot_product_flash_attention_for_cpu.default",
        a,
        valueAt(a.query),
        valueAt(a.key),
        valueAt(a.value),
        m,
      );
      return [r.out, r.lse];
    },
  }),
);

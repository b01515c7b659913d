import type { TensorType } from "../../ir/graph.js";
import { broadcastShapes, requireFloat, requireSameDType } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

export type AttentionInputs =
  | readonly [q: string, k: string, v: string]
  | readonly [q: string, k: string, v: string, mask: string];

/**
 * softmax(q·kᵀ·scale + mask)·v as one layer, so a backend can run a fused (flash) kernel. q [… L E],
 * k [… S E], v [… S Ev]; batch axes broadcast. The mask is bool (true = attend) or additive in q's dtype,
 * broadcastable to [… L S]. `causal` masks keys after the query position (top-left aligned, as PyTorch).
 */
export interface AttentionLayer extends LayerBase<"attention", AttentionInputs> {
  readonly scale: number;
  readonly causal: boolean;
}

export function inferAttention(_layer: AttentionLayer, [q, k, v, mask]: InputTypes): TensorType {
  requireFloat("attention", q.dtype);
  requireSameDType("attention", q.dtype, k.dtype);
  requireSameDType("attention", q.dtype, v.dtype);
  if (q.shape.length < 2 || k.shape.length < 2 || v.shape.length < 2)
    throw new LayerShapeError("attention", "rank ≥ 2");
  const [L, E] = q.shape.slice(-2);
  const [S, Ek] = k.shape.slice(-2);
  const [Sv, Ev] = v.shape.slice(-2);
  if (E !== Ek || S !== Sv)
    throw new LayerShapeError("attention", `q [${q.shape}], k [${k.shape}], v [${v.shape}]`);
  const batch = broadcastShapes(
    "attention",
    broadcastShapes("attention", q.shape.slice(0, -2), k.shape.slice(0, -2)),
    v.shape.slice(0, -2),
  );
  if (mask) {
    if (mask.dtype !== "bool" && mask.dtype !== q.dtype)
      throw new LayerShapeError("attention", `mask of dtype ${mask.dtype}`);
    const full = broadcastShapes("attention", mask.shape, [...batch, L, S]);
    if (full.join() !== [...batch, L, S].join())
      throw new LayerShapeError("attention", `mask [${mask.shape}] widens the output`);
  }
  return { dtype: q.dtype, shape: [...batch, L, Ev] };
}

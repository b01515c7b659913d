import type { TensorType } from "../../ir/graph.js";
import { broadcastShapes, requireSameDType } from "../shape.js";
import { type InputTypes, type LayerBase, LayerShapeError } from "./base.js";

/**
 * Batched matrix multiply of rank ≥ 2 operands; leading (batch) axes broadcast. The transpose flags swap
 * the last two axes of an operand, so `x @ wᵀ` needs no shuffle in front and backends can pick a layout.
 */
export interface MatMulLayer extends LayerBase<"matmul", readonly [a: string, b: string]> {
  readonly transposeA: boolean;
  readonly transposeB: boolean;
}

export function inferMatMul(layer: MatMulLayer, [a, b]: InputTypes): TensorType {
  requireSameDType("matmul", a.dtype, b.dtype);
  if (a.shape.length < 2 || b.shape.length < 2) {
    throw new LayerShapeError("matmul", `operands need rank ≥ 2, got [${a.shape}] and [${b.shape}]`);
  }
  const ra = a.shape.length;
  const rb = b.shape.length;
  const [m, ka] = layer.transposeA ? [a.shape[ra - 1], a.shape[ra - 2]] : [a.shape[ra - 2], a.shape[ra - 1]];
  const [kb, n] = layer.transposeB ? [b.shape[rb - 1], b.shape[rb - 2]] : [b.shape[rb - 2], b.shape[rb - 1]];
  if (ka !== kb) throw new LayerShapeError("matmul", `inner dimensions differ (${ka} vs ${kb})`);
  const batch = broadcastShapes("matmul", a.shape.slice(0, -2), b.shape.slice(0, -2));
  return { dtype: a.dtype, shape: [...batch, m, n] };
}

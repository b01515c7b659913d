/**
 * A fresh tensor of a static type filled with one number, built on the GPU from a 0-d constant:
 * `clone(expand(c, shape))`. Cloning an expanded (overlapping) tensor under preserve_format gives a
 * contiguous one, so no MemoryFormat argument is needed. Used for creation ops whose fill value is a Scalar
 * or that have no tensor input to take a device from (full, zeros, full_like, …): nothing big is uploaded,
 * and each run gets its own tensor.
 */
import type { TensorType } from "../../ir/graph.js";
import type { LoweringContext } from "./lowering-rule.js";
import { tensorArg } from "./rewrite-context.js";

export function emitFilled(
  cx: LoweringContext,
  value: number,
  type: TensorType,
  outputs: readonly string[],
): void {
  const c = cx.scalarConstant(value, type.dtype);
  const [e] = cx.emit("aten.expand.default", {
    self: tensorArg(c),
    size: { kind: "ints", value: [...type.shape] },
  });
  cx.emit("aten.clone.default", { self: tensorArg(e) }, outputs);
}

import type { DType } from "../../ir/dtype.js";
import type { NetworkBuilder } from "../../network/builder.js";
import type { ElementwiseOp } from "../../network/layers/elementwise.js";
import type { UnaryOp } from "../../network/layers/unary.js";
import { cast } from "./tensors.js";

/** A binary layer computed in `dtype`: both operands are cast to it first. */
export function binary(net: NetworkBuilder, op: ElementwiseOp, a: string, b: string, dtype?: DType): string {
  const d = dtype ?? net.typeOf(a).dtype;
  return net.add({ type: "elementwise", op, inputs: [cast(net, a, d), cast(net, b, d)] }, op);
}

export function unary(net: NetworkBuilder, op: UnaryOp, x: string, dtype?: DType): string {
  return net.add({ type: "unary", op, inputs: [dtype ? cast(net, x, dtype) : x] }, op);
}

import type { NetworkBuilder } from "../../network/builder.js";
import { binary } from "./elementwise.js";
import { reshape, scalar } from "./tensors.js";

/**
 * torch.matmul: 1-D operands gain an axis that is removed afterwards; rank ≥ 2 operands broadcast their
 * batch axes inside the layer.
 */
export function matmul(net: NetworkBuilder, a: string, b: string, transposeB = false): string {
  const as = net.typeOf(a).shape;
  const bs = net.typeOf(b).shape;
  const a2 = as.length === 1 ? reshape(net, a, [1, as[0]]) : a;
  const b2 = bs.length === 1 ? reshape(net, b, transposeB ? [1, bs[0]] : [bs[0], 1]) : b;
  let y = net.add({ type: "matmul", inputs: [a2, b2], transposeA: false, transposeB });
  if (as.length === 1 || bs.length === 1) {
    const ys = net.typeOf(y).shape;
    const drop = new Set<number>();
    if (as.length === 1) drop.add(ys.length - 2);
    if (bs.length === 1) drop.add(ys.length - 1);
    y = reshape(
      net,
      y,
      ys.filter((_, i) => !drop.has(i)),
    );
  }
  return y;
}

/** y = x·Wᵀ (+ bias): the weight stays in its [out, in] layout and the layer transposes it. */
export function linear(net: NetworkBuilder, x: string, weight: string, bias: string | null): string {
  const y = matmul(net, x, weight, true);
  return bias ? binary(net, "add", y, bias) : y;
}

/** beta·c + alpha·(a @ b), skipping the multiplications by 1 (and the term when beta is 0, as PyTorch). */
export function gemm(
  net: NetworkBuilder,
  c: string | null,
  a: string,
  b: string,
  alpha: number,
  beta: number,
): string {
  const dtype = net.typeOf(a).dtype;
  let ab = matmul(net, a, b);
  if (alpha !== 1) ab = binary(net, "mul", ab, scalar(net, dtype, alpha));
  if (c === null || beta === 0) return ab;
  const cc = beta === 1 ? c : binary(net, "mul", c, scalar(net, dtype, beta), dtype);
  return binary(net, "add", cc, ab, dtype);
}

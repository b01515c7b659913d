// RMSNorm written out as arithmetic (core ATen's decomposition of rms_norm, or a hand-written module):
// x · rsqrt(mean(x², trailing dims, keepdim) + ε) is recognized as rms_norm, so the CUDA backend runs it as one
// rows kernel (with the residual add before it) instead of four kernels. A weight multiply after it stays a
// separate mul, which the rows kernel's epilogue takes in.
import { arg } from "../rewrite/args.js";
import { bool, commutative, constantScalar, ints, op, value } from "../rewrite/pattern.js";
import { rule, ruleSet } from "../rewrite/rule.js";

const rx = value({ floating: true });
const eps = constantScalar();
const dims = ints();
const square = op("aten.pow.Tensor_Scalar", { self: rx, exponent: constantScalar(2) }, { singleUse: true });
const meanSquare = op("aten.mean.dim", { self: square, dim: dims, keepdim: bool(true) }, { singleUse: true });
const plusEps = op(
  ["aten.add.Tensor", "aten.add.Scalar"],
  { self: meanSquare, other: eps },
  { singleUse: true },
);
const inverseRms = op("aten.rsqrt.default", { self: plusEps }, { singleUse: true });

/** The trailing dims `dims` names, as a normalized_shape, or undefined when they are not the last ones. */
function trailingShape(shape: readonly number[], dims: readonly number[]): number[] | undefined {
  const rank = shape.length;
  const axes = [...new Set(dims.map((d) => (d < 0 ? d + rank : d)))].sort((a, b) => a - b);
  if (axes.length === 0 || axes.some((d, i) => d !== rank - axes.length + i)) return undefined;
  return shape.slice(rank - axes.length);
}

export const recognizeRmsNorm = rule({
  name: "recognize-rms-norm",
  doc: "x · rsqrt(mean(x², trailing dims, keepdim=True) + ε) ⇒ rms_norm(x, x.shape[dims], None, ε)",
  pattern: commutative("aten.mul.Tensor", rx, inverseRms),
  captures: { rx, eps, dims },
  rewrite: ({ rx, eps, dims, root }, ctx) => {
    const normalized = trailingShape(rx.type.shape, dims);
    if (
      !normalized ||
      root.out.type.dtype !== rx.type.dtype ||
      root.out.type.shape.join() !== rx.type.shape.join()
    )
      return undefined;
    return ctx.replaceWithNode(
      "aten.rms_norm.default",
      { input: arg.tensor(rx), normalized_shape: arg.ints(normalized), eps: arg.float(eps) },
      root.out.type,
    );
  },
});

export const rmsNormRules = ruleSet(recognizeRmsNorm);

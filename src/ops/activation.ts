import { tt } from "./data.js";
import { erf, sigmoid } from "./math.js";
import { mapUnary, unaryOp } from "./pointwise.js";
import { type ArgReader, defineOp, opTable } from "./schema.js";

/** An activation `Tensor self, <params>` whose function is built from its parameters once per call. */
function paramAct<const N extends string, P>(
  name: N,
  schema: string,
  read: (r: ArgReader) => P,
  make: (p: P) => (x: number) => number,
) {
  return defineOp({
    name,
    schema,
    read: (r) => ({ self: r.tensor("self"), params: read(r) }),
    infer: (a, typeOf) => {
      const t = typeOf(a.self);
      return [tt(t.dtype, t.shape)];
    },
    evaluate: (a, valueAt) => {
      const t = valueAt(a.self);
      return [mapUnary(t, t.dtype, make(a.params))];
    },
  });
}

const SQRT1_2 = Math.SQRT1_2;
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

const gelu = (x: number) => 0.5 * x * (1 + erf(x * SQRT1_2));
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
const hardsigmoid = (x: number) => Math.min(Math.max(x + 3, 0), 6) / 6;
const softplus = (x: number, beta: number, threshold: number) =>
  x * beta > threshold ? x : Math.log1p(Math.exp(beta * x)) / beta;

export const ACTIVATION_OPS = opTable(
  unaryOp("aten.relu.default", "same", (x) => (x > 0 ? x : Number.isNaN(x) ? x : 0)),
  unaryOp("aten.relu6.default", "same", (x) => Math.min(Math.max(x, 0), 6)),
  unaryOp("aten.sigmoid.default", "float", sigmoid),
  unaryOp("aten.tanh.default", "float", Math.tanh),
  unaryOp("aten.silu.default", "float", (x) => x * sigmoid(x)),
  unaryOp("aten.hardswish.default", "same", (x) => x * hardsigmoid(x)),
  unaryOp("aten.hardsigmoid.default", "same", hardsigmoid),
  unaryOp("aten.mish.default", "float", (x) => x * Math.tanh(softplus(x, 1, 20))),
  paramAct(
    "aten.hardtanh.default",
    "Tensor self, Scalar min_val=-1, Scalar max_val=1",
    (r) => ({ lo: r.scalar("min_val").value, hi: r.scalar("max_val").value }),
    ({ lo, hi }) =>
      (x) =>
        Math.min(Math.max(x, lo), hi),
  ),
  paramAct(
    "aten.leaky_relu.default",
    "Tensor self, Scalar negative_slope=0.01",
    (r) => r.scalar("negative_slope").value,
    (s) => (x) => (x > 0 ? x : x * s),
  ),
  paramAct(
    "aten.elu.default",
    "Tensor self, Scalar alpha=1, Scalar scale=1, Scalar input_scale=1",
    (r) => ({
      alpha: r.scalar("alpha").value,
      scale: r.scalar("scale").value,
      inScale: r.scalar("input_scale").value,
    }),
    ({ alpha, scale, inScale }) =>
      (x) =>
        x > 0 ? scale * x : scale * alpha * Math.expm1(x * inScale),
  ),
  paramAct(
    "aten.gelu.default",
    'Tensor self, *, str approximate="none"',
    (r) => {
      const m = r.str("approximate");
      if (m !== "none" && m !== "tanh") r.fail("approximate", `'${m}' is not 'none' or 'tanh'`);
      return m;
    },
    (m) => (m === "tanh" ? geluTanh : gelu),
  ),
  paramAct(
    "aten.softplus.default",
    "Tensor self, Scalar beta=1, Scalar threshold=20",
    (r) => ({ beta: r.scalar("beta").value, threshold: r.scalar("threshold").value }),
    ({ beta, threshold }) =>
      (x) =>
        softplus(x, beta, threshold),
  ),
);

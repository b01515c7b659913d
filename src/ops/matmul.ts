import { promoteTypes } from "../ir/dtype.js";
import type { TensorType } from "../ir/graph.js";
import { numel, type Shape, type Tensor } from "../ir/tensor.js";
import { broadcastIndex, broadcastShapes, expandNums, f64, fromF64, tt } from "./data.js";
import { defineOp, OpArgError, opTable, type ScalarValue } from "./schema.js";

/**
 * out[oOff + i*N + j] += Σ_k A[i,k]·B[k,j] in float64. A is [M,K] row-major; B is [K,N], or [N,K] when
 * `bT` (the layout of a linear layer's weight), so neither operand is ever copied.
 */
export function gemm(
  a: Float64Array,
  aOff: number,
  b: Float64Array,
  bOff: number,
  out: Float64Array,
  oOff: number,
  M: number,
  K: number,
  N: number,
  bT: boolean,
): void {
  if (bT) {
    for (let i = 0; i < M; i++) {
      const ar = aOff + i * K;
      for (let j = 0; j < N; j++) {
        const br = bOff + j * K;
        let s = 0;
        for (let k = 0; k < K; k++) s += a[ar + k] * b[br + k];
        out[oOff + i * N + j] += s;
      }
    }
    return;
  }
  for (let i = 0; i < M; i++) {
    const orow = oOff + i * N;
    for (let k = 0; k < K; k++) {
      const aik = a[aOff + i * K + k];
      const br = bOff + k * N;
      for (let j = 0; j < N; j++) out[orow + j] += aik * b[br + j];
    }
  }
}

interface MatmulPlan {
  readonly batch: number[];
  readonly M: number;
  readonly K: number;
  readonly N: number;
  readonly outShape: number[];
  readonly aBatch: number[];
  readonly bBatch: number[];
}

/** torch.matmul's rules: 1-d operands gain and then lose a dim; batch dims broadcast. */
function plan(op: string, a: Shape, b: Shape): MatmulPlan {
  if (a.length === 0 || b.length === 0)
    throw new OpArgError(op, "self", "both arguments need at least 1 dim");
  const a2 = a.length === 1 ? [1, a[0]] : [...a];
  const b2 = b.length === 1 ? [b[0], 1] : [...b];
  const M = a2[a2.length - 2];
  const K = a2[a2.length - 1];
  const N = b2[b2.length - 1];
  if (b2[b2.length - 2] !== K)
    throw new OpArgError(op, "other", `shapes [${a.join(", ")}] and [${b.join(", ")}] cannot be multiplied`);
  const aBatch = a2.slice(0, -2);
  const bBatch = b2.slice(0, -2);
  const batch = broadcastShapes(op, aBatch, bBatch);
  const outShape = [...batch, ...(a.length > 1 ? [M] : []), ...(b.length > 1 ? [N] : [])];
  return { batch, M, K, N, outShape, aBatch, bBatch };
}

export function matmul(op: string, at: Tensor, bt: Tensor): Tensor {
  const p = plan(op, at.shape, bt.shape);
  const a = f64(at);
  const b = f64(bt);
  const nb = numel(p.batch);
  const out = new Float64Array(nb * p.M * p.N);
  const ai = broadcastIndex(p.aBatch, p.batch);
  const bi = broadcastIndex(p.bBatch, p.batch);
  for (let i = 0; i < nb; i++)
    gemm(a, ai[i] * p.M * p.K, b, bi[i] * p.K * p.N, out, i * p.M * p.N, p.M, p.K, p.N, false);
  return fromF64(promoteTypes(at.dtype, bt.dtype), p.outShape, out);
}

function inferMatmul(op: string, a: TensorType, b: TensorType): TensorType[] {
  return [tt(promoteTypes(a.dtype, b.dtype), plan(op, a.shape, b.shape).outShape)];
}

function check2d(op: string, arg: string, t: TensorType | Tensor, rank = 2): void {
  if (t.shape.length !== rank)
    throw new OpArgError(op, arg, `expected a ${rank}-d tensor, got [${t.shape.join(", ")}]`);
}

export interface LinearArgs {
  readonly input: string;
  readonly weight: string;
  readonly bias: string | null;
}

function linearShape(op: string, x: Shape, w: Shape): number[] {
  const K = x[x.length - 1];
  if (w.length === 1 ? w[0] !== K : w.length !== 2 || w[1] !== K) {
    throw new OpArgError(op, "weight", `weight [${w.join(", ")}] does not fit input [${x.join(", ")}]`);
  }
  return [...x.slice(0, -1), ...(w.length === 2 ? [w[0]] : [])];
}

export interface AddmmArgs {
  readonly self: string;
  readonly mat1: string;
  readonly mat2: string;
  readonly beta: ScalarValue;
  readonly alpha: ScalarValue;
}

export const MATMUL_OPS = opTable(
  defineOp({
    name: "aten.linear.default",
    schema: "Tensor input, Tensor weight, Tensor? bias=None",
    read: (r): LinearArgs => ({
      input: r.tensor("input"),
      weight: r.tensor("weight"),
      bias: r.optTensor("bias"),
    }),
    infer: (a, typeOf) => {
      const x = typeOf(a.input);
      return [tt(x.dtype, linearShape("aten.linear.default", x.shape, typeOf(a.weight).shape))];
    },
    evaluate: (a, valueAt) => {
      const xt = valueAt(a.input);
      const wt = valueAt(a.weight);
      const shape = linearShape("aten.linear.default", xt.shape, wt.shape);
      const K = xt.shape[xt.shape.length - 1];
      const N = wt.shape.length === 2 ? wt.shape[0] : 1;
      const M = numel(xt.shape) / K;
      const out =
        a.bias === null ? new Float64Array(M * N) : Float64Array.from(expandNums(valueAt(a.bias), [M, N]));
      gemm(f64(xt), 0, f64(wt), 0, out, 0, M, K, N, true);
      return [fromF64(xt.dtype, shape, out)];
    },
  }),
  defineOp({
    name: "aten.addmm.default",
    schema: "Tensor self, Tensor mat1, Tensor mat2, *, Scalar beta=1, Scalar alpha=1",
    read: (r): AddmmArgs => ({
      self: r.tensor("self"),
      mat1: r.tensor("mat1"),
      mat2: r.tensor("mat2"),
      beta: r.scalar("beta"),
      alpha: r.scalar("alpha"),
    }),
    infer: (a, typeOf) => {
      const m1 = typeOf(a.mat1);
      const m2 = typeOf(a.mat2);
      check2d("aten.addmm.default", "mat1", m1);
      check2d("aten.addmm.default", "mat2", m2);
      const out = inferMatmul("aten.addmm.default", m1, m2)[0];
      broadcastShapes("aten.addmm.default", typeOf(a.self).shape, out.shape);
      return [out];
    },
    evaluate: (a, valueAt) => {
      const m1 = valueAt(a.mat1);
      const m2 = valueAt(a.mat2);
      check2d("aten.addmm.default", "mat1", m1);
      check2d("aten.addmm.default", "mat2", m2);
      const [M, K] = m1.shape;
      const N = m2.shape[1];
      if (m2.shape[0] !== K)
        throw new OpArgError(
          "aten.addmm.default",
          "mat2",
          `[${m1.shape.join(", ")}] @ [${m2.shape.join(", ")}]`,
        );
      const prod = new Float64Array(M * N);
      gemm(f64(m1), 0, f64(m2), 0, prod, 0, M, K, N, false);
      const beta = a.beta.value;
      const alpha = a.alpha.value;
      // beta = 0 ignores self entirely (NaN and inf included), as PyTorch documents.
      const s = beta === 0 ? null : expandNums(valueAt(a.self), [M, N]);
      for (let i = 0; i < prod.length; i++) prod[i] = alpha * prod[i] + (s ? beta * s[i] : 0);
      return [fromF64(promoteTypes(m1.dtype, m2.dtype), [M, N], prod)];
    },
  }),
  defineOp({
    name: "aten.mm.default",
    schema: "Tensor self, Tensor mat2",
    read: (r) => ({ self: r.tensor("self"), mat2: r.tensor("mat2") }),
    infer: (a, typeOf) => {
      check2d("aten.mm.default", "self", typeOf(a.self));
      check2d("aten.mm.default", "mat2", typeOf(a.mat2));
      return inferMatmul("aten.mm.default", typeOf(a.self), typeOf(a.mat2));
    },
    evaluate: (a, valueAt) => [matmul("aten.mm.default", valueAt(a.self), valueAt(a.mat2))],
  }),
  defineOp({
    name: "aten.bmm.default",
    schema: "Tensor self, Tensor mat2",
    read: (r) => ({ self: r.tensor("self"), mat2: r.tensor("mat2") }),
    infer: (a, typeOf) => {
      const x = typeOf(a.self);
      const y = typeOf(a.mat2);
      check2d("aten.bmm.default", "self", x, 3);
      check2d("aten.bmm.default", "mat2", y, 3);
      if (x.shape[0] !== y.shape[0])
        throw new OpArgError("aten.bmm.default", "mat2", `batch ${y.shape[0]} differs from ${x.shape[0]}`);
      return inferMatmul("aten.bmm.default", x, y);
    },
    evaluate: (a, valueAt) => [matmul("aten.bmm.default", valueAt(a.self), valueAt(a.mat2))],
  }),
  defineOp({
    name: "aten.matmul.default",
    schema: "Tensor self, Tensor other",
    read: (r) => ({ self: r.tensor("self"), other: r.tensor("other") }),
    infer: (a, typeOf) => inferMatmul("aten.matmul.default", typeOf(a.self), typeOf(a.other)),
    evaluate: (a, valueAt) => [matmul("aten.matmul.default", valueAt(a.self), valueAt(a.other))],
  }),
);

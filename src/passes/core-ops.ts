// The op set the lowering pipeline ends in, whichever flavour of graph came in (torch.export's default IR
// or core ATen after run_decompositions()). Converters and backends may assume only these ops (plus
// whatever falls back to LibTorch). The choices favour a GPU backend: big ops stay whole so cuDNN /
// cuBLASLt can fuse epilogues into them, and activations stay named so they fuse as one pointwise op.
import type { Graph } from "../ir/graph.js";

export const CORE_OPS: Readonly<Record<string, string>> = {
  // Compute-bound ops: kept whole for library kernels with fused epilogues.
  "aten.convolution.default":
    "every conv (1-3d, grouped, transposed) as one op: one cuDNN call with fused bias/activation",
  "aten.linear.default":
    "x·Wᵀ+b as one op so cuBLASLt fuses bias and activation; core ATen's permute+addmm is recomposed into it",
  "aten.addmm.default": "matmul + broadcast bias where the right operand is not a weight",
  "aten.mm.default": "matmul of two activations",
  "aten.bmm.default": "batched matmul; matmul with batch dims lowers to it",
  "aten.matmul.default": "only forms with a 1-D operand remain (all others become mm / bmm / linear)",
  "aten.scaled_dot_product_attention.default": "kept whole for a fused attention kernel",
  "aten.embedding.default": "a gather of weight rows",
  // Normalization, in core ATen form; statistics stay fp32 under reduced precision.
  "aten._native_batch_norm_legit_no_training.default":
    "inference batch norm (most fold into the conv before them)",
  "aten.native_layer_norm.default": "layer norm in core ATen form",
  "aten.native_group_norm.default": "group norm in core ATen form",
  "aten.rms_norm.default":
    "RMSNorm (core ATen decomposes it; passes/decompositions/rms-norm.ts puts it back)",
  "aten._softmax.default": "softmax in core ATen form (a reduction plus pointwise)",
  "aten._log_softmax.default": "log-softmax in core ATen form",
  // Activations: named pointwise ops, fused into the producer's epilogue.
  "aten.relu.default": "activation",
  "aten.sigmoid.default": "activation",
  "aten.tanh.default": "activation",
  "aten.gelu.default": "activation (approximate='none' | 'tanh')",
  "aten.silu.default": "activation; core ATen's x·sigmoid(x) is recomposed into it",
  "aten.hardtanh.default": "two-sided clamp; relu6 and clamp(min, max) become it",
  "aten.hardswish.default": "activation; core ATen's x·clamp(x+3, 0, 6)/6 is recomposed into it",
  "aten.hardsigmoid.default": "activation; core ATen's clamp(x+3, 0, 6)/6 is recomposed into it",
  "aten.leaky_relu.default": "activation",
  "aten.elu.default": "activation",
  "aten.softplus.default": "activation",
  "aten.clamp.default": "one-sided clamp (two-sided is hardtanh, clamp(min=0) is relu)",
  // Pointwise arithmetic: Scalar overloads become the Tensor overload with a literal operand.
  "aten.add.Tensor": "pointwise; a scalar operand stays a literal",
  "aten.sub.Tensor": "pointwise",
  "aten.mul.Tensor": "pointwise",
  "aten.div.Tensor": "pointwise",
  "aten.neg.default": "pointwise",
  "aten.exp.default": "pointwise",
  "aten.log.default": "pointwise",
  "aten.sqrt.default": "pointwise",
  "aten.rsqrt.default": "pointwise",
  "aten.reciprocal.default": "pointwise",
  "aten.abs.default": "pointwise",
  "aten.erf.default": "pointwise",
  "aten.pow.Tensor_Scalar": "pointwise power by a constant",
  "aten.where.self": "pointwise select",
  "aten.maximum.default": "pointwise",
  "aten.minimum.default": "pointwise",
  "aten._to_copy.default": "dtype cast (the only cast op; precision assignment inserts these)",
  // Reductions and pooling.
  "aten.mean.dim": "reduction; global average pooling lowers to it",
  "aten.sum.dim_IntList": "reduction",
  "aten.amax.default": "reduction",
  "aten.max_pool2d.default": "pooling (max_pool2d_with_indices without used indices becomes it)",
  "aten.avg_pool2d.default": "pooling",
  "aten._adaptive_avg_pool2d.default": "adaptive pooling to a size other than 1×1",
  // Data movement: views are free, the rest are copies a fuser can often fold into neighbours.
  "aten.view.default": "the only reshape: reshape/flatten/squeeze/unsqueeze/_unsafe_view all become it",
  "aten.permute.default": "the only transpose: transpose/t become it",
  "aten.expand.default": "broadcast view",
  "aten.cat.default": "concatenation (stack becomes view + cat)",
  "aten.slice.Tensor": "strided slice (narrow becomes it)",
  "aten.select.int": "index one position of a dim",
  "aten.constant_pad_nd.default": "constant padding (pad with mode='constant' becomes it)",
  "aten.upsample_nearest2d.vec": "nearest upsampling",
};

export function isCoreOp(op: string): boolean {
  return op in CORE_OPS;
}

/** Ops of a graph outside the core set, with how often each occurs (for reports and tests). */
export function nonCoreOps(graph: Graph): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of graph.nodes) if (!isCoreOp(n.op)) out.set(n.op, (out.get(n.op) ?? 0) + 1);
  return out;
}

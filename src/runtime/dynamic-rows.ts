/**
 * Whether a graph treats the rows of its dynamic (batch) dimension independently: no node reduces, reorders,
 * tiles or mixes values across that dimension. Only then may one input batch run in an engine built for a
 * larger batch (rows padded, outputs sliced) or in an engine specialized to its exact size, and give what the
 * program gives. Each node is judged by its op's kind and its arguments, with the symbolic types of its values
 * (read off specializations: see ir/symbolic.ts); a node that cannot be shown to keep rows apart is an error
 * that names it.
 */
import { TorchcError } from "../errors.js";
import { type Arg, formatLocation, type Graph, type Node, nodeInputs } from "../ir/graph.js";
import { formatSymShape, isSymbolic, type SymbolicType, type SymbolicTypes } from "../ir/symbolic.js";
import { ACTIVATION_OPS } from "../ops/activation.js";
import { COMPARE_OPS } from "../ops/compare.js";
import { ELEMENTWISE_OPS } from "../ops/elementwise.js";
import { functionalVariant } from "../ops/index.js";

/** Where the batch sits in a value: its axis and how many rows of the value one batch row is (k of k·s). */
export interface BatchAxis {
  readonly axis: number;
  readonly coeff: number;
}

/** Ops that compute each element from the elements at the same (broadcast) position. */
const POINTWISE: ReadonlySet<string> = new Set([
  ...Object.keys(ACTIVATION_OPS),
  ...Object.keys(ELEMENTWISE_OPS),
  ...Object.keys(COMPARE_OPS),
  "aten._to_copy.default",
  "aten.to.dtype",
  "aten.to.device",
  "aten.to.other",
  "aten.to.dtype_layout",
  "aten.to.prim_dtype",
  "aten.to.prim_Device",
  "aten.type_as.default",
  "aten.dropout.default",
  "aten.feature_dropout.default",
  "aten.alpha_dropout.default",
  "aten.feature_alpha_dropout.default",
  "aten.fill.Scalar",
  "aten.fill.Tensor",
  "aten.zero.default",
  "aten.tril.default",
  "aten.triu.default",
  "aten.full_like.default",
  "aten.zeros_like.default",
  "aten.ones_like.default",
  "aten.empty_like.default",
  "aten.alias.default",
  "aten.detach.default",
  "aten.lift_fresh_copy.default",
  "aten.clone.default",
  "aten.contiguous.default",
  "aten.copy.default",
  "aten.addcmul.default",
  "aten.addcdiv.default",
  "aten.hardtanh.default",
]);

/** Ops over [N, C, …] that treat each sample of N on its own (inference batch norm included). */
const PER_SAMPLE: ReadonlySet<string> = new Set([
  "aten.conv1d.default",
  "aten.conv1d.padding",
  "aten.conv2d.default",
  "aten.conv2d.padding",
  "aten.convolution.default",
  "aten._convolution.default",
  "aten._convolution.deprecated",
  "aten.conv_transpose1d.default",
  "aten.conv_transpose2d.input",
  "aten.max_pool2d.default",
  "aten.max_pool2d_with_indices.default",
  "aten.avg_pool2d.default",
  "aten.adaptive_avg_pool2d.default",
  "aten._adaptive_avg_pool2d.default",
  "aten.batch_norm.default",
  "aten._native_batch_norm_legit_no_training.default",
  "aten._native_batch_norm_legit.default",
  "aten.native_batch_norm.default",
  "aten.group_norm.default",
  "aten.native_group_norm.default",
  "aten.upsample_nearest2d.default",
  "aten.upsample_nearest2d.vec",
  "aten.upsample_bilinear2d.default",
  "aten.upsample_bilinear2d.vec",
  "aten._upsample_bilinear2d_aa.default",
  "aten._upsample_bilinear2d_aa.vec",
  "aten._upsample_bicubic2d_aa.default",
  "aten._upsample_bicubic2d_aa.vec",
  "aten.constant_pad_nd.default",
  "aten.pad.default",
  "aten.reflection_pad1d.default",
  "aten.reflection_pad2d.default",
  "aten.reflection_pad3d.default",
  "aten.replication_pad1d.default",
  "aten.replication_pad2d.default",
  "aten.replication_pad3d.default",
]);

/** Ops that work along the dimensions their `dim`/`dims` arguments name, each position of the others apart. */
const ALONG_DIMS: ReadonlySet<string> = new Set([
  "aten.softmax.int",
  "aten._softmax.default",
  "aten.log_softmax.int",
  "aten._log_softmax.default",
  "aten.cumsum.default",
  "aten.flip.default",
  "aten.roll.default",
  "aten.cat.default",
  "aten.split.Tensor",
  "aten.split.sizes",
  "aten.split_with_sizes.default",
  "aten.chunk.default",
  "aten.unbind.int",
  "aten.index_select.default",
  "aten.gather.default",
  "aten.narrow.default",
  "aten.select.int",
  "aten.slice.Tensor",
  "aten.slice_scatter.default",
  "aten.select_scatter.default",
]);

/** Reductions: a reduction over the batch leaves no batch in its result, which the general check refuses. */
const REDUCTIONS: ReadonlySet<string> = new Set([
  "aten.sum.dim_IntList",
  "aten.mean.dim",
  "aten.prod.dim_int",
  "aten.amax.default",
  "aten.amin.default",
  "aten.any.dim",
  "aten.any.dims",
  "aten.all.dim",
  "aten.all.dims",
  "aten.max.dim",
  "aten.min.dim",
  "aten.argmax.default",
  "aten.argmin.default",
  "aten.var.correction",
  "aten.var.dim",
  "aten.std.correction",
  "aten.std.dim",
  "aten.var_mean.correction",
  "aten.var_mean.dim",
  "aten.linalg_vector_norm.default",
]);

/** Views and layout moves whose batch axis follows from shapes (reshapes get the block check). */
const MOVES: ReadonlySet<string> = new Set([
  "aten.unsqueeze.default",
  "aten.squeeze.default",
  "aten.squeeze.dim",
  "aten.squeeze.dims",
  "aten.permute.default",
  "aten.transpose.int",
  "aten.t.default",
  "aten.expand.default",
  "aten.expand_as.default",
  "aten.stack.default",
]);

const RESHAPES: ReadonlySet<string> = new Set([
  "aten.view.default",
  "aten._unsafe_view.default",
  "aten.reshape.default",
  "aten.view_as.default",
  "aten.reshape_as.default",
  "aten.flatten.using_ints",
  "aten.unflatten.int",
]);

/** Matmul-like ops: which argument is which operand, and how each operand's contracted axis is found. */
const CONTRACTIONS: Readonly<Record<string, readonly [arg: string, contracted: "last" | "rows"][]>> = {
  "aten.mm.default": [
    ["self", "last"],
    ["mat2", "rows"],
  ],
  "aten.bmm.default": [
    ["self", "last"],
    ["mat2", "rows"],
  ],
  "aten.matmul.default": [
    ["self", "last"],
    ["other", "rows"],
  ],
  "aten.addmm.default": [
    ["mat1", "last"],
    ["mat2", "rows"],
  ],
  "aten.baddbmm.default": [
    ["batch1", "last"],
    ["batch2", "rows"],
  ],
  "aten.linear.default": [
    ["input", "last"],
    ["weight", "last"],
  ],
  // q·kᵀ contracts the feature axis, softmax·v the sequence axis: the batch must lead both
  "aten.scaled_dot_product_attention.default": [
    ["query", "rows"],
    ["key", "rows"],
    ["value", "rows"],
  ],
  "aten._scaled_dot_product_flash_attention_for_cpu.default": [
    ["query", "rows"],
    ["key", "rows"],
    ["value", "rows"],
  ],
};

export class RowDependenceError extends TorchcError {
  constructor(
    readonly node: string,
    detail: string,
  ) {
    super(detail, "dynamic.rows");
  }
}

/** The batch axis of a symbolic type, undefined when it has none; two symbolic axes are an error. */
export function batchAxisOf(t: SymbolicType | undefined): BatchAxis | undefined {
  if (!t) return undefined;
  let found: BatchAxis | undefined;
  t.shape.forEach((d, axis) => {
    if (!isSymbolic(d)) return;
    if (found) throw new Error(`two dimensions of ${formatSymShape(t.shape)} scale with the batch`);
    found = { axis, coeff: d.coeff };
  });
  return found;
}

/**
 * Checks every node of `graph` (one specialization of the symbolic graph whose value types are `sym`); throws
 * a RowDependenceError naming the first node that may mix batch rows, and why.
 */
export function checkRowIndependence(graph: Graph, sym: SymbolicTypes, symbol: string): void {
  const irregular = new Map(sym.irregular.map((v) => [v.value, v]));
  for (const node of graph.nodes) {
    const where = formatLocation(node);
    const fail = (why: string): never => {
      throw new RowDependenceError(
        node.name,
        `${where} ${why}; a range of the dynamic dimension '${symbol}' needs every node to keep its rows apart (export with a static size instead)`,
      );
    };
    for (const name of [...nodeInputs(node), ...node.outputs]) {
      const bad = irregular.get(name);
      if (bad)
        fail(
          `gives '${name}' sizes that are not a multiple of '${symbol}' (${bad.shapes.map((s) => `[${s.join(", ")}]`).join(" / ")})`,
        );
    }
    const axisOf = (name: string): BatchAxis | undefined => {
      try {
        return batchAxisOf(sym.types[name]);
      } catch (e) {
        return fail(`has '${name}' where ${(e as Error).message}`);
      }
    };
    const ins = nodeInputs(node).map((n) => ({ name: n, batch: axisOf(n) }));
    const outs = node.outputs.map((n) => ({ name: n, batch: axisOf(n) }));
    const batchedIn = ins.filter((i) => i.batch);
    if (batchedIn.length === 0) continue; // static work, or sizes made from the symbol (expand, full, arange)
    const found = outs.find((o) => o.batch);
    if (!found) {
      if (node.outputs.length === 0) continue; // checks such as _assert_tensor_metadata
      fail("reduces or selects across the batch (its result does not scale with it)");
    }
    const out = found as { name: string; batch: BatchAxis };
    const outAxis = out.batch;
    const rank = (n: string) => sym.types[n]?.shape.length ?? graph.values[n].shape.length;
    const arg = (k: string): Arg | undefined => (Object.hasOwn(node.args, k) ? node.args[k] : undefined);
    const self = ins[0];
    const selfAxis = self?.batch;
    // an in-place op treats rows as its functional op does
    const op = functionalVariant(node.op) ?? node.op;

    if (op === "aten.repeat.default") {
      const reps = intList(arg("repeats"));
      const r = rank(out.name);
      if (selfAxis && (reps[selfAxis.axis + (r - rank(self.name))] ?? 1) !== 1)
        fail("repeats the batch (the rows of the result are copies in an order that depends on its size)");
      continue;
    }
    if (POINTWISE.has(op)) {
      const r = rank(out.name);
      for (const i of batchedIn) {
        const b = i.batch as BatchAxis;
        if (b.axis + (r - rank(i.name)) !== outAxis.axis || b.coeff !== outAxis.coeff)
          fail(`broadcasts '${i.name}' so that its batch lands on another axis of the result`);
      }
      continue;
    }
    if (PER_SAMPLE.has(op)) {
      if (batchedIn.length !== 1 || self?.batch === undefined || selfAxis?.axis !== 0 || outAxis.axis !== 0)
        fail("has the batch somewhere other than the leading (N) axis of its input, or in its weights");
      const training = arg("training");
      if (op.includes("_legit.no_stats") || (training?.kind === "bool" && training.value))
        fail("normalizes with batch statistics (training mode)");
      continue;
    }
    if (ALONG_DIMS.has(op)) {
      const r = rank(self.name);
      const dims = dimsOf(node, r);
      for (const i of batchedIn) {
        const b = i.batch as BatchAxis;
        if (dims.includes(b.axis) && !(op === "aten.slice.Tensor" && b.coeff === outAxis.coeff))
          fail(`works along dimension ${b.axis} of '${i.name}', which is the batch`);
      }
      continue;
    }
    if (REDUCTIONS.has(op) || MOVES.has(op)) continue; // a reduction over the batch was refused above
    if (op === "aten.layer_norm.default" || op === "aten.native_layer_norm.default") {
      const normalized = intList(arg("normalized_shape")).length;
      if (selfAxis && selfAxis.axis >= rank(self.name) - normalized)
        fail("normalizes over the batch dimension");
      continue;
    }
    if (RESHAPES.has(op)) {
      const inT = sym.types[self.name];
      const outT = sym.types[out.name];
      const prefix = (t: SymbolicType, axis: number) =>
        t.shape.slice(0, axis).reduce<number>((a, d) => a * (d as number), 1);
      if (!selfAxis || !inT || !outT || prefix(inT, selfAxis.axis) !== prefix(outT, outAxis.axis))
        fail(
          `reshapes ${formatSymShape(inT?.shape ?? [])} to ${formatSymShape(outT?.shape ?? [])}, interleaving batch rows with other values`,
        );
      continue;
    }
    if (op === "aten.embedding.default") {
      if (ins[0]?.batch) fail("looks up a table that scales with the batch");
      continue;
    }
    if (op === "aten.index.Tensor") {
      const indices = arg("indices");
      const names = indices?.kind === "tensors" ? indices.names : [];
      if (selfAxis && names[selfAxis.axis] != null) fail("indexes the batch dimension");
      if (ins.slice(1).some((i) => i.batch)) fail("indexes with indices that scale with the batch");
      continue;
    }
    const contraction = CONTRACTIONS[op];
    if (contraction) {
      for (const [argName, contracted] of contraction) {
        const a = arg(argName);
        if (a?.kind !== "tensor") continue;
        const b = axisOf(a.name);
        if (!b) continue;
        const r = rank(a.name);
        const axes = contracted === "last" ? [r - 1] : r >= 2 ? [r - 2, r - 1] : [0];
        if (axes.includes(b.axis)) fail(`contracts over the batch dimension of '${a.name}'`);
      }
      continue;
    }
    fail("is an op whose treatment of batch rows torchc does not know");
  }
}

function intList(a: Arg | undefined): readonly number[] {
  if (a?.kind === "ints") return a.value;
  if (a?.kind === "int") return [a.value];
  return [];
}

/** The dimensions a node's `dim`/`dims` argument names, normalized for rank `r` (cat's dim 0 when absent). */
function dimsOf(node: Node, r: number): number[] {
  const a = node.args.dim ?? node.args.dims;
  const dims = a === undefined || a.kind === "none" ? [0] : intList(a);
  // roll without dims rolls the flattened tensor: every axis moves
  if (node.op === "aten.roll.default" && dims.length === 0) return Array.from({ length: r }, (_, i) => i);
  return dims.map((d) => (d < 0 ? d + r : d));
}

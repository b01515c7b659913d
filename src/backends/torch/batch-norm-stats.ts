/**
 * Eval-mode batch norm's saved statistics. PyTorch's CPU kernels (and torch.export's meta on CPU, hence the
 * catalogue's inference, src/ops/batchnorm.ts) return empty save_mean/save_invstd [0] when the running
 * statistics are used; CUDA's batch_norm_cuda always returns [C] (a copy of running_mean and
 * 1/sqrt(running_var + eps): aten/src/ATen/native/cuda/Normalization.cu; torch/_decomp/decompositions.py calls
 * it "a very annoying inconsistency where CPU and CUDA give different shapes"). The fallback runs the kernel
 * with its [C] results and slices them to the graph's [0], so a segment's outputs keep the graph's types.
 */
import type { Node } from "../../ir/graph.js";
import type { Rule } from "../../passes/rewrite/rule.js";
import { loweringRule } from "./lowering-rule.js";
import { tensorArg } from "./rewrite-context.js";

/** The three-result batch norms whose eval mode has empty stats on the CPU. */
const THREE_RESULT_BATCH_NORMS = [
  "aten._native_batch_norm_legit_no_training.default",
  "aten._native_batch_norm_legit.default",
  "aten.native_batch_norm.default",
];

export const BATCH_NORM_STATS: Rule = loweringRule({
  name: "eval batch norm: CUDA's [C] stats sliced to [0]",
  doc: "CUDA returns save_mean/save_invstd of [C] where the CPU (and the graph's types) give [0]: run the kernel with [C] results, slice them to [0]",
  ops: THREE_RESULT_BATCH_NORMS,
  lower: (node: Node, cx) => {
    const input = node.args.input;
    if (input?.kind !== "tensor") return false;
    const x = cx.typeOf(input.name);
    const c = x.shape[1] ?? 0;
    const stats = node.outputs.slice(1, 3);
    const empty = stats.filter((o) => o && cx.typeOf(o).shape[0] === 0);
    // training mode (or no running stats): the stats are [C] on every device; C = 0 has nothing to slice
    if (empty.length === 0 || c === 0) return false;
    const statType = { dtype: cx.typeOf(empty[0]).dtype, shape: [c] };
    const [, mean, invstd] = cx.emitTyped(node.op, node.args, [x, statType, statType], [node.outputs[0]]);
    [mean, invstd].forEach((s, i) => {
      const out = stats[i];
      if (!out) return;
      const slice = {
        self: tensorArg(s),
        dim: { kind: "int", value: 0 },
        start: { kind: "int", value: 0 },
        end: { kind: "int", value: 0 },
      } as const;
      cx.emit("aten.slice.Tensor", slice, [out]);
    });
  },
});

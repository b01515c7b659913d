/**
 * The rule set the LibTorch fallback lowers every node with (`libtorch-lowering` in `--trace-passes`), in the
 * order a node is handled: device moves and other op fixes, eval batch norm's stats, quantization ops → aten
 * arithmetic (quantize-rewrites.ts), in-place → functional, numbers in Tensor slots →
 * 0-d constants, Scalar arguments → Tensor overloads, convolutions with TF32 off. The first rule that fits a
 * node fires, and what it emits is lowered again by the same set until nothing fires.
 */
import { type Rule, type RuleSet, ruleSet } from "../../passes/rewrite/rule.js";
import { BATCH_NORM_STATS } from "./batch-norm-stats.js";
import { convolutionWithTf32 } from "./conv-precision.js";
import { loweringRule } from "./lowering-rule.js";
import { replaceNumberOperands } from "./number-operands.js";
import { FUNCTIONALIZE, OP_RULES } from "./op-rewrites.js";
import { QUANTIZATION_RULES } from "./quantize-rewrites.js";
import { SCALAR_RULES } from "./scalar-rewrites.js";

const NUMBER_OPERANDS = loweringRule({
  name: "numbers in Tensor slots → 0-d constants",
  doc: "a Python number in a Tensor slot (`add.Tensor(x, 3)`) → a 0-d constant of the wrapped-number dtype",
  lower: (node, cx) => {
    const replaced = replaceNumberOperands(node, cx);
    if (!replaced) return false;
    cx.emit(replaced.op, replaced.args, replaced.outputs);
  },
});

function convolutionRule(allowTf32: boolean): Rule {
  return loweringRule({
    name: allowTf32 ? "convolution → _convolution" : "convolution → _convolution(allow_tf32=False)",
    doc: "cuDNN would use TF32 by default; aten::_convolution takes allow_tf32 as an argument (conv-precision.ts)",
    lower: (node, cx) => {
      const conv = convolutionWithTf32(node, allowTf32, (n) => cx.typeOf(n));
      if (!conv) return false;
      cx.emit(conv.op, conv.args, node.outputs);
    },
  });
}

const SETS = new Map<boolean, RuleSet>();

/** The fallback's rule set; `allowTf32` lets cuDNN convolutions use TF32 (PyTorch's default). */
export function libtorchLowering(allowTf32: boolean): RuleSet {
  let set = SETS.get(allowTf32);
  if (!set) {
    set = ruleSet(
      OP_RULES,
      BATCH_NORM_STATS,
      QUANTIZATION_RULES,
      FUNCTIONALIZE,
      NUMBER_OPERANDS,
      SCALAR_RULES,
      convolutionRule(allowTf32),
    );
    SETS.set(allowTf32, set);
  }
  return set;
}

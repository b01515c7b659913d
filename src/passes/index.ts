// Public API of the lowering passes.

export {
  assignPrecision,
  assignPrecisionPass,
  FP32_OPS,
  type Precision,
  type PrecisionOptions,
  REDUCTION_OPS,
} from "./assign-precision.js";
export { canonicalizeViews, viewRules } from "./canonicalize-views.js";
export * from "./core-ops.js";
export { decomposeToCore, decompositionRules } from "./decompose-to-core.js";
export {
  eliminateCommonSubexpressions,
  eliminateCommonSubexpressionsPass,
} from "./eliminate-common-subexpressions.js";
export { eliminateDeadCode, eliminateDeadCodePass } from "./eliminate-dead-code.js";
export {
  batchNormFoldRules,
  foldBatchNorm,
  foldBatchNormIntoConv,
  foldBatchNormIntoLinear,
} from "./fold-batch-norm.js";
export { type FoldConstantsOptions, foldConstantsPass, foldConstantsRules } from "./fold-constants.js";
export * from "./pass.js";
export * from "./pipeline.js";
export { evalNoOpRules, removeEvalNoOps } from "./remove-eval-no-ops.js";
export * from "./rewrite/index.js";

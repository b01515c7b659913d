// Public API of the lowering passes.
export * from "./rewrite/index.js";
export * from "./pass.js";
export * from "./pipeline.js";
export * from "./core-ops.js";
export { removeEvalNoOps, evalNoOpRules } from "./remove-eval-no-ops.js";
export { decomposeToCore, decompositionRules } from "./decompose-to-core.js";
export { canonicalizeViews, viewRules } from "./canonicalize-views.js";
export { foldConstantsPass, foldConstantsRules, type FoldConstantsOptions } from "./fold-constants.js";
export { foldBatchNorm, batchNormFoldRules, foldBatchNormIntoConv, foldBatchNormIntoLinear } from "./fold-batch-norm.js";
export { eliminateCommonSubexpressions, eliminateCommonSubexpressionsPass } from "./eliminate-common-subexpressions.js";
export { eliminateDeadCode, eliminateDeadCodePass } from "./eliminate-dead-code.js";
export {
  assignPrecision,
  assignPrecisionPass,
  FP32_OPS,
  REDUCTION_OPS,
  type Precision,
  type PrecisionOptions,
} from "./assign-precision.js";

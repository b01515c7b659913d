/**
 * The LibTorch fallback: segments the engine cannot convert run op by op through PyTorch's stable C shim
 * (`aoti_torch_call_dispatcher`) on tensors that wrap the engine's device buffers.
 */
export { convolutionWithTf32 } from "./conv-precision.js";
export {
  type DispatchPlan,
  type EncodedArg,
  formatPlan,
  isUnsupported,
  splitOpName,
  type Unsupported,
} from "./encoded-arg.js";
export { TorchFallbackError } from "./errors.js";
export { libtorchLowering } from "./lowering-rules.js";
export { planDispatch, SHIM_OPS } from "./plan-dispatch.js";
export {
  type FallbackPlan,
  type FallbackPlanOptions,
  type PlanOutput,
  type PlanStep,
  planFallback,
  planFallbackOrThrow,
  type UnsupportedNode,
} from "./plan-segment.js";
export { LIBTORCH_LOWERING, wrappedDtype } from "./rewrite-context.js";
export {
  createTorchEnv,
  createTorchFallbackRunner,
  type DeviceValue,
  deviceValue,
  type RunDeviceOptions,
  type TensorEvent,
  type TorchFallbackEnv,
  type TorchFallbackRunner,
} from "./runner.js";

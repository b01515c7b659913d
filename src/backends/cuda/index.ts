/**
 * The CUDA backend: a Network becomes a CudaEngine (cuDNN convolutions with fused epilogues, cuBLASLt
 * matmuls, NVRTC-generated fused kernels for everything else, one activation arena, one CUDA graph).
 */
export { buildCudaEngine, type CudaBuildOptions } from "./builder.js";
export type { DeviceMemory } from "./device/validate.js";
export { type BuildStats, CudaEngine, type EngineIO } from "./engine.js";
export { type EnginePlan, planCudaEngine } from "./plan.js";

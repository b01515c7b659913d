/**
 * The CUDA device runtime: a small typed layer over src/ffi that the CUDA backend builds on. Every entry point
 * validates its arguments before a pointer reaches C.
 */

export * from "./blaslt.js";
export * from "./compile.js";
export * from "./context.js";
export * from "./conv.js";
export * from "./conv-shape.js";
export * from "./cudnn-backend.js";
export * from "./dispatcher-args.js";
export * from "./event.js";
export * from "./graph.js";
export * from "./kernel-cache.js";
export * from "./launch.js";
export * from "./libtorch.js";
export * from "./matmul-layout.js";
export * from "./memory.js";
export * from "./module.js";
export * from "./stream.js";
export * from "./torch-tensor.js";
export * from "./validate.js";

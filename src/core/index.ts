// Contracts shared by the compiler's layers: what a segment is, what a backend and its runners provide,
// execution contexts and device tensors, and the pass trace. Types only (and two tiny helpers), no behaviour.
export * from "./device-tensor.js";
export * from "./execution.js";
export * from "./segment.js";
export * from "./segment-runner.js";
export * from "./trace.js";

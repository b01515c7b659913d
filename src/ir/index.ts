export * from "./dtype.js";
export * from "./half.js";
export * from "./tensor.js";
export * from "./graph.js";
export * from "./builder.js";
export * from "./printer.js";
export * from "./verify.js";

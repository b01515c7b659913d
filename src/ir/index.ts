export * from "./builder.js";
export * from "./dtype.js";
export * from "./graph.js";
export * from "./half.js";
export * from "./printer.js";
export * from "./tensor.js";
export * from "./verify.js";

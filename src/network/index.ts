export * from "./layers/index.js";
export * from "./network.js";
export * from "./builder.js";
export * from "./verify.js";
export * from "./printer.js";
export { broadcastShapes } from "./shape.js";
export { runNetworkReference, runLayerReference, LAYER_RUNNERS, type ReferenceRunOptions } from "./reference/index.js";

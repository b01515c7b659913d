export * from "./builder.js";
export * from "./layers/index.js";
export * from "./network.js";
export * from "./printer.js";
export {
  LAYER_RUNNERS,
  type ReferenceRunOptions,
  runLayerReference,
  runNetworkReference,
} from "./reference/index.js";
export { broadcastShapes } from "./shape.js";
export * from "./verify.js";

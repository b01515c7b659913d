export * from "./args.js";
export * from "./driver.js";
export * from "./graph-view.js";
export * from "./pattern.js";
export * from "./replacement.js";
export * from "./rule.js";
export * from "./trace.js";
export * from "./working-graph.js";

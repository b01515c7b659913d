// The runner and backend contracts live in src/core (backends implement them without importing the
// runtime); here Backend is bound to the runtime's package artifacts.
import type { Backend as BackendContract } from "../core/segment-runner.js";
import type { SavedArtifacts } from "./package-artifacts.js";

export { gather, type SegmentRunner } from "../core/segment-runner.js";

/** A backend whose saved engines are the runtime package's SavedArtifacts. */
export type Backend = BackendContract<SavedArtifacts>;

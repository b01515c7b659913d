/** What the runtime asks of a backend, and what a backend's runners give back: one segment at a time. */
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import type { Network } from "../network/network.js";
import type { ExecutionContext } from "./execution.js";
import type { Segment } from "./segment.js";
import type { Trace } from "./trace.js";

/** Runs one segment: reads its inputs by value name, returns its outputs by value name. */
export interface SegmentRunner {
  readonly segment: Segment;
  /** What runs it, for reports: "reference layers", "cuda engine (42 kernels)", "LibTorch", … */
  readonly description: string;
  run(values: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>>;
  dispose?(): void | Promise<void>;
  /** Rewrites made while the runner was built (the LibTorch lowering); compile() appends them to its trace. */
  readonly trace?: Trace;
}

/**
 * How a backend turns segments into runners. `Artifacts` is what it saves into a package so a later load
 * needs no rebuild (the runtime's SavedArtifacts; the contract does not depend on the package format).
 */
export interface Backend<Artifacts = unknown> {
  readonly name: string;
  engine(segment: Segment, network: Network): Promise<SegmentRunner>;
  fallback(segment: Segment): Promise<SegmentRunner>;
  /**
   * An execution context that runs whole forward passes itself (values stay on the device between
   * segments). Without it, segments run one by one on host tensors.
   */
  createContext?(graph: Graph, runners: readonly SegmentRunner[], index: number): ExecutionContext;
  /** Device bytes of the runners' weights. */
  weightBytes?(runners: readonly SegmentRunner[]): number;
  /** What a package needs to run the built engines without building them again (runtime/package-artifacts.ts). */
  saveArtifacts?(runners: readonly SegmentRunner[]): Artifacts | undefined;
  /**
   * Refit (runtime/refit.ts): checks that `network` (the same structure as the one built, new constants) fits the
   * runner's engine and returns the upload that swaps its constants in; nothing changes until that is called.
   */
  prepareRefit?(runner: SegmentRunner, network: Network): () => void;
  dispose?(): void | Promise<void>;
}

/** The tensors `names` from `values`, in that order; a missing one is a bug in segment ordering. */
export function gather(
  values: ReadonlyMap<string, Tensor>,
  names: readonly string[],
  where: string,
): Tensor[] {
  return names.map((n) => {
    const t = values.get(n);
    if (!t) throw new Error(`${where}: value '${n}' was not computed before it was needed`);
    return t;
  });
}

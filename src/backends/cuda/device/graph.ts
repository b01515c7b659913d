/**
 * CUDA graph capture → instantiate → replay. Capture records the work `body` queues on `stream` (kernel
 * arguments are snapshotted then, so replays reuse the same buffers). Capture must run on a created stream
 * (the legacy NULL stream answers 900), and synchronous copies issued during capture run immediately instead of
 * being recorded: queue only asynchronous work on the capturing stream.
 */
import { CU_STREAM_CAPTURE_MODE, CUDA } from "../../../ffi/cuda.js";
import { CudaError, checkCuda } from "../../../ffi/status.js";
import type { OutNum, OutPtr } from "../../../ffi/types.js";
import { Stream, streamHandle } from "./stream.js";
import { checkInt, checkOneOf, fail } from "./validate.js";

export type CaptureMode = keyof typeof CU_STREAM_CAPTURE_MODE;

export interface CaptureOptions {
  /** "global" (default), "threadLocal" or "relaxed". */
  mode?: CaptureMode;
  /** cuGraphInstantiateWithFlags flags (CU_GRAPH_INSTANTIATE); default 0. */
  flags?: number;
}

export class CudaGraph {
  private destroyed = false;

  constructor(
    /** The CUgraphExec. */
    private readonly raw: bigint,
    /** Nodes in the captured graph (one per kernel, copy or memset captured). */
    readonly nodeCount: number,
  ) {}

  get handle(): bigint {
    if (this.destroyed) fail("the graph has been destroyed");
    return this.raw;
  }

  /** Replays the graph on `stream` (asynchronous). */
  launch(stream: Stream | null): void {
    const rc = CUDA.fn.cuGraphLaunch(this.handle, streamHandle(stream));
    if (rc !== 0) checkCuda("cuGraphLaunch", rc);
  }

  /** Uploads the graph's resources ahead of the first launch. */
  upload(stream: Stream | null): void {
    checkCuda("cuGraphUpload", CUDA.fn.cuGraphUpload(this.handle, streamHandle(stream)));
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    checkCuda("cuGraphExecDestroy", CUDA.fn.cuGraphExecDestroy(this.raw));
  }
}

/**
 * Captures what `body` queues on `stream` and instantiates it. `body` must be synchronous. Capture always
 * ends, also when `body` throws (the partial graph is discarded and the error rethrown).
 */
export function captureGraph(stream: Stream, body: () => void, opts: CaptureOptions = {}): CudaGraph {
  if (!(stream instanceof Stream))
    fail("capture needs a created Stream (the legacy NULL stream cannot capture)");
  const mode =
    CU_STREAM_CAPTURE_MODE[checkOneOf("mode", opts.mode ?? "global", ["global", "threadLocal", "relaxed"])];
  const flags = checkInt("flags", opts.flags ?? 0, 0, 15);
  const f = CUDA.fn;
  const s = stream.handle;
  checkCuda("cuStreamBeginCapture_v2", f.cuStreamBeginCapture_v2(s, mode));
  let bodyError: unknown;
  try {
    const result: unknown = body();
    if (result instanceof Promise) bodyError = new Error("captureGraph: body must be synchronous");
  } catch (e) {
    bodyError = e;
  }
  const graphOut: OutPtr = [null];
  const endRc = f.cuStreamEndCapture(s, graphOut);
  const graph = graphOut[0];
  try {
    if (bodyError !== undefined) throw bodyError;
    if (endRc !== 0) throw new CudaError("cuStreamEndCapture", endRc);
    if (graph === null) throw new Error("cuStreamEndCapture returned no graph");
    const count: OutNum = [0];
    checkCuda("cuGraphGetNodes", f.cuGraphGetNodes(graph, null, count));
    const execOut: OutPtr = [null];
    checkCuda("cuGraphInstantiateWithFlags", f.cuGraphInstantiateWithFlags(execOut, graph, flags));
    if (execOut[0] === null) throw new Error("cuGraphInstantiateWithFlags returned no executable graph");
    return new CudaGraph(execOut[0], count[0]);
  } finally {
    if (graph !== null) f.cuGraphDestroy(graph);
  }
}

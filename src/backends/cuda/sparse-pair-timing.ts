/**
 * The last step of every sparse-or-dense choice (sparse-select.ts for linears, sparse-conv-select.ts for 1×1
 * convolutions): the dense call and the searched cuSPARSELt plan timed on the same stream and buffers, captured
 * as CUDA graphs (graph-timing.ts), and the layer's report line; a tie keeps dense.
 */
import { type PairTimingOptions, timePairOnStream } from "./device/graph-timing.js";
import {
  runSparseLtPlan,
  type SparseLtOperands,
  type SparseLtPlan,
  streamCell,
} from "./device/sparselt-plan.js";
import type { Stream } from "./device/stream.js";
import { type SharedSparseHandle, SparseLtMatmul } from "./kernels/matmul-sparselt.js";
import { type SparseLayerReport, timingLost } from "./sparse-weights.js";

/**
 * Times `runDense` against `plan` on `operands`; when sparse wins, the returned runner owns `plan` (the caller must
 * not destroy it), else the caller still does.
 */
export function sparseOrDense(
  base: { readonly layer: string; readonly shape: string },
  stream: Stream,
  runDense: () => void,
  shared: SharedSparseHandle,
  plan: SparseLtPlan,
  operands: SparseLtOperands,
  timing: Required<PairTimingOptions>,
  denseLibrary: "cuBLASLt" | "cuDNN",
): { report: SparseLayerReport; chosen?: SparseLtMatmul } {
  const cell = streamCell(stream);
  const t = timePairOnStream(
    stream,
    [runDense, () => runSparseLtPlan(shared.handle, plan, operands, cell)],
    timing,
  );
  const [denseMs, sparseMs] = t.ms;
  // said on the layer's line when the times come from eager calls rather than graph replays
  const eager = t.graph ? "" : `; eager timing: ${t.why}`;
  if (sparseMs >= denseMs)
    return {
      report: {
        ...base,
        ran: "dense",
        sparseMs,
        denseMs,
        reason: `${timingLost(sparseMs, denseMs, denseLibrary)}${eager}`,
      },
    };
  const a = plan.algorithm;
  const algorithm = `${a.id} of ${a.count}${a.splitK > 1 ? `, split-K ${a.splitK}` : ""}${eager}`;
  return {
    report: { ...base, ran: "sparse", sparseMs, denseMs, algorithm },
    chosen: new SparseLtMatmul(shared, plan),
  };
}

/**
 * The convolution half of `sparseWeights`' build step: a 1×1 convolution over fp16 channels-last memory is the
 * GEMM y[N·H·W, Cout] = act(x[N·H·W, Cin]·Wᵀ + bias + residual), so a 2:4-pruned one (ResNet's bottleneck
 * reductions and expansions) can run on cuSPARSELt with its bias, residual (cuSPARSELt's C, β = 1) and ReLU in
 * the epilogue. Its sparse plan is timed against the cuDNN plan the schedule made, both on the same scratch
 * buffers and stream, captured into CUDA graphs (graph-timing.ts); the faster one runs.
 */
import { tensorBytes, tensorFromNumbers, toFloat64Array } from "../../ir/tensor.js";
import { CudaContext } from "./device/context.js";
import type { PairTimingOptions } from "./device/graph-timing.js";
import {
  buildSparseLtPlan,
  destroySparseLtPlan,
  type SparseLtOperands,
  type SparseLtPlan,
  searchSparseLtPlan,
} from "./device/sparselt-plan.js";
import { TimingScratch } from "./device/timing-scratch.js";
import type { ConvStep } from "./fuse/steps.js";
import type { CudnnConvPlan } from "./kernels/conv-cudnn.js";
import type { SharedSparseHandle, SparseLtMatmul } from "./kernels/matmul-sparselt.js";
import { sparseOrDense } from "./sparse-pair-timing.js";
import type { SparseConvCandidate, SparseLayerReport } from "./sparse-weights.js";

/**
 * The dense side of the timing: the convolution's cuDNN plan (bound here to scratch, rebound by the engine when it
 * runs; when the sparse plan wins it never runs, and the build's cuDNN tuning skips it).
 */
export type DenseConvPlan = Pick<
  CudnnConvPlan,
  "bind" | "execute" | "workspaceBytes" | "candidateCount" | "tune"
>;

/** What the build chose for its 1×1 convolutions: the dense plans it has, and the sparse ones that beat them. */
export interface SparseConvPlans {
  readonly dense: ReadonlyMap<ConvStep, DenseConvPlan>;
  readonly sparse: Map<ConvStep, SparseLtMatmul>;
}

const f16 = (shape: number[], values: Float64Array) =>
  tensorBytes(tensorFromNumbers("float16", shape, values));

/** Builds, searches and times the sparse plan of one 1×1 convolution against its cuDNN plan. */
export function tryConvCandidate(
  c: SparseConvCandidate,
  dense: DenseConvPlan,
  shared: SharedSparseHandle,
  maxWorkspace: number,
  timingOptions: Required<PairTimingOptions>,
): { report: SparseLayerReport; chosen?: SparseLtMatmul } {
  const { m, n, k } = c.problem;
  const base = { layer: c.step.layer.name, shape: `1×1 conv M=${m} N=${n} K=${k}` };
  const ranDense = (reason: string, times: Partial<SparseLayerReport> = {}) => ({
    report: { ...base, ...times, ran: "dense" as const, reason },
  });
  const bench = new TimingScratch();
  let plan: SparseLtPlan | undefined;
  try {
    // 0x3c3c is 1.06 in fp16: timing on zeros would flatter either library.
    const x = bench.buffer(m * k * 2, 0x3c);
    const y = bench.buffer(m * n * 2, 0);
    const residual = c.residual !== undefined ? bench.buffer(m * n * 2, 0x3c) : undefined;
    const workspace = bench.buffer(Math.max(maxWorkspace, dense.workspaceBytes, 256), 0);
    const weight = bench.upload(f16([n, k], toFloat64Array(c.weight)));
    const bias = c.bias ? f16([n], c.bias) : undefined;
    // The weight's pageable upload may still be in flight: the bench stream is not ordered with it.
    CudaContext.current().synchronize();
    plan = buildSparseLtPlan(shared.handle, c.problem, { weight: weight.ptr, bias }, bench.stream);
    const operands: SparseLtOperands = {
      x: x.ptr,
      y: y.ptr,
      workspace: workspace.ptr,
      ...(residual ? { residual: residual.ptr } : {}),
    };
    searchSparseLtPlan(shared.handle, plan, operands, bench.stream);
    if (plan.workspaceBytes > maxWorkspace)
      return ranDense(`cuSPARSELt wants ${plan.workspaceBytes} bytes of workspace (most ${maxWorkspace})`);
    // cuDNN's operands in its variant-pack order: x, w, (bias), y, then one per memory-reading epilogue op
    const extra = c.step.epilogue.flatMap((op) => {
      if (op.kind === "tensor") return [residual?.ptr ?? bench.buffer(m * n * 2, 0x3c).ptr];
      return op.kind === "channel" ? [bench.buffer(n * 2, 0).ptr] : [];
    });
    const denseBias = c.step.layer.inputs[2] !== undefined ? bench.buffer(n * 2, 0).ptr : undefined;
    dense.bind({ x: x.ptr, w: weight.ptr, bias: denseBias, y: y.ptr, extra }, workspace.ptr);
    // With tuneConvs the cuDNN plan still holds several engines: sparse must beat the one that would run.
    if (dense.candidateCount > 1) dense.tune(bench.stream);
    const run = () => dense.execute(bench.stream);
    const r = sparseOrDense(base, bench.stream, run, shared, plan, operands, timingOptions, "cuDNN");
    if (r.chosen) plan = undefined;
    return r;
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    return ranDense(plan ? `timing failed: ${why}` : `cuSPARSELt refused: ${why}`);
  } finally {
    if (plan) destroySparseLtPlan(plan);
    bench.release();
  }
}

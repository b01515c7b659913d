/**
 * The build step of `sparseWeights`: after the schedule is made (every matmul has its dense cuBLASLt plan),
 * each matmul whose constant weight is 2:4 sparse along K gets a cuSPARSELt plan (weight compressed once,
 * algorithm chosen by cusparseLtMatmulSearch), both are timed on the same buffers and stream the way the engine
 * runs them (calls captured into a CUDA graph and replayed: graph-timing.ts), and the faster one is kept.
 * Layers that cannot run sparse, or lose the timing, stay dense with the reason in the summary.
 */
import { type Tensor, tensorBytes, tensorFromNumbers, toFloat64Array } from "../../ir/tensor.js";
import { CudaContext } from "./device/context.js";
import type { PairTimingOptions } from "./device/graph-timing.js";
import {
  buildSparseLtPlan,
  destroySparseLtPlan,
  MIN_CUSPARSELT_VERSION,
  SparseLtHandle,
  type SparseLtPlan,
  searchSparseLtPlan,
} from "./device/sparselt-plan.js";
import { TimingScratch } from "./device/timing-scratch.js";
import type { MatmulStep } from "./fuse/steps.js";
import { type LtMatmul, matmulGeometry } from "./kernels/matmul-cublaslt.js";
import type { SmallGemmMatmul } from "./kernels/matmul-small.js";
import { SharedSparseHandle, type SparseLtMatmul } from "./kernels/matmul-sparselt.js";
import type { EnginePlan } from "./plan.js";
import type { QuantizedEngineMatmul } from "./quant-select.js";
import { type SparseConvPlans, tryConvCandidate } from "./sparse-conv-select.js";
import { sparseOrDense } from "./sparse-pair-timing.js";
import {
  gpuSparseRefusal,
  type SparseCandidate,
  type SparseConvCandidacy,
  type SparseLayerReport,
  type SparseSummary,
  type SparseWeightsSetting,
  sparseCandidate,
  sparseConvCandidate,
  sparseWeightsSetting,
} from "./sparse-weights.js";

/**
 * A matmul step's plan in the engine: dense cuBLASLt, cuSPARSELt once this step chose it, an int8 GEMM, or the
 * generated small-M GEMM (small-gemm-select.ts).
 */
export type EngineMatmul = LtMatmul | SparseLtMatmul | QuantizedEngineMatmul | SmallGemmMatmul;

/**
 * How each candidate is timed: graphs of `perGraph` calls, `replays` replays per round, dense and sparse
 * alternating for `rounds` rounds, median (each call a single GEMM: microseconds to tens of microseconds).
 */
export const SPARSE_TIMING: Required<PairTimingOptions> = { perGraph: 20, replays: 3, rounds: 5 };

/**
 * The builder's `sparseWeights` setting on this device, or undefined when off; `true` throws, in one line,
 * when the GPU (compute capability < 8.0) or the machine (cuSPARSELt missing or too old) cannot run sparse.
 */
export function sparseWeightsFor(
  option: boolean | "prefer" | undefined,
  ctx: { readonly info: { readonly name: string; readonly computeCapability: readonly [number, number] } },
): SparseWeightsSetting | undefined {
  return sparseWeightsSetting(
    option,
    () => gpuSparseRefusal(ctx.info.name, ctx.info.computeCapability) ?? probeSparseLt(),
  );
}

/** Why cuSPARSELt cannot run here at all (library missing, too old, or failing to initialize), or undefined. */
export function probeSparseLt(): string | undefined {
  let handle: SparseLtHandle | undefined;
  try {
    handle = SparseLtHandle.create();
    const v = handle.version();
    if (v < MIN_CUSPARSELT_VERSION)
      return `cuSPARSELt ${versionText(v)} is older than ${versionText(MIN_CUSPARSELT_VERSION)}; install nvidia-cusparselt-cu13 0.6 or newer`;
    return undefined;
  } catch (e) {
    return (e instanceof Error ? e.message : String(e)).split("\n")[0];
  } finally {
    handle?.destroy();
  }
}

function versionText(v: number): string {
  return `${Math.floor(v / 1000)}.${Math.floor((v % 1000) / 100)}.${v % 100}`;
}

/** The candidates of a plan (linears, then 1×1 convolutions, in schedule order) and how many weights were checked. */
function candidates(plan: EnginePlan, matmuls: ReadonlyMap<MatmulStep, EngineMatmul>) {
  const info = (t: string) => plan.infos.get(t)!;
  const found: (SparseCandidate | SparseConvCandidacy)[] = [];
  let checked = 0;
  for (const step of plan.steps) {
    if (step.kind === "conv") {
      for (const conv of step.next ? [step, step.next] : [step]) {
        if (plan.network.layers.some((l) => l.type === "constant" && l.output === conv.layer.inputs[1]))
          checked++;
        const c = sparseConvCandidate(conv, plan.network, plan.infos);
        if (c) found.push(c);
      }
      continue;
    }
    // a fused residual is not part of the sparse GEMM; the scheduler fuses none with sparseWeights on
    if (step.kind !== "matmul" || !matmuls.has(step) || step.residual) continue;
    const c = sparseCandidate(step, plan.network, plan.infos, matmulGeometry(step, info));
    if (plan.network.layers.some((l) => l.type === "constant" && l.output === step.b)) checked++;
    if (c) found.push(c);
  }
  return { found, checked };
}

const f16 = (t: Tensor) => tensorBytes(tensorFromNumbers("float16", t.shape, toFloat64Array(t)));

/** Builds, searches and times the sparse plan of one candidate against its dense plan. */
function tryCandidate(
  c: Extract<SparseCandidate, { runnable: true }>,
  dense: EngineMatmul,
  shared: SharedSparseHandle,
  maxWorkspace: number,
): { report: SparseLayerReport; chosen?: SparseLtMatmul } {
  const { m, n, k } = c.problem;
  const base = { layer: c.step.layer.name, shape: `M=${m} N=${n} K=${k}` };
  const bench = new TimingScratch();
  let plan: SparseLtPlan | undefined;
  try {
    // 0x3c3c is 1.06 in fp16: timing on zeros would flatter either library.
    const x = bench.buffer(m * k * 2, 0x3c);
    const y = bench.buffer(m * n * 2, 0);
    const workspace = bench.buffer(maxWorkspace, 0);
    const weight = bench.upload(f16(c.weight));
    const bias = c.bias ? f16(c.bias) : undefined;
    // The weight's pageable upload may still be in flight: the bench stream is not ordered with it.
    CudaContext.current().synchronize();
    plan = buildSparseLtPlan(shared.handle, c.problem, { weight: weight.ptr, bias }, bench.stream);
    const operands = { x: x.ptr, y: y.ptr, workspace: workspace.ptr };
    searchSparseLtPlan(shared.handle, plan, operands, bench.stream);
    if (plan.workspaceBytes > maxWorkspace)
      return ranDense(
        base,
        `cuSPARSELt wants ${plan.workspaceBytes} bytes of workspace (most ${maxWorkspace})`,
      );
    dense.bind(x.ptr, weight.ptr, y.ptr, plan.biasBuffer?.ptr, workspace.ptr);
    const r = sparseOrDense(
      base,
      bench.stream,
      () => dense.execute(bench.stream),
      shared,
      plan,
      operands,
      SPARSE_TIMING,
      "cuBLASLt",
    );
    if (r.chosen) plan = undefined;
    return r;
  } catch (e) {
    return ranDense(
      base,
      `cuSPARSELt refused: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}`,
    );
  } finally {
    if (plan) destroySparseLtPlan(plan);
    bench.release();
  }
}

function ranDense(base: Omit<SparseLayerReport, "ran">, reason: string): { report: SparseLayerReport } {
  return { report: { ...base, ran: "dense", reason } };
}

/**
 * Replaces, in `matmuls`, each dense plan that a sparse one beats (the dense one is destroyed); puts in
 * `convs.sparse` each 1×1 convolution whose sparse plan beats its cuDNN plan in `convs.dense` (kept: packages and
 * refits describe it); and says what every sparse-eligible layer ran as. Nothing is touched when `setting` is
 * undefined. Without `convs`, eligible convolutions are reported as dense.
 */
export function chooseSparseMatmuls(
  plan: EnginePlan,
  matmuls: Map<MatmulStep, EngineMatmul>,
  setting: SparseWeightsSetting | undefined,
  maxWorkspace: number,
  log: (message: string) => void,
  convs?: SparseConvPlans,
): SparseSummary | undefined {
  if (!setting) return undefined;
  const { found, checked } = candidates(plan, matmuls);
  const layers: SparseLayerReport[] = [];
  let shared: SharedSparseHandle | undefined;
  try {
    for (const c of found) {
      const name = c.step.layer.name;
      if (!c.runnable) {
        layers.push({ layer: name, shape: c.shape, ran: "dense", reason: c.reason });
        continue;
      }
      const shape = `${"conv" in c ? "1×1 conv " : ""}M=${c.problem.m} N=${c.problem.n} K=${c.problem.k}`;
      if (setting.unavailable) {
        layers.push({ layer: name, shape, ran: "dense", reason: setting.unavailable });
        continue;
      }
      if ("conv" in c) {
        const dense = convs?.dense.get(c.step);
        if (!dense) {
          layers.push({ layer: name, shape, ran: "dense", reason: "no cuDNN plan to time against" });
          continue;
        }
        shared ??= new SharedSparseHandle(SparseLtHandle.create());
        const r = tryConvCandidate(c, dense, shared, maxWorkspace, SPARSE_TIMING);
        layers.push(r.report);
        if (r.chosen) convs?.sparse.set(c.step, r.chosen);
        continue;
      }
      shared ??= new SharedSparseHandle(SparseLtHandle.create());
      const dense = matmuls.get(c.step)!;
      const r = tryCandidate(c, dense, shared, maxWorkspace);
      layers.push(r.report);
      if (r.chosen) {
        dense.destroy();
        matmuls.set(c.step, r.chosen);
      }
    }
  } finally {
    // The handle lives as long as the sparse plans that use it; with none, it goes now.
    if (shared && !layers.some((l) => l.ran === "sparse")) shared.handle.destroy();
  }
  const summary: SparseSummary = {
    mode: setting.mode,
    unavailable: setting.unavailable,
    weightsChecked: checked,
    layers,
  };
  const sparse = layers.filter((l) => l.ran === "sparse").length;
  log(
    `sparse weights: ${sparse} of ${layers.length} 2:4-sparse layers run sparse (${checked} weights checked)`,
  );
  return summary;
}

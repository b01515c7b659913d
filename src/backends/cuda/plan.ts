/**
 * The host-only part of a build, for inspection and tests: folding, per-tensor decisions, the schedule (with
 * library support answered by the caller) and the generated kernel sources. No GPU needed.
 */
import type { DType } from "../../ir/dtype.js";
import { numel, toFloat64Array } from "../../ir/tensor.js";
import type { Network } from "../../network/network.js";
import type { CodegenContext, GeneratedKernel } from "./codegen/element.js";
import { schedule } from "./fuse/schedule.js";
import {
  type ConvStep,
  describeStep,
  type MatmulStep,
  type Step,
  stepReads,
  stepWrites,
} from "./fuse/steps.js";
import { assembleProgram, generateStepKernel, type Program } from "./kernels/generated.js";
import { type FoldStats, foldNetwork } from "./plan/fold.js";
import { lifetimes, type MemoryPlan, planMemory } from "./plan/memory.js";
import { padStemChannels } from "./plan/pad-stem-channels.js";
import { patchifyConvolutions } from "./plan/patchify.js";
import { pointwiseConvolutionsAsMatmuls } from "./plan/pointwise-matmul.js";
import { seScaledWeights } from "./plan/se-scaled-weights.js";
import { type Precision, planTensors, type TensorInfo } from "./plan/tensors.js";

export interface EnginePlan {
  readonly foldStats: FoldStats;
  readonly network: Network;
  readonly infos: ReadonlyMap<string, TensorInfo>;
  readonly steps: readonly Step[];
  readonly kernels: readonly (GeneratedKernel | undefined)[];
  readonly program: Program;
  readonly memory: MemoryPlan;
  /** One line per step. */
  readonly summary: readonly string[];
}

/** A network as the scheduler sees it: folded, with every tensor's plan. */
export type PlannedNetwork = Pick<EnginePlan, "network" | "infos">;

export interface PlanOptions {
  readonly precision: Precision;
  readonly channelsLast?: boolean;
  /** fp16 mode: float32 tensors stay float32 (plan/tensors.ts). Default false. */
  readonly keepFloat32?: boolean;
  /**
   * Whether cuDNN runs this step (the builder makes and keeps the plan here); default yes. `planned` is the
   * network being scheduled (constants folded), for steps whose operands are read off it (int8 weights).
   */
  readonly convSupported?: (
    step: ConvStep,
    info: (t: string) => TensorInfo,
    planned: PlannedNetwork,
  ) => boolean;
  readonly matmulSupported?: (step: MatmulStep, info: (t: string) => TensorInfo) => boolean;
  /** Convolutions read int8 inputs where they can (fuse/int8-conv-rule.ts); default off. */
  readonly int8Convs?: boolean;
  /** Exact GELU stays its own kernel (ScheduleOptions.exactGeluApart); default off. */
  readonly exactGeluApart?: boolean;
}

export function planCudaEngine(network: Network, opts: PlanOptions): EnginePlan {
  const folded = foldNetwork(network);
  const foldStats = folded.stats;
  const channelsLast = opts.channelsLast ?? opts.precision === "fp16";
  const net = pointwiseConvolutionsAsMatmuls(
    seScaledWeights(padStemChannels(patchifyConvolutions(folded.network), channelsLast)),
  );
  const infos = planTensors(net, {
    precision: opts.precision,
    channelsLast,
    keepFloat32: opts.keepFloat32,
  });
  const info = (t: string) => {
    const i = infos.get(t);
    if (!i) throw new Error(`no tensor info for '${t}'`);
    return i;
  };
  const steps = schedule(net, infos, {
    precision: opts.precision,
    keepFloat32: opts.keepFloat32,
    convSupported: (s) => opts.convSupported?.(s, info, { network: net, infos }) ?? true,
    matmulSupported: (s) => opts.matmulSupported?.(s, info) ?? true,
    int8Convs: opts.int8Convs,
    exactGeluApart: opts.exactGeluApart,
  });
  const scalars = new Map<string, number>();
  for (const l of net.layers) {
    if (l.type !== "constant") continue;
    const c = net.constants[l.weight];
    if (numel(c.shape) === 1 && c.dtype !== "int64") scalars.set(l.output, toFloat64Array(c)[0]);
  }
  const ctx: CodegenContext = { info, scalarConstant: (t) => scalars.get(t) };
  const kernels = steps.map((s, i) => generateStepKernel(s, `k${i}_${s.kind}`, ctx));
  const dtypes = new Set<DType>([...infos.values()].map((i) => i.storage));
  const program = assembleProgram(
    kernels.filter((k) => k !== undefined),
    dtypes,
  );
  const memory = planMemory(
    lifetimes(
      steps.map((s) => ({ reads: stepReads(s), writes: stepWrites(s) })),
      infos,
    ),
  );
  return {
    foldStats,
    network: net,
    infos,
    steps,
    kernels,
    program,
    memory,
    summary: steps.map(describeStep),
  };
}

import { TorchcError } from "../errors.js";
import type { Graph } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import type { Network } from "../network/network.js";
import type { Segment } from "../partition/segment.js";
import { reducedPrecisionOf } from "../passes/assign-precision.js";
import type { DeviceAllocator, ExecutionContext } from "../runtime/execution.js";
import { type CompileOptions, normalizePrecisions } from "../runtime/options.js";
import { acceptArtifacts } from "../runtime/package-artifacts.js";
import type { Backend, SegmentRunner } from "../runtime/segment-runner.js";
import { reportProgress } from "../util/progress.js";
import { ArtifactRecorder } from "./cuda/artifacts.js";
import { buildCudaEngine } from "./cuda/builder.js";
import { CudaContext, deviceCount } from "./cuda/device/context.js";
import { useHostCopyThreads } from "./cuda/device/host-copy.js";
import { prewarmCudaLibraries } from "./cuda/device/prewarm.js";
import { cudaDeviceAllocator } from "./cuda/device-allocator.js";
import { type CudaEngine, describeEngine } from "./cuda/engine.js";
import { CudaExecutionContext } from "./cuda/execution-context.js";
import { WeightStore } from "./cuda/shared-weights.js";
import { sparseWeightsFor } from "./cuda/sparse-select.js";

class EngineRunner implements SegmentRunner {
  readonly description: string;
  constructor(
    readonly segment: Segment,
    readonly engine: CudaEngine,
    private readonly network: Network,
    private readonly device: number,
  ) {
    this.description = describeEngine(engine.stats);
  }

  /** Host tensors through the engine alone (synchronous, on its own stream); modules run through contexts. */
  async run(values: ReadonlyMap<string, Tensor>): Promise<Map<string, Tensor>> {
    CudaContext.get(this.device);
    const outs = this.engine.run(this.network.inputs.map((n) => values.get(n)!));
    return new Map(this.network.outputs.map((n, i) => [n, outs[i]] as [string, Tensor]));
  }

  get weightBytes(): number {
    return this.engine.stats.weightBytes;
  }

  dispose(): void {
    CudaContext.get(this.device);
    this.engine.dispose();
  }
}

/** Device `device`'s primary context, made current; an ordinal the driver does not see is refused by name. */
function openDevice(device: number): CudaContext {
  // The libraries load on worker threads while this thread makes the context (device/prewarm.ts).
  prewarmCudaLibraries();
  reportProgress({ phase: "open device", sub: true });
  const count = deviceCount();
  if (device >= count)
    throw new TorchcError(
      `device ${device}: no such GPU (the driver sees ${count}${count > 0 ? `: ordinals 0 to ${count - 1}` : ""})`,
      "options.device",
    );
  return CudaContext.get(device);
}

/** The engine choices a refit of `runner` starts from, or why it cannot be refit. */
function refitChoices(artifacts: ArtifactRecorder, runner: SegmentRunner) {
  const choices = artifacts.choicesOf(runner.segment.index);
  if (!choices)
    throw new TorchcError(`refit: segment ${runner.segment.index} has no CUDA engine`, "refit.unsupported");
  // Sparse plans hold compressed copies of their weights, which a refit of the weight buffer would not reach.
  if ((runner as EngineRunner).engine.stats.sparse?.layers.some((l) => l.ran === "sparse"))
    throw new TorchcError(
      `refit: segment ${runner.segment.index} runs 2:4-sparse layers from compressed copies of their weights; compile without sparseWeights to refit`,
      "refit.unsupported",
    );
  return choices;
}

/**
 * The CUDA backend: engine segments become CudaEngines (cuDNN, cuBLASLt, NVRTC kernels, one CUDA graph);
 * fallback segments run through LibTorch on the same device buffers. Forward passes run in execution
 * contexts (cuda/execution-context.ts): one stream each, values stay on the GPU between segments.
 */
export async function createCudaBackend(
  options: CompileOptions,
): Promise<Backend & DeviceAllocator & { sharedWeightBytes(): number }> {
  useHostCopyThreads();
  const device = options.device ?? 0;
  const ctx = openDevice(device);
  const precision =
    reducedPrecisionOf(normalizePrecisions(options.enabledPrecisions)) === "float16" ? "fp16" : "fp32";
  let torchEnv: unknown;
  const completion = options.completion ?? "poll";
  // Checking a package's target loads NVRTC, cuDNN and cuBLASLt (their versions): a phase of its own.
  reportProgress({ phase: "library versions", sub: true });
  const artifacts = new ArtifactRecorder(options.artifacts, device, acceptArtifacts, {
    tune: options.tune === true,
  });
  // Engines of the same program (a batch range's buckets) keep one device copy of their weights.
  const weightStore = new WeightStore();
  // sparseWeights: true fails here, in one line, when this GPU or machine cannot run 2:4 sparse at all.
  const sparseWeights = sparseWeightsFor(options.sparseWeights, ctx);
  return {
    name: `cuda (${ctx.info.name}, ${precision})`,
    async engine(segment: Segment, network: Network): Promise<SegmentRunner> {
      const engine = await buildCudaEngine(network, {
        precision,
        device,
        tf32: options.tf32 === true,
        keepFloat32: options.fp16Overflow === "keep-fp32", // its float32 islands must not be stored in fp16
        tuneConvs: options.tune === true,
        workspaceBytes: options.workspaceBytes,
        choices: artifacts.forSegment(segment.index),
        weightStore,
        sparseWeights,
      });
      return new EngineRunner(segment, engine, network, device);
    },
    async fallback(segment: Segment): Promise<SegmentRunner> {
      const torch = await import("./torch/index.js");
      torchEnv ??= await torch.createTorchEnv({ deviceIndex: device });
      // The awaits above let a module on another device build meanwhile; the runner uploads its weights now.
      CudaContext.get(device);
      return torch.createTorchFallbackRunner(segment, torchEnv as never);
    },
    createContext(graph: Graph, runners: readonly SegmentRunner[], index: number): ExecutionContext {
      CudaContext.get(device);
      return new CudaExecutionContext(index, graph, runners, index === 0, completion, device);
    },
    saveArtifacts: () => artifacts.save(),
    prepareRefit(runner: SegmentRunner, network: Network): () => void {
      const choices = refitChoices(artifacts, runner);
      CudaContext.get(device);
      const apply = choices.prepareRefit(network, runner.segment.index);
      return () => {
        CudaContext.get(device);
        apply();
      };
    },
    /** Device bytes of distinct engine weight sets (what a module with a batch range holds once). */
    sharedWeightBytes: () => weightStore.bytes,
    weightBytes(runners: readonly SegmentRunner[]): number {
      return runners.reduce((a, r) => a + ((r as { weightBytes?: number }).weightBytes ?? 0), 0);
    },
    ...cudaDeviceAllocator(device, completion),
  };
}

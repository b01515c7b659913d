/**
 * A built CUDA engine. What a build makes once (library plans, compiled kernels, uploaded weights) is the
 * engine's program; what one forward pass needs for itself (a stream, an activation arena, a library
 * workspace, input and output buffers, kernel arguments, a captured CUDA graph) is an instance. A
 * `CudaEngine` is one instance over a program; `fork()` makes another over the same program, so several
 * forward passes can be in flight at once (TensorRT's IExecutionContext). See ./README.md for the ordering
 * rules.
 */

import { InputError } from "../../errors.js";
import { DTYPE_BYTES } from "../../ir/dtype.js";
import type { TensorType } from "../../ir/graph.js";
import { numel, type Tensor, tensorBytes, tensorFromBytes } from "../../ir/tensor.js";
import { timeOnStream } from "./device/event.js";
import { type CudaGraph, captureGraph } from "./device/graph.js";
import type { KernelArgs } from "./device/launch.js";
import { copyDevice, type DeviceBuffer, downloadAsync, PinnedBuffer, uploadAsync } from "./device/memory.js";
import type { Stream } from "./device/stream.js";
import type { DeviceMemory } from "./device/validate.js";
import type { IgemmConvSummary } from "./igemm-conv-select.js";
import type { StepLabel } from "./profile/labels.js";
import type { SmallGemmSummary } from "./small-gemm-select.js";
import { formatSparseSummary, type SparseSummary } from "./sparse-weights.js";

export interface EngineIO {
  readonly name: string;
  readonly type: TensorType;
  readonly bytes: number;
}

export interface BuildStats {
  readonly layers: number;
  readonly layersAfterFolding: number;
  /** Steps in the schedule and kernels or library calls per run (graph nodes when captured). */
  readonly steps: number;
  readonly kernels: number;
  readonly graphNodes: number;
  readonly stepKinds: Readonly<Record<string, number>>;
  /** Element groups that fused more than one layer, and the layers inside them. */
  readonly fusedGroups: number;
  readonly fusedLayers: number;
  readonly convEpilogueLayers: number;
  readonly generatedKernels: number;
  readonly uniqueGeneratedKernels: number;
  readonly activationBytes: number;
  readonly activationBytesWithoutReuse: number;
  readonly weightBytes: number;
  readonly workspaceBytes: number;
  readonly folded: Readonly<{ constantsFolded: number; affinesFolded: number; layersDropped: number }>;
  readonly ms: Readonly<{
    plan: number;
    cudnn: number;
    cublas: number;
    nvrtc: number;
    upload: number;
    capture: number;
    total: number;
  }>;
  readonly nvrtcCache: string;
  /**
   * Why cuDNN or cuBLASLt refused a step the scheduler offered, with the library's status and message
   * ("conv 'c1' (2 epilogue ops): cuDNN refused: CUDNN_STATUS_NOT_SUPPORTED_3000 (…)"). The step then ran
   * with a shorter fused epilogue or as a generated kernel.
   */
  readonly libraryRefusals: readonly string[];
  /** With `sparseWeights`: every 2:4-sparse layer, whether it ran sparse, and why not (./sparse-weights.ts). */
  readonly sparse?: SparseSummary;
  /**
   * cuDNN conv plans restored (plan cache or package) instead of chosen by cuDNN's heuristics: from cuDNN's own
   * serialized plan, or rebuilt from an engine index and knobs (a warm ResNet-50 built that way spent 1.58× the
   * cold one's time in cuDNN, H200, session 10).
   */
  readonly restoredConvs?: { readonly fromJson: number; readonly fromEngine: number };
  /** Where the engine computes an approximation of the graph's function (fuse/steps.ts approximations). */
  readonly approximations?: readonly string[];
  /** Timed cuBLASLt choice (default): distinct matmul problems timed, how many changed algorithm, µs saved per call of each. */
  readonly timedMatmuls?: { readonly problems: number; readonly changed: number; readonly savedUs: number };
  /** TORCHC_SMALL_GEMM: each small-M matmul, whether the generated GEMM replaced cuBLASLt, and the timings. */
  readonly smallGemms?: SmallGemmSummary;
  /** TORCHC_INT8_IGEMM: each int8 convolution, whether the generated implicit GEMM replaced cuDNN, and the timings. */
  readonly igemmConvs?: IgemmConvSummary;
}

/** One line for reports: what the engine became and why any library call was refused; then the sparse lines. */
export function describeEngine(s: BuildStats): string {
  const int8 = s.stepKinds?.["conv(int8)"];
  const r = s.restoredConvs;
  const restored = r
    ? `, ${r.fromJson + r.fromEngine} conv plans restored (${r.fromJson} serialized, ${r.fromEngine} from engine and knobs)`
    : "";
  const t = s.timedMatmuls;
  const timed = t
    ? `, ${t.problems} matmul problems timed (${t.changed} changed algorithm, −${t.savedUs} µs)`
    : "";
  const g = s.smallGemms;
  const small = g
    ? `, ${g.layers.filter((l) => l.ran === "generated").length}/${g.layers.length} small matmuls on the generated GEMM`
    : "";
  const ig = s.igemmConvs;
  const igemm = ig
    ? `, ${ig.layers.filter((l) => l.ran === "generated").length}/${ig.layers.length} int8 convolutions on the generated implicit GEMM (${ig.copies} writing the next layer's int8 input)`
    : "";
  const base = `cuda engine (${s.layers} layers → ${s.kernels} kernels and library calls, ${s.fusedGroups} fused groups${int8 ? `, ${int8} int8 convolutions` : ""}${restored}${timed}${small}${igemm})`;
  const sparse =
    (s.sparse ? `\n${formatSparseSummary(s.sparse).join("\n")}` : "") + (s.ms ? `\n${buildPhases(s)}` : "");
  const approx = s.approximations?.length ? `; approximated: ${s.approximations.join("; ")}` : "";
  const n = s.libraryRefusals.length;
  if (n === 0) return base + approx + sparse;
  return `${base}${approx}; ${n} library refusal${n === 1 ? "" : "s"}, first: ${s.libraryRefusals[0]}${sparse}`;
}

/**
 * Where the build's time went, for the compile report (issue 13: a cold compile is mostly library planning and
 * NVRTC; this says which). The schedule's own time excludes the library plans it asked for.
 */
export function buildPhases(s: Pick<BuildStats, "ms" | "nvrtcCache">): string {
  const ms = (v: number) => Math.round(v);
  const m = s.ms;
  return `engine build ${ms(m.total)} ms: schedule ${ms(m.plan)}, cuDNN plans ${ms(m.cudnn)}, cuBLASLt plans ${ms(m.cublas)}, NVRTC ${ms(m.nvrtc)} (kernel cache: ${s.nvrtcCache}), weights ${ms(m.upload)}`;
}

/** The device memory one instance owns. */
export interface InstanceResources {
  readonly stream: Stream;
  /** Whether the instance made the stream (and destroys it). */
  readonly ownsStream: boolean;
  readonly arena: DeviceBuffer;
  readonly workspace: DeviceBuffer;
  readonly inputBuffers: readonly DeviceBuffer[];
  readonly outputBuffers: readonly DeviceBuffer[];
}

/** Where one instance's launches read and write. */
export interface InstanceBindings {
  readonly resources: InstanceResources;
  readonly inputs: readonly DeviceMemory[];
  readonly outputs: readonly DeviceMemory[];
  /** Kernel argument blocks the launches use; the instance frees them. */
  readonly args: KernelArgs[];
}

/** What a build made once and every instance shares. */
export interface EngineProgram {
  readonly inputs: readonly EngineIO[];
  readonly outputs: readonly EngineIO[];
  readonly stats: Omit<BuildStats, "graphNodes">;
  readonly useGraph: boolean;
  /** One line per step, in launch order. */
  readonly steps: readonly string[];
  /** Per step: what kind of kernel or library call it is and the IR nodes it covers (for ./profile). */
  readonly labels?: readonly StepLabel[];
  /** A new instance's memory, on `stream` when given (else a stream of its own). */
  allocate(stream?: Stream): InstanceResources;
  /** The launch list for one instance's bindings (each launch queues work on the instance's stream). */
  prepare(bindings: InstanceBindings): (() => void)[];
  /** Frees what the build made (plans, handles, weights); every instance must be released first. */
  release(): void;
}

export interface StepProfile {
  readonly step: string;
  /** Median GPU time of the step launched alone (ms). */
  readonly ms: number;
}

/** One step's launch, for timing steps one by one. */
export interface StepLaunch {
  readonly description: string;
  readonly label?: StepLabel;
  readonly launch: () => void;
}

/** Device bytes of one instance: what each extra execution context costs. */
export interface InstanceMemory {
  readonly activations: number;
  readonly workspace: number;
  readonly io: number;
}

export class CudaEngine {
  private graph: CudaGraph | undefined;
  private launches: (() => void)[] | undefined;
  private readonly args: KernelArgs[] = [];
  private readonly boundInputs: DeviceMemory[];
  private readonly boundOutputs: DeviceMemory[];
  private readonly forks = new Set<CudaEngine>();
  private staging: { inputs: PinnedBuffer[]; outputs: PinnedBuffer[] } | undefined;
  private disposed = false;
  private graphNodes = 0;
  /** Milliseconds the last warm() took (launch-list preparation, one eager pass, capture). */
  private captureMs = 0;

  constructor(
    private readonly program: EngineProgram,
    private res: InstanceResources,
    private readonly parent?: CudaEngine,
  ) {
    this.boundInputs = [...res.inputBuffers];
    this.boundOutputs = [...res.outputBuffers];
  }

  get inputs(): readonly EngineIO[] {
    return this.program.inputs;
  }

  get outputs(): readonly EngineIO[] {
    return this.program.outputs;
  }

  get stream(): Stream {
    return this.res.stream;
  }

  /** One line per step, in launch order (plan.ts's summary: which kernel or library call each step got). */
  get steps(): readonly string[] {
    return this.program.steps;
  }

  /** The build's statistics, with this instance's graph: its node count and the ms warm() took. */
  get stats(): BuildStats {
    const ms = { ...this.program.stats.ms, capture: Math.round(this.captureMs * 10) / 10 };
    return { ...this.program.stats, ms, graphNodes: this.graphNodes };
  }

  /** Device bytes this instance owns (weights and library plans are the program's, shared). */
  get instanceMemory(): InstanceMemory {
    const io = [...this.res.inputBuffers, ...this.res.outputBuffers].reduce((a, b) => a + b.bytes, 0);
    return { activations: this.res.arena.bytes, workspace: this.res.workspace.bytes, io };
  }

  /** The device memory each input is read from (the engine's own buffers unless rebound). */
  get inputBuffers(): readonly DeviceMemory[] {
    return this.boundInputs;
  }

  get outputBuffers(): readonly DeviceMemory[] {
    return this.boundOutputs;
  }

  /**
   * Another instance over the same program: its own arena, workspace, I/O buffers and graph, launching on
   * `stream` (a new stream when omitted). Disposed with this engine at the latest.
   */
  fork(stream?: Stream): CudaEngine {
    this.assertLive();
    const root = this.parent ?? this;
    const child = new CudaEngine(this.program, this.program.allocate(stream), root);
    root.forks.add(child);
    return child;
  }

  /**
   * Launches on `stream` from now on, instead of the instance's own (destroyed if it made it). An execution
   * context gives all its segments one stream, so they are ordered with no host wait between them.
   */
  adoptStream(stream: Stream): void {
    this.assertLive();
    if (stream === this.res.stream) return;
    this.res.stream.synchronize();
    this.invalidate();
    if (this.res.ownsStream) this.res.stream.destroy();
    this.res = { ...this.res, stream, ownsStream: false };
  }

  /** Reads input `i` from `mem` from now on (no copy); the graph is re-captured at the next launch. */
  bindInput(i: number, mem: DeviceMemory): void {
    this.checkIO("input", i, mem, this.program.inputs);
    this.boundInputs[i] = mem;
    this.invalidate();
  }

  /** Writes output `i` into `mem` from now on (no copy). */
  bindOutput(i: number, mem: DeviceMemory): void {
    this.checkIO("output", i, mem, this.program.outputs);
    this.boundOutputs[i] = mem;
    this.invalidate();
  }

  /**
   * Builds the launch list and captures the graph now (not at the first launch). Synchronizes this
   * instance's stream; call it before runs are in flight.
   */
  warm(): void {
    this.assertLive();
    if (this.launches) return;
    const t0 = performance.now();
    this.launches = this.program.prepare({
      resources: this.res,
      inputs: this.boundInputs,
      outputs: this.boundOutputs,
      args: this.args,
    });
    const stream = this.res.stream;
    // Run once eagerly so lazy library initialisation happens outside capture.
    for (const l of this.launches) l();
    stream.synchronize();
    if (this.program.useGraph) {
      const launches = this.launches;
      // Thread-local capture: koffi worker threads waiting on other streams' events stay legal meanwhile.
      this.graph = captureGraph(
        stream,
        () => {
          for (const l of launches) l();
        },
        { mode: "threadLocal" },
      );
      this.graphNodes = this.graph.nodeCount;
      this.graph.upload(stream);
      stream.synchronize();
    }
    this.captureMs = performance.now() - t0;
  }

  /** Queues one forward pass on the instance's stream; inputs must be in (or queued into) the input buffers. */
  launch(): void {
    this.assertLive();
    if (!this.launches) this.warm();
    if (this.graph) this.graph.launch(this.res.stream);
    else for (const l of this.launches!) l();
  }

  synchronize(): void {
    this.res.stream.synchronize();
  }

  /**
   * Host tensors in, host tensors out, synchronously: the inputs go through this instance's pinned staging
   * and every copy is queued on its stream, so a copy never races the forward pass.
   */
  run(inputs: readonly Tensor[]): Tensor[];
  /** Device memory in (copied into the input buffers on the stream), the output buffers out (not synchronized). */
  run(inputs: readonly DeviceMemory[]): readonly DeviceMemory[];
  run(inputs: readonly (Tensor | DeviceMemory)[]): Tensor[] | readonly DeviceMemory[] {
    this.assertLive();
    if (inputs.length !== this.program.inputs.length) {
      throw new InputError(
        `the engine takes ${this.program.inputs.length} inputs, got ${inputs.length}`,
        "input.count",
      );
    }
    if (inputs.every((t) => t !== null && typeof t === "object" && "data" in t))
      return this.runHost(inputs as Tensor[]);
    const stream = this.res.stream;
    (inputs as DeviceMemory[]).forEach((mem, i) => {
      const io = this.program.inputs[i];
      if (mem === this.boundInputs[i]) return;
      if (mem.bytes < io.bytes)
        throw new InputError(`input '${io.name}' needs ${io.bytes} bytes, got ${mem.bytes}`, "input.shape");
      copyDevice(this.boundInputs[i], mem, { bytes: io.bytes }, stream);
    });
    this.launch();
    return this.boundOutputs;
  }

  private runHost(inputs: readonly Tensor[]): Tensor[] {
    const stream = this.res.stream;
    inputs.forEach((t, i) => {
      const io = this.program.inputs[i];
      if (t.dtype !== io.type.dtype || t.shape.join() !== io.type.shape.join()) {
        throw new InputError(
          `input '${io.name}' is ${t.dtype}[${t.shape}], expected ${io.type.dtype}[${io.type.shape}]`,
          "input.shape",
        );
      }
    });
    const staging = this.hostStaging();
    // The previous run's copies out of staging must be done before staging is rewritten.
    stream.synchronize();
    inputs.forEach((t, i) => {
      const bytes = tensorBytes(t);
      if (bytes.byteLength === 0) return;
      new Uint8Array(staging.inputs[i].arrayBuffer, 0, bytes.byteLength).set(bytes);
      uploadAsync(this.boundInputs[i], staging.inputs[i], stream, { bytes: bytes.byteLength });
    });
    this.launch();
    this.program.outputs.forEach((io, i) => {
      if (io.bytes > 0) downloadAsync(this.boundOutputs[i], staging.outputs[i], stream, { bytes: io.bytes });
    });
    stream.synchronize();
    return this.program.outputs.map((io, i) => {
      const bytes = new Uint8Array(io.bytes);
      if (io.bytes > 0) bytes.set(new Uint8Array(staging.outputs[i].arrayBuffer, 0, io.bytes));
      return tensorFromBytes(io.type.dtype, io.type.shape, bytes);
    });
  }

  private hostStaging(): { inputs: PinnedBuffer[]; outputs: PinnedBuffer[] } {
    this.staging ??= {
      inputs: this.program.inputs.map((io) => PinnedBuffer.alloc(Math.max(1, io.bytes))),
      outputs: this.program.outputs.map((io) => PinnedBuffer.alloc(Math.max(1, io.bytes))),
    };
    return this.staging;
  }

  /** Mean GPU time of one forward pass (ms), measured with events around `reps` launches. */
  time(opts: { warmup?: number; reps?: number } = {}): number {
    this.launch();
    this.synchronize();
    return timeOnStream(this.res.stream, () => this.launch(), {
      warmup: opts.warmup ?? 10,
      reps: opts.reps ?? 100,
    });
  }

  /**
   * GPU time of each step launched on its own (eager, between events; medians of `reps`). The sum exceeds a
   * graph replay by the per-launch gaps the graph removes.
   */
  profile(reps = 20): StepProfile[] {
    this.launch();
    this.synchronize();
    const launches = this.launches!;
    const stream = this.res.stream;
    return launches.map((l, i) => {
      const times: number[] = [];
      for (let r = 0; r < 3; r++) times.push(timeOnStream(stream, l, { warmup: 2, reps }));
      times.sort((a, b) => a - b);
      return { step: this.program.steps[i], ms: times[1] };
    });
  }

  /**
   * Each step's launch (eager, on this instance's stream) with its description and label, for a per-step profile
   * that times them one by one (./profile/measure.ts). Builds the launch list if needed.
   */
  stepLaunches(): StepLaunch[] {
    this.assertLive();
    if (!this.launches) this.warm();
    return this.launches!.map((launch, i) => ({
      description: this.program.steps[i],
      label: this.program.labels?.[i],
      launch,
    }));
  }

  /** Frees this instance; the first instance (the one the build returned) also frees its forks and the program. */
  dispose(): void {
    if (this.disposed) return;
    for (const f of this.forks) f.dispose();
    this.forks.clear();
    this.disposed = true;
    this.parent?.forks.delete(this);
    try {
      if (this.res.stream.alive) this.res.stream.synchronize();
    } finally {
      this.graph?.destroy();
      for (const a of this.args.splice(0)) a.free();
      for (const p of [...(this.staging?.inputs ?? []), ...(this.staging?.outputs ?? [])]) p.free();
      for (const b of [
        this.res.arena,
        this.res.workspace,
        ...this.res.inputBuffers,
        ...this.res.outputBuffers,
      ])
        b.free();
      if (this.res.ownsStream) this.res.stream.destroy();
      if (!this.parent) this.program.release();
    }
  }

  private invalidate(): void {
    this.graph?.destroy();
    this.graph = undefined;
    this.launches = undefined;
    for (const a of this.args.splice(0)) a.free();
  }

  private checkIO(kind: string, i: number, mem: DeviceMemory, ios: readonly EngineIO[]): void {
    this.assertLive();
    const io = ios[i];
    if (!io) throw new InputError(`the engine has no ${kind} ${i}`, "input.count");
    if (!mem.alive || mem.bytes < io.bytes)
      throw new InputError(`${kind} '${io.name}' needs ${io.bytes} live bytes`, "input.shape");
    if (mem.ptr % 256n !== 0n)
      throw new InputError(`${kind} '${io.name}' must be 256-byte aligned`, "input.align");
  }

  private assertLive(): void {
    if (this.disposed) throw new Error("the CUDA engine has been disposed");
  }
}

export function ioBytes(t: TensorType): number {
  return numel(t.shape) * DTYPE_BYTES[t.dtype];
}

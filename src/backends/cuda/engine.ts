/**
 * A built CUDA engine: fixed device buffers for inputs and outputs, one activation arena, uploaded weights, and
 * the forward pass captured as one CUDA graph that each run replays. Inputs can be host tensors (copied in,
 * results copied out) or device memory (copied device-to-device into the input buffers on the engine's
 * stream); `bindInput`/`bindOutput` make the engine read and write caller-owned memory directly (zero-copy
 * hand-off with other segments; the graph is re-captured on the next launch).
 */

import { InputError } from "../../errors.js";
import { DTYPE_BYTES } from "../../ir/dtype.js";
import type { TensorType } from "../../ir/graph.js";
import { numel, type Tensor, tensorBytes, tensorFromBytes } from "../../ir/tensor.js";
import { timeOnStream } from "./device/event.js";
import { type CudaGraph, captureGraph } from "./device/graph.js";
import { copyDevice, type DeviceBuffer, download, upload } from "./device/memory.js";
import type { Stream } from "./device/stream.js";
import type { DeviceMemory } from "./device/validate.js";

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
}

export interface EngineParts {
  readonly inputs: readonly EngineIO[];
  readonly outputs: readonly EngineIO[];
  readonly inputBuffers: DeviceBuffer[];
  readonly outputBuffers: DeviceBuffer[];
  readonly stream: Stream;
  /** Rebuilds the launch list for the current bindings (pointers resolved). */
  readonly prepare: (inputs: readonly DeviceMemory[], outputs: readonly DeviceMemory[]) => (() => void)[];
  readonly release: () => void;
  readonly stats: Omit<BuildStats, "graphNodes">;
  readonly useGraph: boolean;
  /** One line per step, in launch order. */
  readonly steps: readonly string[];
}

export interface StepProfile {
  readonly step: string;
  /** Median GPU time of the step launched alone (ms). */
  readonly ms: number;
}

export class CudaEngine {
  private graph: CudaGraph | undefined;
  private launches: (() => void)[] | undefined;
  private readonly boundInputs: DeviceMemory[];
  private readonly boundOutputs: DeviceMemory[];
  private disposed = false;
  private graphNodes = 0;

  constructor(private readonly parts: EngineParts) {
    this.boundInputs = [...parts.inputBuffers];
    this.boundOutputs = [...parts.outputBuffers];
  }

  get inputs(): readonly EngineIO[] {
    return this.parts.inputs;
  }

  get outputs(): readonly EngineIO[] {
    return this.parts.outputs;
  }

  get stream(): Stream {
    return this.parts.stream;
  }

  get stats(): BuildStats {
    return { ...this.parts.stats, graphNodes: this.graphNodes };
  }

  /** The device memory each input is read from (the engine's own buffers unless rebound). */
  get inputBuffers(): readonly DeviceMemory[] {
    return this.boundInputs;
  }

  get outputBuffers(): readonly DeviceMemory[] {
    return this.boundOutputs;
  }

  /** Reads input `i` from `mem` from now on (no copy); the graph is re-captured at the next launch. */
  bindInput(i: number, mem: DeviceMemory): void {
    this.checkIO("input", i, mem, this.parts.inputs);
    this.boundInputs[i] = mem;
    this.invalidate();
  }

  /** Writes output `i` into `mem` from now on (no copy). */
  bindOutput(i: number, mem: DeviceMemory): void {
    this.checkIO("output", i, mem, this.parts.outputs);
    this.boundOutputs[i] = mem;
    this.invalidate();
  }

  /** Queues one forward pass on the engine's stream (inputs must already be in the input buffers). */
  launch(): void {
    this.assertLive();
    if (!this.launches) {
      this.launches = this.parts.prepare(this.boundInputs, this.boundOutputs);
      // Run once eagerly so lazy library initialisation happens outside capture.
      for (const l of this.launches) l();
      this.parts.stream.synchronize();
      if (this.parts.useGraph) {
        const launches = this.launches;
        this.graph = captureGraph(this.parts.stream, () => {
          for (const l of launches) l();
        });
        this.graphNodes = this.graph.nodeCount;
        this.graph.upload(this.parts.stream);
      }
    }
    if (this.graph) this.graph.launch(this.parts.stream);
    else for (const l of this.launches) l();
  }

  synchronize(): void {
    this.parts.stream.synchronize();
  }

  /** Host tensors in, host tensors out (synchronous). */
  run(inputs: readonly Tensor[]): Tensor[];
  /** Device memory in (copied into the input buffers on the stream), the output buffers out (not synchronized). */
  run(inputs: readonly DeviceMemory[]): readonly DeviceMemory[];
  run(inputs: readonly (Tensor | DeviceMemory)[]): Tensor[] | readonly DeviceMemory[] {
    this.assertLive();
    if (inputs.length !== this.parts.inputs.length) {
      throw new InputError(
        `the engine takes ${this.parts.inputs.length} inputs, got ${inputs.length}`,
        "input.count",
      );
    }
    if (inputs.every((t) => t !== null && typeof t === "object" && "data" in t))
      return this.runHost(inputs as Tensor[]);
    const stream = this.parts.stream;
    (inputs as DeviceMemory[]).forEach((mem, i) => {
      const io = this.parts.inputs[i];
      if (mem === this.boundInputs[i]) return;
      if (mem.bytes < io.bytes)
        throw new InputError(`input '${io.name}' needs ${io.bytes} bytes, got ${mem.bytes}`, "input.shape");
      copyDevice(this.boundInputs[i], mem, { bytes: io.bytes }, stream);
    });
    this.launch();
    return this.boundOutputs;
  }

  private runHost(inputs: readonly Tensor[]): Tensor[] {
    const stream = this.parts.stream;
    stream.synchronize();
    inputs.forEach((t, i) => {
      const io = this.parts.inputs[i];
      if (t.dtype !== io.type.dtype || t.shape.join() !== io.type.shape.join()) {
        throw new InputError(
          `input '${io.name}' is ${t.dtype}[${t.shape}], expected ${io.type.dtype}[${io.type.shape}]`,
          "input.shape",
        );
      }
      if (io.bytes > 0) upload(this.boundInputs[i], tensorBytes(t));
    });
    this.launch();
    stream.synchronize();
    return this.parts.outputs.map((io, i) => {
      const bytes = new Uint8Array(io.bytes);
      if (io.bytes > 0) download(this.boundOutputs[i], bytes);
      return tensorFromBytes(io.type.dtype, io.type.shape, bytes);
    });
  }

  /** Median-free mean GPU time of one forward pass (ms), measured with events around `reps` launches. */
  time(opts: { warmup?: number; reps?: number } = {}): number {
    this.launch();
    this.synchronize();
    return timeOnStream(this.parts.stream, () => this.launch(), {
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
    const stream = this.parts.stream;
    return launches.map((l, i) => {
      const times: number[] = [];
      for (let r = 0; r < 3; r++) times.push(timeOnStream(stream, l, { warmup: 2, reps }));
      times.sort((a, b) => a - b);
      return { step: this.parts.steps[i], ms: times[1] };
    });
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    try {
      this.parts.stream.synchronize();
    } finally {
      this.graph?.destroy();
      this.parts.release();
    }
  }

  private invalidate(): void {
    this.graph?.destroy();
    this.graph = undefined;
    this.launches = undefined;
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

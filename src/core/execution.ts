/**
 * The contract between CompiledModule and a backend that runs whole forward passes itself: execution
 * contexts. A context owns everything one forward pass writes; the module keeps a pool of them
 * (runtime/context-pool.ts) so overlapping run() calls never share buffers.
 */
import type { DType } from "../ir/dtype.js";
import type { Shape, Tensor } from "../ir/tensor.js";
import type { DeviceTensor } from "./device-tensor.js";
import type { ProfileReport } from "./profile.js";

/** Where run() puts the outputs: "host" (default) new host tensors; "device" new DeviceTensors; or these tensors. */
export type OutputRequest = "host" | "device" | readonly (Tensor | DeviceTensor)[];

export type RunPhase = "copying" | "inputs" | "launch" | "complete" | "outputs";

export interface RunOptions {
  readonly outputs?: OutputRequest;
  /** Overrides the module's `completion` option for this run (for measuring the strategies). */
  readonly completion?: "worker" | "poll" | "hostfn";
  /**
   * Called with each phase of the run as it ends: "copying" (every host copy of the inputs handed to the copy
   * threads; a later call's copies queue behind them), "inputs" (the inputs landed in staging and their
   * transfers queued), "launch", "complete", "outputs". For diagnostics, and for pipelined batches
   * (runtime/dynamic-pipeline.ts), which start the next piece's copies at "copying". A pipelined batch reports
   * every piece's phases, with the piece's index.
   */
  readonly onPhase?: (phase: RunPhase, at: number, piece?: number) => void;
}

/** Bytes one execution context owns. */
export interface ContextMemory {
  /** Activation arenas of its engine instances. */
  readonly activations: number;
  /** cuDNN/cuBLASLt workspaces of its engine instances. */
  readonly workspaces: number;
  /** Device buffers for inputs, outputs and values handed between segments. */
  readonly io: number;
  /** Page-locked host staging for inputs and outputs. */
  readonly pinnedHost: number;
}

/** compiled.memory(): what the module holds, in bytes. */
export interface ModuleMemory {
  /** Device weights and constants (engines and LibTorch fallback), shared by all contexts. */
  readonly weights: number;
  readonly activations: number;
  readonly workspaces: number;
  readonly io: number;
  readonly pinnedHost: number;
  /** Device bytes in all. */
  readonly deviceTotal: number;
  readonly contexts: number;
  /** What one more execution context costs (device bytes, pinned bytes). */
  readonly perContext: ContextMemory;
}

export interface ExecutionContext {
  run(inputs: readonly (Tensor | DeviceTensor)[], opts?: RunOptions): Promise<(Tensor | DeviceTensor)[]>;
  readonly memory: ContextMemory;
  /** GPU ms of each of `reps` forward passes, inputs in place. */
  time?(reps: number): number[];
  /** Each step of a forward pass timed on its own (`reps` times, medians), inputs in place. */
  profile?(reps: number): ProfileReport;
  dispose(): void;
}

/** What a backend with execution contexts provides besides the contexts. */
export interface DeviceAllocator {
  /** A DeviceTensor of this type on the module's device. */
  deviceTensor(dtype: DType, shape: Shape): DeviceTensor;
  /** A host tensor in page-locked memory (copied to and from the GPU without staging). */
  pinnedTensor(dtype: DType, shape: Shape): Tensor;
  /** A copy of a host tensor on the device. */
  toDevice(t: Tensor): Promise<DeviceTensor>;
  /** A copy of a device tensor on the host. */
  toHost(t: DeviceTensor): Promise<Tensor>;
  /**
   * Writes `src` into host tensor `dst` at `byteOffset`, off the JS thread when `dst` is page-locked (a C memcpy on
   * a worker thread). `src` must not change until the promise settles.
   */
  copyIntoHost?(dst: Tensor, byteOffset: number, src: Uint8Array): Promise<void>;
  /**
   * Page-locks the whole pages inside `memory` in place (memory other threads write into, e.g. a server's request
   * bodies): host tensors viewing that range are then copied to the GPU with no staging copy. `release` undoes it.
   */
  registerHost?(memory: SharedArrayBuffer | ArrayBuffer): HostRegistration;
  /** Whether every view lies in page-locked memory (pinned tensors, registered ranges): gatherToDevice takes them. */
  gatherable?(parts: readonly ArrayBufferView[]): boolean;
  /**
   * A DeviceTensor of `dtype[shape]` holding `parts` back to back, zeros after (a batch from its requests' rows,
   * each copied by DMA from where it lies); `into` is reused when given. Resolves once the copies have landed.
   */
  gatherToDevice?(
    dtype: DType,
    shape: Shape,
    parts: readonly ArrayBufferView[],
    into?: DeviceTensor,
  ): Promise<DeviceTensor>;
}

/** Host memory page-locked in place: `bytes` from `offset` of the buffer (whole pages). */
export interface HostRegistration {
  readonly offset: number;
  readonly bytes: number;
  release(): void;
}

/**
 * One execution context of a compiled module on the CUDA backend: one stream, and everything one forward
 * pass writes (engine instances with their arenas and captured graphs, fallback output buffers, pinned host
 * staging). All of a run's work (input copies, engine graphs, LibTorch calls, output copies) is queued on the
 * context's stream in program order, so each step waits for the one before it on the GPU, not on the host.
 * The host waits once, at the end, without blocking the event loop (device/completion.ts). The ordering
 * rules are written down in ./README.md.
 */

import type { ProfiledKind, ProfileReport } from "../../core/profile.js";
import { InputError, TorchcError } from "../../errors.js";
import { type Graph, nodeInputs, type TensorType } from "../../ir/graph.js";
import { type Tensor, tensorBytes, tensorFromBytes } from "../../ir/tensor.js";
import { type ControlRunner, isControlRunner } from "../../runtime/control-runner.js";
import type { DeviceTensor } from "../../runtime/device-tensor.js";
import { isDeviceTensor } from "../../runtime/device-tensor.js";
import type { ContextMemory, ExecutionContext, OutputRequest, RunOptions } from "../../runtime/execution.js";
import type { SegmentRunner } from "../../runtime/segment-runner.js";
import { ContextControlHost } from "./control-host.js";
import { type CompletionStrategy, whenComplete } from "./device/completion.js";
import { CudaContext } from "./device/context.js";
import { CudaEvent, timeOnStream } from "./device/event.js";
import { copyIntoPinned, pageableDmaMaxBytes } from "./device/host-copy.js";
import {
  copyDevice,
  DeviceBuffer,
  downloadAsync,
  PinnedBuffer,
  uploadAsync,
  uploadPageableAsync,
} from "./device/memory.js";
import { Stream } from "./device/stream.js";
import type { DeviceMemory } from "./device/validate.js";
import type { DeviceFallbackRunner } from "./device-fallback.js";
import { CudaDeviceTensor, checkDeviceTensor, pinnedSource } from "./device-tensor.js";
import { type CudaEngine, ioBytes } from "./engine.js";
import { timeStepsWithEvents } from "./profile/measure.js";
import { buildProfileReport } from "./profile/report.js";

/** What the contexts need from the compiled segments. */
export type EngineSegment = SegmentRunner & { readonly engine: CudaEngine };
export type FallbackSegment = DeviceFallbackRunner;

interface ProfiledLaunch {
  readonly kind: ProfiledKind;
  readonly description: string;
  readonly nodes: readonly string[];
  readonly launch: () => void;
}

export class CudaExecutionContext implements ExecutionContext {
  readonly stream: Stream;
  private readonly done: CudaEvent;
  private readonly values = new Map<string, DeviceMemory>();
  private readonly owned: DeviceBuffer[] = [];
  private readonly instances: CudaEngine[] = [];
  private readonly forks: CudaEngine[] = [];
  /** A step returns a promise only for a control-flow segment, which waits on the host (control-host.ts). */
  private readonly steps: (() => void | Promise<void>)[] = [];
  private controlHost: ContextControlHost | undefined;
  /** Per entry of `steps`: its launches one by one, labelled, for the per-step profile. */
  private readonly profiled: (() => ProfiledLaunch[])[] = [];
  private readonly inputStaging: PinnedBuffer[];
  private readonly outputStaging: PinnedBuffer[];
  /** A device copy of each constant output (a weight the graph returns), uploaded once, at build. */
  private readonly constants = new Map<string, DeviceMemory>();
  private disposed = false;

  /**
   * `primary`: context 0 runs on the engines the build made (moved onto its stream); the others fork
   * instances of them.
   */
  constructor(
    readonly index: number,
    private readonly graph: Graph,
    runners: readonly SegmentRunner[],
    primary: boolean,
    private readonly completion: CompletionStrategy,
    private readonly deviceIndex: number,
  ) {
    this.activate();
    this.stream = Stream.create();
    this.done = CudaEvent.create({ timing: false });
    try {
      for (const r of runners) this.addSegment(r, primary);
      for (const name of graph.inputs)
        if (!this.values.has(name)) this.values.set(name, this.alloc(graph.values[name]));
      this.inputStaging = graph.inputs.map((n) => PinnedBuffer.alloc(Math.max(64, ioBytes(graph.values[n]))));
      this.outputStaging = graph.outputs.map((n) =>
        PinnedBuffer.alloc(Math.max(64, ioBytes(graph.values[n]))),
      );
      this.uploadConstantOutputs();
      // Graphs are captured now, before any run is in flight.
      for (const e of this.instances) e.warm();
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  private alloc(t: TensorType): DeviceBuffer {
    const b = DeviceBuffer.alloc(Math.max(256, ioBytes(t)));
    this.owned.push(b);
    return b;
  }

  /**
   * A weight the graph returns (a loop body's constant condition, every iteration) is copied device-to-device
   * on the stream in each run, from a buffer uploaded here, before any run: no pinned buffer or host wait in
   * a run.
   */
  private uploadConstantOutputs(): void {
    for (const name of this.graph.outputs) {
      const w = this.graph.weights[name]?.tensor as Tensor | undefined;
      if (!w || this.values.has(name) || this.constants.has(name)) continue;
      const b = this.alloc(w);
      uploadWeight(b, w, this.stream);
      this.constants.set(name, b);
    }
  }

  private addSegment(r: SegmentRunner, primary: boolean): void {
    if (isControlRunner(r)) {
      this.addControl(r);
      return;
    }
    const engine = (r as Partial<EngineSegment>).engine;
    if (engine) {
      const inst = primary ? engine : engine.fork(this.stream);
      if (primary) engine.adoptStream(this.stream);
      else this.forks.push(inst);
      this.instances.push(inst);
      inst.inputs.forEach((io, i) => {
        const have = this.values.get(io.name);
        if (have) inst.bindInput(i, have);
        else this.values.set(io.name, inst.inputBuffers[i]);
      });
      for (const [i, io] of inst.outputs.entries()) this.values.set(io.name, inst.outputBuffers[i]);
      this.steps.push(() => inst.launch());
      this.profiled.push(() =>
        inst.stepLaunches().map((l) => ({
          kind: l.label?.kind ?? "element",
          description: l.description,
          nodes: l.label?.nodes ?? [],
          launch: l.launch,
        })),
      );
      return;
    }
    const fb = r as FallbackSegment;
    if (typeof fb.launchDevice !== "function")
      throw new TorchcError(`segment ${r.segment.index} cannot run on device memory`, "runtime.segment");
    const outputs = new Map<string, DeviceMemory>();
    for (const o of fb.plan.outputs) {
      const b = this.alloc(o.type);
      outputs.set(o.name, b);
      this.values.set(o.name, b);
    }
    // The value → buffer map is fixed once every segment is placed: resolved at the first run, reused after.
    let ins: Map<string, DeviceMemory> | undefined;
    this.steps.push(() => {
      ins ??= new Map(
        fb.plan.inputs.map(({ name }) => {
          const v = this.values.get(name);
          if (!v)
            throw new TorchcError(
              `fallback segment ${r.segment.index}: value '${name}' is not on the device`,
              "runtime.segment",
            );
          return [name, v] as const;
        }),
      );
      fb.launchDevice(ins, { outputs, stream: this.stream });
    });
    const step = this.steps[this.steps.length - 1];
    this.profiled.push(() => [
      {
        kind: "libtorch",
        description: `LibTorch segment ${r.segment.index} (${r.segment.nodes.length} nodes)`,
        nodes: r.segment.nodes.map((n) => n.name),
        launch: step,
      },
    ]);
  }

  /**
   * A control-flow segment: buffers for the node's outputs, and a step that reads the predicate back and runs
   * the chosen block's module on the context's buffers. Its blocks' engines keep their own CUDA graphs.
   */
  private addControl(r: ControlRunner): void {
    for (const o of r.node.outputs) this.values.set(o, this.alloc(this.graph.values[o]));
    // Constants the node reads itself (a loop's init or a predicate that fold-constants made a weight) get a
    // buffer uploaded now, before any run: no segment puts them on the device, and blocks read them.
    for (const n of nodeInputs(r.node)) {
      const w = this.graph.weights[n]?.tensor as Tensor | undefined;
      if (!w || this.values.has(n)) continue;
      const b = this.alloc(w);
      uploadWeight(b, w, this.stream);
      this.values.set(n, b);
    }
    this.controlHost ??= new ContextControlHost(
      this.graph,
      this.values,
      this.stream,
      this.deviceIndex,
      this.completion,
    );
    const host = this.controlHost;
    // A loop's two body output sets are allocated now and kept with the context, not per run.
    r.prepareDevice(host);
    this.steps.push(() => r.runDevice(host));
    this.profiled.push(() => {
      throw new TorchcError(
        `profile: segment ${r.segment.index} is control flow (${r.node.op}), whose steps depend on values read at run time; time run() instead`,
        "bench.control-flow",
      );
    });
  }

  /** One forward pass; resolves when its outputs are where `opts.outputs` asked. */
  async run(
    inputs: readonly (Tensor | DeviceTensor)[],
    opts: RunOptions = {},
  ): Promise<(Tensor | DeviceTensor)[]> {
    this.assertLive();
    const request = opts.outputs ?? "host";
    const fresh: CudaDeviceTensor[] = [];
    try {
      const phase = opts.onPhase ?? (() => {});
      let copying = false;
      const queued = () => {
        if (!copying) phase("copying", performance.now());
        copying = true;
      };
      await this.queueInputs(inputs, queued);
      queued();
      phase("inputs", performance.now());
      // A module on another device may have run while the inputs were copied.
      this.activate();
      for (const step of this.steps) {
        const waited = step();
        if (waited) {
          await waited;
          this.activate();
        }
      }
      const result = this.queueOutputs(request, fresh);
      this.done.record(this.stream);
      phase("launch", performance.now());
      await whenComplete(this.stream, this.done, opts.completion ?? this.completion);
      phase("complete", performance.now());
      const outs = result.map((r) => (typeof r === "function" ? r() : r));
      phase("outputs", performance.now());
      return outs;
    } catch (e) {
      // Nothing this run queued may still be writing when the context is handed to the next call. A device
      // fault makes that wait fail too; the run's own error is the one to report.
      try {
        this.activate();
        if (this.stream.alive) this.stream.synchronize();
      } catch {}
      for (const t of fresh) {
        try {
          t.dispose();
        } catch {}
      }
      throw e;
    }
  }

  /** Copies the inputs in; `onQueued` when the last input that goes through staging has its copies queued. */
  private async queueInputs(inputs: readonly (Tensor | DeviceTensor)[], onQueued: () => void): Promise<void> {
    // each host input's page-locked source, looked up once (registered memory is found by address)
    const sources = inputs.map((x) => (x !== undefined && !isDeviceTensor(x) ? pinnedSource(x) : undefined));
    const lastStaged = inputs.findLastIndex((x, i) => x !== undefined && !isDeviceTensor(x) && !sources[i]);
    for (const [i, name] of this.graph.inputs.entries()) {
      this.activate();
      const type = this.graph.values[name];
      const dst = this.values.get(name)!;
      const bytes = ioBytes(type);
      const x = inputs[i];
      if (bytes === 0) continue;
      if (isDeviceTensor(x)) {
        copyDevice(
          dst,
          checkDeviceTensor(x, type.dtype, type.shape, `input '${name}'`),
          { bytes },
          this.stream,
        );
        continue;
      }
      const pinned = sources[i];
      if (pinned) {
        if (x.data.byteLength !== bytes)
          throw new InputError(
            `input '${name}' holds ${x.data.byteLength} bytes, ${bytes} expected`,
            "input.shape",
          );
        uploadAsync(dst, pinned.pinned, this.stream, { srcOffset: pinned.offset, bytes });
        continue;
      }
      const src = tensorBytes(x);
      if (src.byteLength !== bytes)
        throw new InputError(
          `input '${name}' holds ${src.byteLength} bytes, ${bytes} expected`,
          "input.shape",
        );
      if (bytes <= pageableDmaMaxBytes()) {
        uploadPageableAsync(dst, src, this.stream);
        if (i === lastStaged) onQueued();
        continue;
      }
      const staging = this.inputStaging[i];
      // Worker-thread memcpys into staging; each chunk's DMA is queued as soon as it lands.
      await copyIntoPinned(staging, 0, src, {
        ...(i === lastStaged ? { onQueued } : {}),
        onChunk: (off, n) => {
          this.activate();
          uploadAsync(dst, staging, this.stream, { srcOffset: off, dstOffset: off, bytes: n });
        },
      });
    }
  }

  /** Queues the output copies; returns each output, or a function that makes it once the copies are done. */
  private queueOutputs(
    request: OutputRequest,
    fresh: CudaDeviceTensor[],
  ): (Tensor | DeviceTensor | (() => Tensor))[] {
    const given = Array.isArray(request) ? (request as readonly (Tensor | DeviceTensor)[]) : undefined;
    if (given && given.length !== this.graph.outputs.length)
      throw new InputError(
        `${given.length} output tensors given, the model has ${this.graph.outputs.length} outputs`,
        "input.count",
      );
    return this.graph.outputs.map((name, k) => {
      const type = this.graph.values[name];
      const bytes = ioBytes(type);
      const src = this.values.get(name);
      const weight = this.graph.weights[name]?.tensor as Tensor | undefined;
      const constant = this.constants.get(name);
      if (!src && !weight)
        throw new TorchcError(`output '${name}' was not produced on the device`, "runtime.output");
      const target = given?.[k];
      const toDevice = (dst: DeviceMemory) => {
        const from = src ?? constant;
        if (from) copyDevice(dst, from, { bytes }, this.stream);
        else uploadWeight(dst, weight!, this.stream);
      };
      if (target !== undefined && isDeviceTensor(target)) {
        toDevice(checkDeviceTensor(target, type.dtype, type.shape, `output '${name}'`));
        return target;
      }
      if (request === "device") {
        const t = CudaDeviceTensor.alloc(type.dtype, type.shape, this.deviceIndex);
        fresh.push(t);
        toDevice(t);
        return t;
      }
      if (!src) return weight!;
      if (target !== undefined) {
        const pinned = pinnedSource(target);
        if (!pinned || target.dtype !== type.dtype || target.shape.join() !== type.shape.join())
          throw new InputError(
            `output '${name}': pass a DeviceTensor or a pinned ${type.dtype}[${type.shape}] host tensor from allocateHostOutputs()`,
            "input.invalid",
          );
        if (bytes > 0) downloadAsync(src, pinned.pinned, this.stream, { dstOffset: pinned.offset, bytes });
        return target;
      }
      const staging = this.outputStaging[k];
      if (bytes > 0) downloadAsync(src, staging, this.stream, { bytes });
      return () => {
        const out = new Uint8Array(bytes);
        if (bytes > 0) out.set(new Uint8Array(staging.arrayBuffer, 0, bytes));
        return tensorFromBytes(type.dtype, type.shape, out);
      };
    });
  }

  /** GPU time (ms) of each of `reps` forward passes with the inputs already in place (events, after warm-up). */
  time(reps: number): number[] {
    this.assertLive();
    this.activate();
    if (this.controlHost)
      throw new TorchcError(
        "benchmark: the module has control flow, which reads predicates back on the host between steps; time run() instead",
        "bench.control-flow",
      );
    const body = () => {
      for (const s of this.steps) s();
    };
    const out: number[] = [];
    for (let i = 0; i < reps; i++)
      out.push(timeOnStream(this.stream, body, { warmup: i === 0 ? 20 : 0, reps: 1 }));
    return out;
  }

  /**
   * Each step of a forward pass (engine kernels and library calls one by one, fallback segments whole) between
   * its own pair of CUDA events, eagerly (no CUDA graph), `reps` times after warm-up; inputs in place.
   */
  profile(reps: number): ProfileReport {
    this.assertLive();
    this.activate();
    const launches = this.profiled.flatMap((p) => p());
    const ms = timeStepsWithEvents(
      this.stream,
      launches.map((l) => l.launch),
      { reps, warmup: 3 },
    );
    return buildProfileReport(
      launches.map((l, i) => ({ kind: l.kind, description: l.description, nodes: l.nodes, ms: ms[i] })),
      reps,
    );
  }

  get memory(): ContextMemory {
    let activations = 0;
    let workspaces = 0;
    let io = 0;
    for (const e of this.instances) {
      const m = e.instanceMemory;
      activations += m.activations;
      workspaces += m.workspace;
      io += m.io;
    }
    for (const b of this.owned) io += b.bytes;
    io += this.controlHost?.keptBytes ?? 0;
    const pinnedHost = [...this.inputStaging, ...this.outputStaging].reduce((a, p) => a + p.bytes, 0);
    return { activations, workspaces, io, pinnedHost };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.activate();
    if (this.stream.alive) this.stream.synchronize();
    for (const f of this.forks) f.dispose();
    for (const b of this.owned) b.free();
    for (const p of [...(this.inputStaging ?? []), ...(this.outputStaging ?? [])]) p.free();
    this.done.destroy();
    this.controlHost?.dispose();
    // The stream outlives the primary engines that adopted it until the runners are disposed: they only
    // synchronize it while it is alive, so destroying it here is safe in either order.
    this.stream.destroy();
  }

  private assertLive(): void {
    if (this.disposed) throw new TorchcError("the compiled module has been disposed", "runtime.disposed");
  }

  /** Makes this module's device current: before every synchronous stretch of driver calls (see context.ts). */
  private activate(): void {
    CudaContext.get(this.deviceIndex);
  }
}

function uploadWeight(dst: DeviceMemory, t: Tensor, stream: Stream): void {
  // A constant output: rare (a model that returns a buffer); a pinned copy keeps the copy on the stream.
  const bytes = tensorBytes(t);
  if (bytes.byteLength === 0) return;
  const p = PinnedBuffer.alloc(bytes.byteLength);
  new Uint8Array(p.arrayBuffer).set(bytes);
  uploadAsync(dst, p, stream, { bytes: bytes.byteLength });
  stream.synchronize();
  p.free();
}

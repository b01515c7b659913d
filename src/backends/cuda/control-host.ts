/**
 * How an execution context runs a control-flow segment (runtime/control-runner.ts) on its device values. The
 * predicate is read with one small device-to-host copy queued on the context's stream, so it waits for the
 * segment that produced it (every earlier step is queued on that stream); the host then waits for that copy
 * without blocking the event loop. The chosen block's module runs on its own stream, so before it reads the
 * context's buffers everything queued on the context's stream has completed (`settle`), and the runner
 * awaits the block before the context queues the steps after it. A loop body's condition, which the body's run
 * has already completed, is read the same way (the context's readback buffer and event; no stream, pinned
 * buffer or synchronize of its own), and the body's two output sets are kept here for the context's life.
 */
import type { DeviceTensor } from "../../core/device-tensor.js";
import { TorchcError } from "../../errors.js";
import type { Graph, TensorType } from "../../ir/graph.js";
import { type Tensor, tensorFromBytes } from "../../ir/tensor.js";
import type { ControlDeviceHost } from "../../runtime/control-runner.js";
import { type CompletionStrategy, whenComplete } from "./device/completion.js";
import { CudaContext } from "./device/context.js";
import { CudaEvent } from "./device/event.js";
import { copyDevice, downloadAsync, PinnedBuffer } from "./device/memory.js";
import type { Stream } from "./device/stream.js";
import type { DeviceMemory } from "./device/validate.js";
import { CudaDeviceTensor, checkDeviceTensor } from "./device-tensor.js";
import { ioBytes } from "./engine.js";

/** Bytes of the readback buffer: a 0-d value of any dtype. */
const READBACK_BYTES = 64;

export class ContextControlHost implements ControlDeviceHost {
  private readonly event: CudaEvent;
  private readonly readback: PinnedBuffer;
  /** Device tensors kept for a segment (a loop body's output sets), freed with the context. */
  private readonly kept = new Map<object, DeviceTensor[][]>();

  constructor(
    private readonly graph: Graph,
    private readonly values: ReadonlyMap<string, DeviceMemory>,
    private readonly stream: Stream,
    private readonly deviceIndex: number,
    private readonly completion: CompletionStrategy,
  ) {
    this.event = CudaEvent.create({ timing: false });
    this.readback = PinnedBuffer.alloc(READBACK_BYTES);
  }

  private memory(name: string): DeviceMemory {
    const m = this.values.get(name);
    if (!m) throw new TorchcError(`control segment: value '${name}' is not on the device`, "runtime.segment");
    return m;
  }

  /** A view of the context's buffer; "user"-owned, so a dispose() of it frees nothing. */
  tensor = (name: string): DeviceTensor => {
    const t = this.graph.values[name];
    return new CudaDeviceTensor(this.memory(name), t.dtype, t.shape, this.deviceIndex, "user");
  };

  read(name: string): Promise<Tensor> {
    return this.readBack(this.memory(name), this.graph.values[name], `the predicate '${name}'`);
  }

  /**
   * `t` was written by work that has completed (a block's run() resolves once its stream is done), so a copy
   * on the context's stream reads it whole; the next write of `t` is queued only after this resolves.
   */
  readTensor(t: DeviceTensor): Promise<Tensor> {
    CudaContext.get(this.deviceIndex);
    const mem = checkDeviceTensor(t, t.dtype, t.shape, "control segment: a loop body's condition");
    return this.readBack(mem, t, "a loop body's condition");
  }

  /** One small copy into the readback buffer on the context's stream, then its event, awaited. */
  private async readBack(mem: DeviceMemory, type: TensorType, what: string): Promise<Tensor> {
    const bytes = ioBytes(type);
    if (bytes > READBACK_BYTES)
      throw new TorchcError(
        `control segment: ${what} has ${bytes} bytes; a condition is one value`,
        "graph.condition",
      );
    CudaContext.get(this.deviceIndex);
    downloadAsync(mem, this.readback, this.stream, { bytes });
    await this.settle();
    return tensorFromBytes(
      type.dtype,
      type.shape,
      new Uint8Array(this.readback.arrayBuffer, 0, bytes).slice(),
    );
  }

  keep(owner: object, make: () => DeviceTensor[][]): DeviceTensor[][] {
    let sets = this.kept.get(owner);
    if (!sets) {
      CudaContext.get(this.deviceIndex);
      sets = make();
      this.kept.set(owner, sets);
    }
    return sets;
  }

  /** Device bytes of the kept tensors (the context's memory report counts them as I/O). */
  get keptBytes(): number {
    let n = 0;
    for (const sets of this.kept.values()) for (const t of sets.flat()) n += t.bytes;
    return n;
  }

  async settle(): Promise<void> {
    CudaContext.get(this.deviceIndex);
    this.event.record(this.stream);
    await whenComplete(this.stream, this.event, this.completion);
    CudaContext.get(this.deviceIndex);
  }

  copyInto(name: string, src: DeviceTensor): void {
    CudaContext.get(this.deviceIndex);
    const type = this.graph.values[name];
    const from = checkDeviceTensor(src, type.dtype, type.shape, `control segment output '${name}'`);
    const to = this.memory(name);
    const bytes = ioBytes(type);
    if (bytes > 0 && from.ptr !== to.ptr) copyDevice(to, from, { bytes }, this.stream);
  }

  dispose(): void {
    for (const t of [...this.kept.values()].flat(2)) t.dispose();
    this.kept.clear();
    this.event.destroy();
    this.readback.free();
  }
}

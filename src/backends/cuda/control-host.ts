/**
 * How an execution context runs a control-flow segment (runtime/control-runner.ts) on its device values. The
 * predicate is read with one small device-to-host copy queued on the context's stream, so it waits for the
 * segment that produced it (every earlier step is queued on that stream); the host then waits for that copy
 * without blocking the event loop. The chosen block's module runs on its own stream, so before it reads the
 * context's buffers everything queued on the context's stream has completed (`settle`), and the runner
 * awaits the block before the context queues the steps after it.
 */
import type { DeviceTensor } from "../../core/device-tensor.js";
import { TorchcError } from "../../errors.js";
import type { Graph } from "../../ir/graph.js";
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

  async read(name: string): Promise<Tensor> {
    const type = this.graph.values[name];
    const bytes = ioBytes(type);
    if (bytes > READBACK_BYTES)
      throw new TorchcError(
        `control segment: the predicate '${name}' has ${bytes} bytes; a condition is one value`,
        "graph.condition",
      );
    CudaContext.get(this.deviceIndex);
    downloadAsync(this.memory(name), this.readback, this.stream, { bytes });
    await this.settle();
    return tensorFromBytes(
      type.dtype,
      type.shape,
      new Uint8Array(this.readback.arrayBuffer, 0, bytes).slice(),
    );
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
    this.event.destroy();
    this.readback.free();
  }
}

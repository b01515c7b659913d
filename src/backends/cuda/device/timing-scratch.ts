/**
 * Device buffers and a stream for timing candidate library plans against each other before an engine is built
 * (sparse-select.ts, int8-conv-timing.ts, lt-timed-choice.ts): filled with a non-zero pattern, since timing on
 * zeros would flatter some kernels, and all released together, also after a failure.
 */
import { DeviceBuffer } from "./memory.js";
import { Stream } from "./stream.js";
import type { HostArray } from "./validate.js";

export class TimingScratch {
  readonly stream = Stream.create();
  private readonly buffers: DeviceBuffer[] = [];

  /** At least 256 bytes, every byte `fillByte` (queued on the scratch stream). */
  buffer(bytes: number, fillByte: number): DeviceBuffer {
    const b = DeviceBuffer.alloc(Math.max(256, bytes));
    this.buffers.push(b);
    b.fill(fillByte, { stream: this.stream });
    return b;
  }

  upload(values: HostArray): DeviceBuffer {
    const b = DeviceBuffer.from(values);
    this.buffers.push(b);
    return b;
  }

  /** Waits for the stream, then frees every buffer and the stream, each step even when an earlier one failed. */
  release(): void {
    try {
      this.stream.synchronize();
    } finally {
      for (const b of this.buffers.splice(0))
        try {
          b.free();
        } catch {}
      this.stream.destroy();
    }
  }
}

/** CUDA streams. `null` stands for the legacy default stream wherever a stream is optional. */
import { CU_STREAM_CAPTURE_STATUS, CU_STREAM_NON_BLOCKING, CUDA } from "../../../ffi/cuda.js";
import { callAsync } from "../../../ffi/library.js";
import { CudaError, checkCuda } from "../../../ffi/status.js";
import type { OutNum, OutPtr } from "../../../ffi/types.js";
import { CudaContext } from "./context.js";
import type { CudaEvent } from "./event.js";
import { fail } from "./validate.js";

export class Stream {
  private destroyed = false;

  private constructor(private readonly raw: bigint) {}

  /** A new stream in the current context; non-blocking (no implicit sync with the legacy stream) by default. */
  static create(opts: { nonBlocking?: boolean } = {}): Stream {
    CudaContext.current();
    const out: OutPtr = [null];
    checkCuda(
      "cuStreamCreate",
      CUDA.fn.cuStreamCreate(out, opts.nonBlocking === false ? 0 : CU_STREAM_NON_BLOCKING),
    );
    if (out[0] === null) throw new Error("cuStreamCreate returned a NULL stream");
    return new Stream(out[0]);
  }

  /** The CUstream. */
  get handle(): bigint {
    if (this.destroyed) fail("the stream has been destroyed");
    return this.raw;
  }

  get alive(): boolean {
    return !this.destroyed;
  }

  synchronize(): void {
    checkCuda("cuStreamSynchronize", CUDA.fn.cuStreamSynchronize(this.handle));
  }

  /** Waits on a koffi worker thread, leaving the JS thread free (stream sync needs no current context). */
  async synchronizeAsync(): Promise<void> {
    checkCuda("cuStreamSynchronize", await callAsync(CUDA.fn.cuStreamSynchronize, this.handle));
  }

  /** True when all work queued so far has finished. */
  query(): boolean {
    const rc = CUDA.fn.cuStreamQuery(this.handle);
    if (rc === 600) return false;
    checkCuda("cuStreamQuery", rc);
    return true;
  }

  /** Later work on this stream waits for `event`. */
  waitEvent(event: CudaEvent): void {
    checkCuda("cuStreamWaitEvent", CUDA.fn.cuStreamWaitEvent(this.handle, event.handle, 0));
  }

  isCapturing(): boolean {
    const status: OutNum = [0];
    checkCuda("cuStreamIsCapturing", CUDA.fn.cuStreamIsCapturing(this.handle, status));
    if (status[0] === CU_STREAM_CAPTURE_STATUS.invalidated) throw new CudaError("cuStreamIsCapturing", 901);
    return status[0] === CU_STREAM_CAPTURE_STATUS.active;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    checkCuda("cuStreamDestroy_v2", CUDA.fn.cuStreamDestroy_v2(this.raw));
  }
}

/** The CUstream to pass to C: a Stream's handle, or NULL for the legacy default stream. */
export function streamHandle(stream: Stream | null | undefined): bigint | null {
  if (stream === null || stream === undefined) return null;
  if (!(stream instanceof Stream)) fail("stream must be a Stream or null");
  return stream.handle;
}

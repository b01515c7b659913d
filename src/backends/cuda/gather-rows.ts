/**
 * A batch written to the device from its requests' rows where they lie: one host → device DMA per part from
 * page-locked memory (request bodies in registered slots, ./host-registration.ts), zeros after the last part.
 * The batching thread queues a few copies instead of copying 602 KB rows itself.
 */
import type { DType } from "../../ir/dtype.js";
import type { Shape } from "../../ir/tensor.js";
import { type CompletionStrategy, whenComplete } from "./device/completion.js";
import { CudaContext } from "./device/context.js";
import { CudaEvent } from "./device/event.js";
import { fill, uploadAsync } from "./device/memory.js";
import { Stream } from "./device/stream.js";
import { fail } from "./device/validate.js";
import { CudaDeviceTensor, checkDeviceTensor, pinnedView } from "./device-tensor.js";
import { ioBytes } from "./engine.js";

/** One copy stream per device: gathers queue behind each other there, and overlap the contexts' runs. */
const streams = new Map<number, Stream>();

/** Whether every part lies in page-locked memory, so gatherToDevice can take them. */
export function gatherable(parts: readonly ArrayBufferView[]): boolean {
  return parts.every((p) => p.byteLength === 0 || pinnedView(p) !== undefined);
}

/**
 * A device tensor of `dtype[shape]` holding `parts` back to back from its first byte and zeros after them;
 * `into` (a torchc DeviceTensor of that type) is reused when given. Resolves once the copies have landed; the
 * parts must not change before then. Every part must be page-locked (gatherable).
 */
export async function gatherToDevice(
  dtype: DType,
  shape: Shape,
  parts: readonly ArrayBufferView[],
  device: number,
  completion: CompletionStrategy,
  into?: CudaDeviceTensor,
): Promise<CudaDeviceTensor> {
  const total = ioBytes({ dtype, shape });
  const sum = parts.reduce((a, p) => a + p.byteLength, 0);
  if (sum > total) fail(`${sum} bytes of rows do not fit a ${dtype}[${shape}] tensor of ${total} bytes`);
  const sources = parts.map((p, i) => {
    const src = p.byteLength === 0 ? undefined : pinnedView(p);
    if (p.byteLength > 0 && !src) fail(`part ${i} of the batch is not in page-locked host memory`);
    return src;
  });
  CudaContext.get(device);
  const out = into ?? CudaDeviceTensor.alloc(dtype, shape, device);
  if (into) checkDeviceTensor(into, dtype, shape, "gather target");
  let stream = streams.get(device);
  if (!stream?.alive) {
    stream = Stream.create();
    streams.set(device, stream);
  }
  const done = CudaEvent.create({ timing: false });
  try {
    let at = 0;
    for (const [i, src] of sources.entries()) {
      const bytes = parts[i].byteLength;
      if (src) uploadAsync(out, src.pinned, stream, { srcOffset: src.offset, dstOffset: at, bytes });
      at += bytes;
    }
    if (at < total) fill(out, 0, { offset: at, bytes: total - at, stream });
    done.record(stream);
    await whenComplete(stream, done, completion);
    return out;
  } catch (e) {
    // Copies queued before the failure may still be reading the parts and writing `out`: wait them out first
    // (the caller frees the parts' memory once this settles).
    try {
      stream.synchronize();
    } catch {}
    if (!into) out.dispose();
    throw e;
  } finally {
    CudaContext.get(device);
    done.destroy();
  }
}

/**
 * Batches written to the GPU from where the request bodies landed (`torchc serve --ingest-threads` on a GPU):
 * each ingest thread reads bodies into slots of a SharedArrayBuffer this thread page-locked (ingestSlots), and a
 * batch goes to the device by one DMA per request (deviceGather), so the batching thread copies no rows. H100,
 * session 16: copying or dispatching the copies of 32 rows of 602 KB a batch was half of that thread's time.
 */
import type { DeviceTensor } from "../core/device-tensor.js";
import { DTYPE_BYTES } from "../ir/dtype.js";
import { numel, type Tensor } from "../ir/tensor.js";
import type { CompiledModule } from "../runtime/compile.js";
import type { ModulePool } from "../runtime/pool.js";
import type { BatchModel, GatheredInput } from "./batcher.js";
import type { IngestSlots } from "./ingest.js";
import type { TensorSpec } from "./protocol.js";

/** Room in a slot for the binary request's JSON header (a batch-1 request's header is a few hundred bytes). */
const HEADER_BYTES = 16 << 10;
/**
 * Slots per ingest thread unless TORCHC_SERVE_INGEST_SLOTS says (0: none): 128 clients over 8 threads are 16 requests
 * in flight each, twice over.
 */
const DEFAULT_SLOTS = 32;

/** A module that can gather batches on its device (a single CUDA module; not a pool of replicas). */
function gatheringModule(served: CompiledModule | ModulePool): CompiledModule | undefined {
  if ("replicas" in served) return undefined;
  return served.gatherable([]) ? served : undefined;
}

/**
 * The slots for a server's ingest threads: each holds a request of one row of every input (or the whole input
 * when requests carry no batch axis) after its JSON header. Page-locked by the module when it can gather; with
 * any other module, only when TORCHC_SERVE_INGEST_SLOTS asks for them (unregistered: the batcher merges from them).
 */
export function ingestSlots(
  served: CompiledModule | ModulePool,
  inputs: readonly TensorSpec[],
  batching: boolean,
  env: NodeJS.ProcessEnv = process.env,
): IngestSlots | undefined {
  const module = gatheringModule(served);
  const asked = env.TORCHC_SERVE_INGEST_SLOTS;
  // Without a module that gathers, slots only save moving bodies between threads: used when asked for (tests).
  if (!module && asked === undefined) return undefined;
  const count = asked === undefined ? DEFAULT_SLOTS : Number(asked);
  if (!Number.isSafeInteger(count) || count <= 0) return undefined;
  const rowBytes = inputs.reduce(
    (a, s) => a + numel(batching ? s.shape.slice(1) : s.shape) * DTYPE_BYTES[s.dtype],
    0,
  );
  // padding for each tensor's 8-byte alignment in the body, and whole pages per slot
  const slotBytes = Math.ceil((HEADER_BYTES + rowBytes + 8 * (inputs.length + 1)) / 4096) * 4096;
  return { slotBytes, count, ...(module ? { register: (memory) => module.registerHost(memory) } : {}) };
}

/**
 * BatchModel.gather for a module that gathers on its device: parts in page-locked memory (slots) go by DMA into
 * a device tensor, reused across batches once their runs succeeded; other parts are left to the batcher's merge.
 */
export function deviceGather(
  served: CompiledModule | ModulePool,
  concurrency: number,
): { gather: NonNullable<BatchModel["gather"]>; dispose(): void } | undefined {
  const module = gatheringModule(served);
  if (!module) return undefined;
  const spare = new Map<string, DeviceTensor[]>();
  let disposed = false;
  const gather = (
    k: number,
    shape: readonly number[],
    parts: readonly Tensor[],
  ): Promise<GatheredInput> | undefined => {
    const views = parts.map((p: Tensor) => p.data);
    if (!module.gatherable(views)) return undefined;
    const dtype = parts[0]?.dtype;
    if (dtype === undefined || parts.some((p) => p.dtype !== dtype)) return undefined;
    const key = `${k}:${shape.join("x")}`;
    const into = spare.get(key)?.pop();
    return module.gatherToDevice(dtype, shape, views, into).then(
      (input): GatheredInput => ({
        input,
        release(reusable) {
          const free = spare.get(key) ?? [];
          // a failed run may still have its copy of the input queued: that tensor is not reused
          if (reusable && !disposed && free.length <= concurrency) {
            free.push(input);
            spare.set(key, free);
          } else if ("dispose" in input) input.dispose();
        },
      }),
      (e) => {
        into?.dispose();
        throw e;
      },
    );
  };
  return {
    gather,
    /** Frees the device tensors kept for reuse (the server has drained: no batch holds one). */
    dispose() {
      disposed = true;
      for (const list of spare.values()) for (const t of list) t.dispose();
      spare.clear();
    },
  };
}

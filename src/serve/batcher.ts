/**
 * Dynamic batching for a model compiled at a fixed batch size B: requests (each of batch 1..B) wait up to
 * `maxQueueDelayUs` and are merged in arrival order while their rows fit in `maxBatch` (≤ B); the merged
 * rows are padded with zeros up to B, run once, and each request gets its own rows back. Eval-mode models
 * compute each row independently, so padding changes no request's answer (the tests check it against
 * unbatched runs). Up to `concurrency` batches run at once (the module's execution contexts).
 *
 * Backpressure: more than `maxQueue` queued rows answers QueueFullError (HTTP 503 with Retry-After).
 * Deadlines: a request whose deadline passes while queued is answered DeadlineError and never runs; one that
 * passes while its batch runs is answered DeadlineError when the batch returns.
 */
import type { DeviceTensor } from "../core/device-tensor.js";
import { allocData, numel, type Tensor } from "../ir/tensor.js";
import { bucketFor } from "../runtime/shape-range.js";
import type { TensorSpec } from "./protocol.js";

export class QueueFullError extends Error {
  constructor(readonly retryAfterS: number) {
    super("the request queue is full");
    this.name = "QueueFullError";
  }
}

export class DeadlineError extends Error {
  constructor() {
    super("the request's deadline passed before its result was ready");
    this.name = "DeadlineError";
  }
}

/** What a batch runs on: host tensors, or device tensors a `gather` wrote. */
export type BatchInput = Tensor | DeviceTensor;

/** A batch input written by BatchModel.gather; `release` once the run that read it has settled. */
export interface GatheredInput {
  readonly input: BatchInput;
  /** `reusable`: the run succeeded (nothing reads the input any more), so its memory may take another batch. */
  release(reusable: boolean): void;
}

export interface BatchModel {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
  /** Runs one full batch (shapes exactly the model's, or any batch in `rowRange`). */
  run(inputs: readonly BatchInput[]): Promise<Tensor[]>;
  /**
   * Writes input `k` of a batch from its requests' tensors (`parts`, in order) straight to where run() reads it,
   * zeros after them (a GPU module: one DMA per request from page-locked request bodies, no copy on this thread);
   * undefined when it cannot take these parts (then they are merged here). Settled, nothing reads the parts.
   */
  gather?(k: number, shape: readonly number[], parts: readonly Tensor[]): Promise<GatheredInput> | undefined;
  /**
   * A model compiled with a batch range (runtime/dynamic-module.ts) runs any batch from min to max rows (the
   * specs' dim 0 is max): merged rows are padded only up to min, not to the specs' batch.
   */
  readonly rowRange?: { readonly min: number; readonly max: number; readonly buckets?: readonly number[] };
  /**
   * Where a merged batch is written: page-locked host memory on a GPU backend, so run() copies it to the device
   * with no staging copy (default: ordinary memory). Buffers are reused once their run has settled.
   */
  allocate?(dtype: Tensor["dtype"], shape: readonly number[]): Tensor;
  /**
   * Writes a request's rows into a merged batch from `allocate`, off this thread (a GPU module's worker-thread
   * memcpy into page-locked memory); the rows of one batch are written at once. Default: a copy on this thread.
   */
  copy?(dst: Tensor, byteOffset: number, src: Uint8Array): Promise<void>;
}

export interface BatcherOptions {
  /** Most rows merged into one run (default: the model's batch). 1: each request runs alone (padded). */
  readonly maxBatch?: number;
  readonly maxQueueDelayUs?: number;
  /** Most rows waiting (default 16 × the model's batch). */
  readonly maxQueue?: number;
  /** Batches in flight at once (default 1). */
  readonly concurrency?: number;
}

export interface BatchStats {
  readonly batches: number;
  readonly rows: number;
  readonly queuedRows: number;
  readonly inFlight: number;
  /** Batch inputs the model's gather wrote, and inputs merged on this thread (or handed over as they came). */
  readonly gatheredInputs: number;
  readonly mergedInputs: number;
}

interface Pending {
  readonly tensors: readonly Tensor[];
  readonly rows: number;
  readonly deadline: number;
  readonly enqueued: number;
  resolve(outs: { tensors: Tensor[]; queueMs: number; computeMs: number; batchRows: number }): void;
  reject(e: unknown): void;
}

function isGathered(x: BatchInput | GatheredInput): x is GatheredInput {
  return "release" in x;
}

/** Row `r0 .. r0+n` of a tensor whose dim 0 is the batch. */
function rows(t: Tensor, r0: number, n: number): Tensor {
  const per = numel(t.shape.slice(1));
  const data = t.data.slice(r0 * per, (r0 + n) * per) as Tensor["data"];
  return { dtype: t.dtype, shape: [n, ...t.shape.slice(1)], data };
}

export class DynamicBatcher {
  private readonly queue: Pending[] = [];
  private queuedRows = 0;
  private inFlight = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** A sub-millisecond delay is being waited on event-loop turns (schedule). */
  private polling = false;
  private batches = 0;
  private rowsRun = 0;
  private gatheredInputs = 0;
  private mergedInputs = 0;
  private closed = false;
  private idle: (() => void) | undefined;
  /** Merge buffers whose runs have settled, by input and row count (at most `concurrency` + 1 of each). */
  private readonly spare = new Map<string, Tensor[]>();
  readonly modelBatch: number;
  readonly maxBatch: number;
  /** Whether dim 0 of every input and output is the batch, so requests may carry 1..modelBatch rows. */
  readonly batching: boolean;
  private readonly delayMs: number;
  private readonly maxQueue: number;
  private readonly concurrency: number;

  constructor(
    private readonly model: BatchModel,
    opts: BatcherOptions = {},
    /** Called with each batch's row count (metrics). */
    private readonly onBatch: (rows: number) => void = () => {},
  ) {
    this.modelBatch = model.inputs[0]?.shape[0] ?? 1;
    this.batching =
      model.inputs.every((s) => s.shape.length > 0 && s.shape[0] === this.modelBatch) &&
      model.outputs.every((s) => s.shape.length > 0 && s.shape[0] === this.modelBatch);
    // maxBatch 1: one request per run (padded to the model's batch), no merging.
    this.maxBatch = this.batching
      ? Math.max(1, Math.min(opts.maxBatch ?? this.modelBatch, this.modelBatch))
      : 1;
    this.delayMs = (opts.maxQueueDelayUs ?? 2000) / 1000;
    this.maxQueue = opts.maxQueue ?? 16 * this.modelBatch;
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
  }

  get stats(): BatchStats {
    return {
      batches: this.batches,
      rows: this.rowsRun,
      queuedRows: this.queuedRows,
      inFlight: this.inFlight,
      gatheredInputs: this.gatheredInputs,
      mergedInputs: this.mergedInputs,
    };
  }

  submit(
    tensors: readonly Tensor[],
    rowCount: number,
    deadline = Number.POSITIVE_INFINITY,
  ): Promise<{ tensors: Tensor[]; queueMs: number; computeMs: number; batchRows: number }> {
    if (this.closed) return Promise.reject(new QueueFullError(1));
    if (this.queuedRows + rowCount > this.maxQueue) {
      // A rough wait: the queue ahead, at one batch per delay window.
      return Promise.reject(
        new QueueFullError(
          Math.max(1, Math.ceil(((this.queuedRows / this.modelBatch) * this.delayMs) / 1000)),
        ),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ tensors, rows: rowCount, deadline, enqueued: performance.now(), resolve, reject });
      this.queuedRows += rowCount;
      this.schedule();
    });
  }

  /** Stops taking requests; resolves when everything queued and running has been answered. */
  async drain(): Promise<void> {
    this.closed = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.pump();
    if (this.inFlight === 0 && this.queue.length === 0) return;
    await new Promise<void>((r) => {
      this.idle = r;
    });
  }

  private schedule(): void {
    if (this.queuedRows >= this.maxBatch || this.closed) {
      this.pump();
      return;
    }
    if (this.timer !== undefined || this.polling) return;
    if (this.delayMs >= 1) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, this.delayMs);
      return;
    }
    // Node's timers cannot wait less than 1 ms (a 500 µs delay waited ≥ 1 ms, halving one client's throughput
    // with batching on, H200 session 6): below that, the clock is checked on each turn of the event loop, which
    // still reads new requests in between.
    this.polling = true;
    const until = performance.now() + this.delayMs;
    const turn = () => {
      if (this.closed || this.queuedRows >= this.maxBatch || performance.now() >= until) {
        this.polling = false;
        this.pump();
      } else setImmediate(turn);
    };
    setImmediate(turn);
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const now = performance.now();
      const take: Pending[] = [];
      let n = 0;
      while (this.queue.length > 0) {
        const p = this.queue[0];
        if (p.deadline <= now) {
          this.queue.shift();
          this.queuedRows -= p.rows;
          p.reject(new DeadlineError());
          continue;
        }
        if (n + p.rows > this.maxBatch && take.length > 0) break;
        this.queue.shift();
        this.queuedRows -= p.rows;
        take.push(p);
        n += p.rows;
      }
      if (take.length > 0) void this.runBatch(take, n);
    }
    if (this.queue.length > 0 && !this.timer && !this.closed)
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, this.delayMs);
    this.checkIdle();
  }

  private async runBatch(take: Pending[], n: number): Promise<void> {
    this.inFlight++;
    this.batches++;
    this.rowsRun += n;
    this.onBatch(n);
    const start = performance.now();
    // Merge buffers go back for reuse only after a successful run: a failed one may have left copies queued.
    const owned: { key: string; t: Tensor }[] = [];
    const gathered: GatheredInput[] = [];
    let ran = false;
    try {
      const copies: Promise<void>[] = [];
      const inputs = this.model.inputs.map((spec, k) =>
        this.batchInput(
          k,
          spec,
          take.map((p) => p.tensors[k]),
          owned,
          copies,
        ),
      );
      // every row written before the run reads the batch (a failed copy fails the batch, once all have stopped)
      const [ins, cps] = await Promise.all([Promise.allSettled(inputs), Promise.allSettled(copies)]);
      const batch: BatchInput[] = [];
      for (const w of ins) {
        if (w.status !== "fulfilled") continue;
        const v = w.value;
        if (isGathered(v)) {
          gathered.push(v);
          batch.push(v.input);
        } else batch.push(v);
      }
      const failed = [...ins, ...cps].find((w) => w.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const outs = await this.model.run(batch);
      ran = true;
      for (const { key, t } of owned) {
        const free = this.spare.get(key) ?? [];
        if (free.length <= this.concurrency) free.push(t);
        this.spare.set(key, free);
      }
      const computeMs = performance.now() - start;
      let r = 0;
      const end = performance.now();
      for (const p of take) {
        const mine = outs.map((t) => (this.batching ? rows(t, r, p.rows) : t));
        r += p.rows;
        if (p.deadline < end) p.reject(new DeadlineError());
        else p.resolve({ tensors: mine, queueMs: start - p.enqueued, computeMs, batchRows: n });
      }
    } catch (e) {
      for (const p of take) p.reject(e);
    } finally {
      for (const g of gathered) g.release(ran);
      this.inFlight--;
      this.pump();
    }
  }

  /** Input `k` of a batch: written by the model's gather when it takes these parts, else merged here. */
  private batchInput(
    k: number,
    spec: TensorSpec,
    parts: readonly Tensor[],
    owned: { key: string; t: Tensor }[],
    copies: Promise<void>[],
  ): Promise<BatchInput | GatheredInput> {
    const n = parts.reduce((a, t) => a + t.shape[0], 0);
    const shape = this.batching ? [this.runRows(n), ...spec.shape.slice(1)] : [...spec.shape];
    if (this.model.gather) {
      let g: Promise<GatheredInput> | undefined;
      try {
        g = this.model.gather(k, shape, parts);
      } catch (e) {
        // settles with the batch's other inputs (whose gathers are released), not instead of them
        g = Promise.reject(e);
      }
      if (g) {
        this.gatheredInputs++;
        return g;
      }
    }
    this.mergedInputs++;
    return Promise.resolve(this.merge(k, spec.dtype, shape, parts, owned, copies));
  }

  /**
   * The requests' rows in order, zero-padded to the rows the model runs them at: the model's batch, or with a
   * batch range the bucket that takes them (so the module pads nothing again).
   */
  private merge(
    k: number,
    dtype: Tensor["dtype"],
    shape: readonly number[],
    parts: readonly Tensor[],
    owned: { key: string; t: Tensor }[],
    copies: Promise<void>[],
  ): Tensor {
    const rows = shape[0];
    if (!this.batching || (parts.length === 1 && parts[0].shape[0] === rows)) return parts[0];
    const key = `${k}:${rows}`;
    const reused = this.spare.get(key)?.pop();
    const out = reused ??
      this.model.allocate?.(dtype, shape) ?? {
        dtype,
        shape: [...shape],
        data: allocData(dtype, numel(shape)),
      };
    owned.push({ key, t: out });
    const bytes = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
    let at = 0;
    const copy = this.model.copy;
    for (const t of parts) {
      const src = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      if (copy) copies.push(copy(out, at, src));
      else bytes.set(src, at);
      at += src.byteLength;
    }
    // Padding rows are zero: a reused buffer holds an earlier batch's rows, and page-locked memory comes
    // uninitialised.
    if (at < bytes.byteLength) bytes.fill(0, at);
    return out;
  }

  /** The rows a merged batch of `n` runs at. */
  private runRows(n: number): number {
    const range = this.model.rowRange;
    if (!range) return this.modelBatch;
    const bucket = range.buckets ? bucketFor(range.buckets, n) : undefined;
    return Math.max(n, range.min, bucket ?? n);
  }

  private checkIdle(): void {
    if (this.idle && this.inFlight === 0 && this.queue.length === 0) {
      const r = this.idle;
      this.idle = undefined;
      r();
    }
  }
}

/**
 * A fixed pool of execution contexts shared by overlapping run() calls. A call takes a free context or waits
 * in FIFO order for one; it holds the context until its work has finished (its result copied out), so two
 * calls never share a context's buffers, staging or graph. With one context, calls simply queue. Backend
 * independent: the CUDA backend's contexts each own a stream, activation arenas and CUDA graphs.
 */
import { TorchcError } from "../errors.js";

export interface PoolStats {
  readonly contexts: number;
  readonly busy: number;
  readonly queued: number;
  /** Most calls seen waiting at once. */
  readonly maxQueued: number;
  /** Calls that have finished (resolved or rejected). */
  readonly completed: number;
}

export class ContextPool<C> {
  private readonly free: C[];
  private readonly waiting: ((c: C) => void)[] = [];
  private busy = 0;
  private maxQueued = 0;
  private completed = 0;
  private closed = false;
  private drained: (() => void) | undefined;

  constructor(readonly contexts: readonly C[]) {
    if (contexts.length < 1)
      throw new TorchcError("a context pool needs at least one context", "options.contexts");
    this.free = [...contexts];
  }

  get stats(): PoolStats {
    return {
      contexts: this.contexts.length,
      busy: this.busy,
      queued: this.waiting.length,
      maxQueued: this.maxQueued,
      completed: this.completed,
    };
  }

  /** Runs `work` with a context of its own; the context goes back when the returned promise settles. */
  async use<T>(work: (context: C) => Promise<T>): Promise<T> {
    if (this.closed) throw new TorchcError("the compiled module has been disposed", "runtime.disposed");
    const context = await this.acquire();
    try {
      return await work(context);
    } finally {
      this.completed++;
      this.release(context);
    }
  }

  /** Refuses new calls, lets the queued and running ones finish, then resolves. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.busy === 0 && this.waiting.length === 0) return;
    await new Promise<void>((r) => {
      this.drained = r;
    });
  }

  private acquire(): Promise<C> {
    const c = this.free.pop();
    if (c !== undefined) {
      this.busy++;
      return Promise.resolve(c);
    }
    return new Promise<C>((resolve) => {
      this.waiting.push(resolve);
      this.maxQueued = Math.max(this.maxQueued, this.waiting.length);
    });
  }

  private release(c: C): void {
    const next = this.waiting.shift();
    if (next) {
      next(c);
      return;
    }
    this.busy--;
    this.free.push(c);
    if (this.busy === 0 && this.drained) this.drained();
  }
}

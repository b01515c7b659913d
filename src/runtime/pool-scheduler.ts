/**
 * Which replica of a pool runs a call: the least busy one that may take it (busy / capacity, then the one that
 * has run the fewest calls, so equal replicas take turns), or, when every one is at capacity, a single FIFO
 * queue that the next replica to free up serves. One queue for all replicas, not one each: a call never waits
 * behind a slow replica while another is idle. A call may be limited to some replicas (its device tensors live
 * on one device); it then waits only for those, without holding up the calls behind it that others can take.
 * Knows nothing of devices or modules (tested on the CPU: test/pool).
 */
import { TorchcError } from "../errors.js";

export interface ReplicaLoad {
  /** Calls it may run at once (its execution contexts). */
  readonly capacity: number;
  readonly busy: number;
  /** Calls it has finished, resolved or rejected. */
  readonly completed: number;
  readonly failed: number;
}

export interface SchedulerStats {
  readonly replicas: readonly ReplicaLoad[];
  /** Calls waiting for a replica. */
  readonly queued: number;
  /** Most calls seen waiting at once. */
  readonly maxQueued: number;
}

interface Waiter {
  readonly eligible: (index: number) => boolean;
  readonly start: (index: number) => void;
}

export class ReplicaScheduler {
  private readonly busy: number[];
  private readonly started: number[];
  private readonly completed: number[];
  private readonly failed: number[];
  private readonly waiting: Waiter[] = [];
  private maxQueued = 0;
  private closed = false;
  private drained: (() => void) | undefined;

  constructor(private readonly capacities: readonly number[]) {
    if (capacities.length < 1) throw new TorchcError("a pool needs at least one replica", "options.devices");
    for (const c of capacities)
      if (!Number.isInteger(c) || c < 1)
        throw new TorchcError(`a replica's capacity must be a positive integer, got ${c}`, "options.invalid");
    this.busy = capacities.map(() => 0);
    this.started = capacities.map(() => 0);
    this.completed = capacities.map(() => 0);
    this.failed = capacities.map(() => 0);
  }

  get stats(): SchedulerStats {
    return {
      replicas: this.capacities.map((capacity, i) => ({
        capacity,
        busy: this.busy[i],
        completed: this.completed[i],
        failed: this.failed[i],
      })),
      queued: this.waiting.length,
      maxQueued: this.maxQueued,
    };
  }

  /**
   * Runs `work` on a replica (its index) among those `eligible` allows; the slot goes back when the promise
   * settles. Throws at once when no replica is eligible.
   */
  async use<T>(
    work: (index: number) => Promise<T>,
    eligible: (index: number) => boolean = () => true,
  ): Promise<T> {
    if (this.closed) throw new TorchcError("the pool has been disposed", "runtime.disposed");
    if (!this.capacities.some((_, i) => eligible(i)))
      throw new TorchcError("no replica of the pool can take this call", "runtime.no-replica");
    const index = await this.acquire(eligible);
    let ok = false;
    try {
      const out = await work(index);
      ok = true;
      return out;
    } finally {
      this.completed[index]++;
      if (!ok) this.failed[index]++;
      this.release(index);
    }
  }

  /** Refuses new calls, lets the queued and running ones finish, then resolves. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.idle()) return;
    await new Promise<void>((r) => {
      this.drained = r;
    });
  }

  private idle(): boolean {
    return this.waiting.length === 0 && this.busy.every((b) => b === 0);
  }

  /** The least busy replica with a free slot that `eligible` allows, or -1. */
  private pick(eligible: (index: number) => boolean): number {
    let best = -1;
    for (let i = 0; i < this.capacities.length; i++) {
      if (!eligible(i) || this.busy[i] >= this.capacities[i]) continue;
      if (best < 0) {
        best = i;
        continue;
      }
      const load = this.busy[i] / this.capacities[i];
      const bestLoad = this.busy[best] / this.capacities[best];
      if (load < bestLoad || (load === bestLoad && this.started[i] < this.started[best])) best = i;
    }
    return best;
  }

  private take(index: number): number {
    this.busy[index]++;
    this.started[index]++;
    return index;
  }

  private acquire(eligible: (index: number) => boolean): Promise<number> {
    // No waiting call may use a free slot (release() hands each freed slot to the oldest that may), so a new
    // call taking one never overtakes a call that waits for it.
    const free = this.pick(eligible);
    if (free >= 0) return Promise.resolve(this.take(free));
    return new Promise<number>((resolve) => {
      this.waiting.push({ eligible, start: resolve });
      this.maxQueued = Math.max(this.maxQueued, this.waiting.length);
    });
  }

  private release(index: number): void {
    this.busy[index]--;
    // The oldest waiting call this replica may run takes the slot (FIFO among those it can serve).
    const k = this.waiting.findIndex((w) => w.eligible(index));
    if (k >= 0) {
      const [w] = this.waiting.splice(k, 1);
      w.start(this.take(index));
      return;
    }
    if (this.drained && this.idle()) this.drained();
  }
}

import { describe, expect, it } from "vitest";
import { ReplicaScheduler } from "../../src/runtime/pool-scheduler.js";

/** A call whose work the test finishes by hand, recording the replica it got and when it started. */
function gate() {
  let open: () => void = () => {};
  let fail: (e: Error) => void = () => {};
  const done = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  return { done, open: () => open(), fail: (e: Error) => fail(e) };
}

const tick = () => new Promise((r) => setImmediate(r));

/** Starts `n` calls on `s`; each records [call, replica] when it starts and waits for its gate. */
function start(s: ReplicaScheduler, n: number, eligible?: (i: number) => boolean[]) {
  const order: [number, number][] = [];
  const gates = Array.from({ length: n }, () => gate());
  const results = gates.map((g, k) =>
    s.use(
      async (replica) => {
        order.push([k, replica]);
        await g.done;
        return replica;
      },
      eligible ? (i) => eligible(k)[i] : undefined,
    ),
  );
  return { order, gates, results };
}

describe("ReplicaScheduler: least busy replica first, one FIFO queue beyond", () => {
  it("spreads calls over idle replicas before doubling up, and takes turns among equals", async () => {
    const s = new ReplicaScheduler([2, 2, 2]);
    const { order, gates, results } = start(s, 6);
    await tick();
    // One call per replica, then the second slot of each, in replica order (fewest calls started first).
    expect(order.map(([, r]) => r)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(s.stats.replicas.map((r) => r.busy)).toEqual([2, 2, 2]);
    for (const g of gates) g.open();
    await Promise.all(results);
    expect(s.stats.replicas.map((r) => r.completed)).toEqual([2, 2, 2]);
    // Sequential calls alternate: the replica with fewer calls started goes next.
    const seq: number[] = [];
    for (let k = 0; k < 4; k++) seq.push(await s.use(async (r) => r));
    expect(seq).toEqual([0, 1, 2, 0]);
  });

  it("goes to the replica with the most free capacity (busy / capacity)", async () => {
    const s = new ReplicaScheduler([1, 4]);
    const { order, gates, results } = start(s, 4);
    await tick();
    // Replica 0 (1 slot) takes one call; replica 1 (4 slots) is then the less loaded for the rest.
    expect(order.map(([, r]) => r)).toEqual([0, 1, 1, 1]);
    for (const g of gates) g.open();
    await Promise.all(results);
  });

  it("queues calls beyond capacity in FIFO order; each freed slot serves the oldest, on whichever replica frees", async () => {
    const s = new ReplicaScheduler([1, 1]);
    const { order, gates, results } = start(s, 6);
    await tick();
    expect(order).toEqual([
      [0, 0],
      [1, 1],
    ]);
    expect(s.stats.queued).toBe(4);
    expect(s.stats.maxQueued).toBe(4);
    // Replica 1 frees first, twice in a row: calls 2 and 3 run there, while replica 0 is still busy.
    gates[1].open();
    await tick();
    expect(order.at(-1)).toEqual([2, 1]);
    gates[2].open();
    await tick();
    expect(order.at(-1)).toEqual([3, 1]);
    gates[0].open();
    await tick();
    expect(order.at(-1)).toEqual([4, 0]);
    for (const g of gates) g.open();
    expect(await Promise.all(results)).toEqual([0, 1, 1, 1, 0, 1]);
    expect(order.map(([k]) => k)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(s.stats.queued).toBe(0);
  });

  it("a call limited to one replica waits for it without holding up calls that others can take", async () => {
    const s = new ReplicaScheduler([1, 1]);
    // Call 1 may only run on replica 0 (its device tensors live there); the others anywhere.
    const only0 = [true, false];
    const any = [true, true];
    const { order, gates, results } = start(s, 4, (k) => (k === 1 ? only0 : any));
    await tick();
    // Call 0 → replica 0; call 1 waits for replica 0; call 2 takes replica 1; call 3 waits.
    expect(order).toEqual([
      [0, 0],
      [2, 1],
    ]);
    gates[2].open();
    await tick();
    // Replica 1 freed: call 1 cannot use it, so call 3 (the oldest that can) does.
    expect(order.at(-1)).toEqual([3, 1]);
    gates[0].open();
    await tick();
    expect(order.at(-1)).toEqual([1, 0]);
    for (const g of gates) g.open();
    await Promise.all(results);
  });

  it("a failed call gives its slot back and is counted; a call no replica may take is refused", async () => {
    const s = new ReplicaScheduler([1, 1]);
    await expect(
      s.use(async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(s.stats.replicas[0]).toMatchObject({ busy: 0, completed: 1, failed: 1 });
    expect(await s.use(async (r) => r)).toBe(1);
    await expect(
      s.use(
        async (r) => r,
        () => false,
      ),
    ).rejects.toThrow(/no replica of the pool can take/);
  });

  it("close() lets running and queued calls finish, then refuses new ones", async () => {
    const s = new ReplicaScheduler([1]);
    const { gates, results } = start(s, 3);
    await tick();
    let closed = false;
    const closing = s.close().then(() => {
      closed = true;
    });
    await expect(s.use(async () => 0)).rejects.toThrow(/disposed/);
    gates[0].open();
    gates[1].open();
    await tick();
    expect(closed).toBe(false);
    gates[2].open();
    await closing;
    expect(closed).toBe(true);
    expect(await Promise.all(results)).toEqual([0, 0, 0]);
  });

  it("refuses an empty pool and capacities that are not positive integers", () => {
    expect(() => new ReplicaScheduler([])).toThrow(/at least one replica/);
    expect(() => new ReplicaScheduler([1, 0])).toThrow(/positive integer/);
    expect(() => new ReplicaScheduler([1.5])).toThrow(/positive integer/);
  });
});

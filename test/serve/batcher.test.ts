import { describe, expect, it } from "vitest";
import type { Tensor } from "../../src/ir/tensor.js";
import { type BatchModel, DynamicBatcher } from "../../src/serve/batcher.js";

/** A model of rows [b, 2]: each output row is its input row times 10, and every run's input is recorded. */
function recordingModel(range?: BatchModel["rowRange"]) {
  const seen: Float32Array[] = [];
  const allocated: number[][] = [];
  const model: BatchModel = {
    inputs: [{ name: "x", dtype: "float32", shape: [8, 2] }],
    outputs: [{ name: "y", dtype: "float32", shape: [8, 2] }],
    rowRange: range,
    async run([input]) {
      const x = input as Tensor;
      seen.push((x.data as Float32Array).slice());
      const data = (x.data as Float32Array).map((v) => v * 10);
      return [{ dtype: "float32", shape: [...x.shape], data }];
    },
    allocate(dtype, shape) {
      allocated.push([...shape]);
      // like page-locked memory: not zeroed
      return { dtype, shape: [...shape], data: new Float32Array(shape[0] * shape[1]).fill(Number.NaN) };
    },
  };
  return { model, seen, allocated };
}

const request = (rows: number, v: number): Tensor => ({
  dtype: "float32",
  shape: [rows, 2],
  data: new Float32Array(rows * 2).fill(v),
});

describe("DynamicBatcher merge buffers", () => {
  it("reuses one buffer per bucket and zeroes the padding rows an earlier batch filled", async () => {
    const { model, seen, allocated } = recordingModel({ min: 1, max: 8, buckets: [1, 2, 4, 8] });
    const b = new DynamicBatcher(model, { maxQueueDelayUs: 20_000 });
    // 4 rows, then 3 rows (bucket 4): the second batch's last row must be zero, not the first batch's 1.
    const first = await Promise.all([b.submit([request(2, 1)], 2), b.submit([request(2, 1)], 2)]);
    const second = await Promise.all([b.submit([request(1, 2)], 1), b.submit([request(2, 3)], 2)]);
    expect(allocated).toEqual([[4, 2]]);
    expect(Array.from(seen[0])).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
    expect(Array.from(seen[1])).toEqual([2, 2, 3, 3, 3, 3, 0, 0]);
    expect(first.map((r) => Array.from(r.tensors[0].data as Float32Array))).toEqual([
      [10, 10, 10, 10],
      [10, 10, 10, 10],
    ]);
    expect(second.map((r) => Array.from(r.tensors[0].data as Float32Array))).toEqual([
      [20, 20],
      [30, 30, 30, 30],
    ]);
  });

  it("with a copy hook, every request's rows land (out of order, later) before the run reads the batch", async () => {
    const { model, seen } = recordingModel({ min: 1, max: 8, buckets: [1, 2, 4, 8] });
    const writes: number[] = [];
    // a worker-thread memcpy: it lands after a delay, the later rows first
    model.copy = (dst, at, src) =>
      new Promise<void>((resolve) =>
        setTimeout(
          () => {
            new Uint8Array(dst.data.buffer, dst.data.byteOffset + at, src.byteLength).set(src);
            writes.push(at);
            resolve();
          },
          20 - at / 8,
        ),
      );
    const b = new DynamicBatcher(model, { maxQueueDelayUs: 20_000 });
    const outs = await Promise.all([
      b.submit([request(1, 1)], 1),
      b.submit([request(2, 2)], 2),
      b.submit([request(1, 3)], 1),
    ]);
    expect(writes).toEqual([24, 8, 0]);
    expect(Array.from(seen[0])).toEqual([1, 1, 2, 2, 2, 2, 3, 3]);
    expect(outs.map((r) => Array.from(r.tensors[0].data as Float32Array))).toEqual([
      [10, 10],
      [20, 20, 20, 20],
      [30, 30],
    ]);
    // a copy that fails fails that batch's requests, and the batcher goes on
    model.copy = () => Promise.reject(new Error("copy failed"));
    await expect(Promise.all([b.submit([request(1, 5)], 1), b.submit([request(1, 5)], 1)])).rejects.toThrow(
      /copy failed/,
    );
    model.copy = undefined;
    const after = await Promise.all([b.submit([request(1, 6)], 1), b.submit([request(1, 6)], 1)]);
    expect(Array.from(after[1].tensors[0].data as Float32Array)).toEqual([60, 60]);
  });

  it("runs a merged batch at its bucket's rows, not the range's max, zero-padded in fresh uninitialised memory", async () => {
    const { model, seen } = recordingModel({ min: 1, max: 8, buckets: [1, 2, 4, 8] });
    const b = new DynamicBatcher(model, { maxQueueDelayUs: 20_000 });
    await Promise.all([b.submit([request(2, 1)], 2), b.submit([request(3, 1)], 3)]);
    expect(seen[0].length).toBe(8 * 2);
    expect(Array.from(seen[0].subarray(10))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it("hands a request of exactly a bucket's rows to the model as it came", async () => {
    const { model, allocated } = recordingModel({ min: 1, max: 8, buckets: [1, 2, 4, 8] });
    const b = new DynamicBatcher(model, { maxQueueDelayUs: 0 });
    await b.submit([request(4, 1)], 4);
    expect(allocated).toEqual([]);
  });

  it("lets the model's gather write a batch from the requests' tensors, released once the run has settled", async () => {
    const { model, allocated, seen } = recordingModel();
    const calls: { shape: number[]; parts: number[][] }[] = [];
    const released: boolean[] = [];
    let gatherFails = false;
    model.gather = (_k, shape, parts) => {
      // a part it cannot take (not in "page-locked" memory): merged on the batcher's thread instead
      if (parts.some((p) => (p.data as Float32Array)[0] < 0)) return undefined;
      calls.push({ shape: [...shape], parts: parts.map((p) => Array.from(p.data as Float32Array)) });
      if (gatherFails) return Promise.reject(new Error("gather failed"));
      const data = new Float32Array(shape[0] * shape[1]);
      let at = 0;
      for (const p of parts) {
        data.set(p.data as Float32Array, at);
        at += p.data.length;
      }
      return Promise.resolve({
        input: { dtype: "float32", shape: [...shape], data } as Tensor,
        release: (ok: boolean) => released.push(ok),
      });
    };
    const b = new DynamicBatcher(model, { maxQueueDelayUs: 20_000 });
    const outs = await Promise.all([b.submit([request(1, 1)], 1), b.submit([request(2, 2)], 2)]);
    expect(calls).toEqual([
      {
        shape: [8, 2],
        parts: [
          [1, 1],
          [2, 2, 2, 2],
        ],
      },
    ]);
    expect(allocated).toEqual([]); // nothing merged here
    expect(seen[0].length).toBe(16);
    expect(Array.from(seen[0].subarray(6))).toEqual(new Array(10).fill(0));
    expect(outs.map((r) => Array.from(r.tensors[0].data as Float32Array))).toEqual([
      [10, 10],
      [20, 20, 20, 20],
    ]);
    expect(released).toEqual([true]);

    // a failing run: the gathered input is released as not reusable, and the requests fail
    const run = model.run;
    model.run = () => Promise.reject(new Error("run failed"));
    await expect(b.submit([request(1, 3)], 1)).rejects.toThrow("run failed");
    expect(released).toEqual([true, false]);
    model.run = run;

    // a failing gather fails that batch only
    gatherFails = true;
    await expect(b.submit([request(1, 4)], 1)).rejects.toThrow("gather failed");
    gatherFails = false;

    // parts the gather does not take are merged here
    const merged = await b.submit([request(1, -1)], 1);
    expect(Array.from(merged.tensors[0].data as Float32Array)).toEqual([-10, -10]);
    expect(allocated).toEqual([[8, 2]]);
  });

  it("answers no request before its batch's gather has settled, and reads the parts only then", async () => {
    const { model } = recordingModel();
    let land: (() => void) | undefined;
    model.gather = (_k, shape, parts) =>
      new Promise((resolve) => {
        land = () => {
          // the copy reads the parts when it happens, not when it was asked for
          const data = new Float32Array(shape[0] * shape[1]);
          let at = 0;
          for (const p of parts) {
            data.set(p.data as Float32Array, at);
            at += p.data.length;
          }
          resolve({ input: { dtype: "float32", shape: [...shape], data } as Tensor, release() {} });
        };
      });
    const b = new DynamicBatcher(model, { maxQueueDelayUs: 0 });
    let settled = false;
    const x = request(1, 5);
    const answer = b.submit([x], 1).finally(() => {
      settled = true;
    });
    for (let i = 0; i < 5 && !land; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    (x.data as Float32Array).fill(6); // written before the copy happened: the copy sees it
    land!();
    expect(Array.from((await answer).tensors[0].data as Float32Array)).toEqual([60, 60]);
  });

  it("a failing gather of one input releases the other input's gather as not reusable; a throwing one fails only its batch", async () => {
    const released: string[] = [];
    let mode: "reject" | "throw" | "ok" = "reject";
    const model: BatchModel = {
      inputs: [
        { name: "a", dtype: "float32", shape: [4, 1] },
        { name: "b", dtype: "float32", shape: [4, 1] },
      ],
      outputs: [{ name: "y", dtype: "float32", shape: [4, 1] }],
      async run([a, b]) {
        const x = (a as Tensor).data as Float32Array;
        const y = (b as Tensor).data as Float32Array;
        return [{ dtype: "float32", shape: [4, 1], data: x.map((v, i) => v + y[i]) }];
      },
      gather(k, shape, parts) {
        if (k === 1 && mode === "throw") throw new Error("gather threw");
        if (k === 1 && mode === "reject") return Promise.reject(new Error("gather failed"));
        const data = new Float32Array(shape[0]);
        data.set(parts[0].data as Float32Array);
        return Promise.resolve({
          input: { dtype: "float32", shape: [...shape], data } as Tensor,
          release: (ok: boolean) => released.push(`${k}:${ok}`),
        });
      },
    };
    const b = new DynamicBatcher(model, { maxQueueDelayUs: 0 });
    const one = (v: number): Tensor => ({ dtype: "float32", shape: [1, 1], data: Float32Array.of(v) });
    await expect(b.submit([one(1), one(2)], 1)).rejects.toThrow("gather failed");
    expect(released).toEqual(["0:false"]);
    mode = "throw";
    await expect(b.submit([one(1), one(2)], 1)).rejects.toThrow("gather threw");
    expect(released).toEqual(["0:false", "0:false"]);
    mode = "ok";
    const r = await b.submit([one(1), one(2)], 1);
    expect(Array.from(r.tensors[0].data as Float32Array)).toEqual([3]);
    expect(released).toEqual(["0:false", "0:false", "0:true", "1:true"]);
    expect(b.stats.gatheredInputs).toBe(6);
  });
});

import type { IncomingMessage } from "node:http";
import { PassThrough } from "node:stream";
import { MessageChannel } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { BodyError, BodyPool, readAlignedBody } from "../../src/serve/body.js";
import { decodeRequest, splitBinaryBody } from "../../src/serve/protocol.js";

/** A request stream with these headers that sends `chunks`. */
function request(headers: Record<string, string>, chunks: Buffer[]): IncomingMessage {
  const s = new PassThrough() as unknown as IncomingMessage & PassThrough;
  (s as { headers: Record<string, string> }).headers = headers;
  queueMicrotask(() => {
    for (const c of chunks) s.write(c);
    s.end();
  });
  return s;
}

/** A binary-extension body: JSON header padded by `extra` spaces, then the float32 values. */
function binaryBody(values: number[], extra: number) {
  const json = {
    inputs: [
      {
        name: "x",
        shape: [1, values.length],
        datatype: "FP32",
        parameters: { binary_data_size: values.length * 4 },
      },
    ],
  };
  const header = Buffer.from(JSON.stringify(json) + " ".repeat(extra));
  const body = Buffer.concat([header, Buffer.from(new Float32Array(values).buffer)]);
  return { header, body };
}

const spec = [{ name: "x", dtype: "float32" as const, shape: [1, 5] }];

describe("readAlignedBody", () => {
  for (const chunked of [false, true])
    it(`lays the tensor bytes out 8-byte aligned for every header length, and decode views them in place (${chunked ? "chunked" : "Content-Length"})`, async () => {
      for (let extra = 0; extra < 8; extra++) {
        const values = [1.5, -2, 3.25, 4, 5 + extra];
        const { header, body } = binaryBody(values, extra);
        const headers: Record<string, string> = {
          "inference-header-content-length": String(header.byteLength),
        };
        if (!chunked) headers["content-length"] = String(body.byteLength);
        // split mid-header and mid-tensor
        const cuts = [0, 7, header.byteLength + 3, body.byteLength];
        const chunks = cuts.slice(1).map((c, i) => body.subarray(cuts[i], c));
        const got = await readAlignedBody(request(headers, chunks), 1 << 20);
        expect(got.equals(body)).toBe(true);
        const { json, binary } = splitBinaryBody(got, header.byteLength);
        const d = decodeRequest(json, spec, true, binary);
        const data = d.tensors[0].data as Float32Array;
        expect(Array.from(data)).toEqual(values);
        expect(data.buffer).toBe(got.buffer);
        expect(data.byteOffset % 8).toBe(0);
      }
    });

  it("a body over 16 MiB with Content-Length is gathered as it arrives, then laid out aligned the same way", async () => {
    const values = Array.from({ length: (17 << 20) / 4 }, (_, i) => i % 1000);
    const { header, body } = binaryBody(values, 3);
    const headers = {
      "inference-header-content-length": String(header.byteLength),
      "content-length": String(body.byteLength),
    };
    const chunks = Array.from({ length: Math.ceil(body.byteLength / 65536) }, (_, i) =>
      body.subarray(i * 65536, (i + 1) * 65536),
    );
    const got = await readAlignedBody(request(headers, chunks), 64 << 20);
    expect(got.equals(body)).toBe(true);
    expect((got.byteOffset + header.byteLength) % 8).toBe(0);
  });

  it("copies when the bytes are not aligned (a body read elsewhere), with the same values", () => {
    const values = [1, 2, 3, 4, 5];
    const { header, body } = binaryBody(values, 1);
    // the tensor bytes at an odd address: header length + 1
    const at = (8 - (header.byteLength % 8)) % 8;
    const shifted = Buffer.from(new ArrayBuffer(body.byteLength + 9), at + 1, body.byteLength);
    body.copy(shifted);
    const { json, binary } = splitBinaryBody(shifted, header.byteLength);
    expect(binary.byteOffset % 4).toBe(1);
    const data = decodeRequest(json, spec, true, binary).tensors[0].data as Float32Array;
    expect(Array.from(data)).toEqual(values);
    expect(data.buffer).not.toBe(shifted.buffer);
  });

  it("refuses a body longer or shorter than Content-Length, and one over the limit", async () => {
    const body = Buffer.alloc(64, 1);
    const longer = readAlignedBody(request({ "content-length": "32" }, [body]), 1000);
    await expect(longer).rejects.toMatchObject({ statusCode: 400 });
    const shorter = readAlignedBody(request({ "content-length": "100" }, [body]), 1000);
    await expect(shorter).rejects.toThrow(/64 bytes, Content-Length says 100/);
    const over = readAlignedBody(request({}, [body, body]), 100);
    await expect(over).rejects.toBeInstanceOf(BodyError);
    await expect(readAlignedBody(request({}, [body, body]), 100)).rejects.toMatchObject({ statusCode: 413 });
  });
});

describe("BodyPool", () => {
  it("hands a returned allocation to the next body of a near size, and refuses foreign or over-bound ones", () => {
    const pool = new BodyPool(3 * 8192);
    const a = pool.take(5000);
    expect(a.byteLength).toBe(8192);
    pool.give(Buffer.from(a, 3, 4000));
    expect(pool.take(6000)).toBe(a);
    expect(pool.take(6000)).not.toBe(a);
    pool.give(Buffer.alloc(5000)); // not the pool's: never handed out
    expect(pool.take(5000)).not.toBe(a);
    const many = [pool.take(8000), pool.take(8000), pool.take(8000), pool.take(8000)];
    for (const m of many) pool.give(new Uint8Array(m));
    const back = new Set([pool.take(8000), pool.take(8000), pool.take(8000), pool.take(8000)]);
    expect(many.filter((m) => back.has(m)).length).toBe(3);
  });

  it("adopts an allocation that crossed threads and came back (a new ArrayBuffer object over the same bytes)", async () => {
    const pool = new BodyPool(1 << 20);
    const body = pool.take(600_000);
    expect(body.byteLength).toBe(602_112);
    // moved to another thread and back: what returns is another ArrayBuffer object
    const { port1, port2 } = new MessageChannel();
    const back = new Promise<ArrayBuffer>((r) => port2.once("message", r));
    port1.postMessage(body, [body]);
    const returned = await back;
    port1.close();
    port2.close();
    expect(body.byteLength).toBe(0);
    pool.adopt(returned);
    expect(pool.take(600_000)).toBe(returned);
    // a size the pool never hands out, an empty (detached) buffer, or beyond the bound: not kept
    pool.adopt(new ArrayBuffer(1000));
    pool.adopt(new ArrayBuffer(0));
    expect(pool.take(1000).byteLength).toBe(4096);
    const big = new ArrayBuffer(2 << 20);
    pool.adopt(big);
    expect(pool.take(2 << 20)).not.toBe(big);
  });

  it("a pooled body is read in place like a fresh one", async () => {
    const pool = new BodyPool();
    for (let round = 0; round < 3; round++) {
      const values = [round, round + 0.5, -round, 7, 8];
      const { header, body } = binaryBody(values, round);
      const headers = {
        "inference-header-content-length": String(header.byteLength),
        "content-length": String(body.byteLength),
      };
      const got = await readAlignedBody(request(headers, [body]), 1 << 20, pool);
      const { json, binary } = splitBinaryBody(got, header.byteLength);
      const data = decodeRequest(json, spec, true, binary).tensors[0].data as Float32Array;
      expect(Array.from(data)).toEqual(values);
      pool.give(got);
    }
  });

  it("reads bodies that fit into shared slots (aligned, in place), frees each slot once, and falls back when full", async () => {
    const memory = new SharedArrayBuffer(3 * 4096 + 4096);
    const pool = new BodyPool(1 << 20, { memory, offset: 4096, slotBytes: 4096, count: 3 });
    const read = async (values: number[], extra: number) => {
      const { header, body } = binaryBody(values, extra);
      const headers = {
        "inference-header-content-length": String(header.byteLength),
        "content-length": String(body.byteLength),
      };
      const got = await readAlignedBody(request(headers, [body]), 1 << 20, pool);
      const { json, binary } = splitBinaryBody(got, header.byteLength);
      return { got, data: decodeRequest(json, spec, true, binary).tensors[0].data as Float32Array };
    };
    const bodies = [];
    for (let k = 0; k < 3; k++) {
      const { got, data } = await read([k, 1, 2, 3, 4], k);
      // in the shared memory, in slot k's pages, the tensor viewed in place
      expect(got.buffer).toBe(memory);
      expect(data.buffer).toBe(memory);
      expect(Math.floor((got.byteOffset - 4096) / 4096)).toBe(pool.slotOf(got));
      expect(Array.from(data)).toEqual([k, 1, 2, 3, 4]);
      bodies.push(got);
    }
    expect(pool.slotsInUse).toBe(3);
    // every slot taken: an ordinary allocation
    const spill = await read([9, 9, 9, 9, 9], 0);
    expect(spill.got.buffer).not.toBe(memory);
    expect(pool.slotOf(spill.got)).toBeUndefined();
    // freed by give or by its index, once: a second free changes nothing
    pool.give(bodies[1]);
    pool.freeSlot(pool.slotOf(bodies[1])!);
    pool.freeSlot(-1);
    pool.freeSlot(7);
    expect(pool.slotsInUse).toBe(2);
    const again = await read([5, 6, 7, 8, 9], 3);
    expect(pool.slotOf(again.got)).toBe(pool.slotOf(bodies[1]));
    // a body larger than a slot never goes in one
    const { header, body } = binaryBody(new Array(1100).fill(1), 0);
    const headers = {
      "inference-header-content-length": String(header.byteLength),
      "content-length": String(body.byteLength),
    };
    const large = await readAlignedBody(request(headers, [body]), 1 << 20, pool);
    expect(large.buffer).not.toBe(memory);
    expect(pool.slotsInUse).toBe(3);
  });

  it("a body that never arrives whole gives its slot back (aborted, short or long against Content-Length)", async () => {
    const memory = new SharedArrayBuffer(2 * 4096);
    const pool = new BodyPool(1 << 20, { memory, offset: 0, slotBytes: 4096, count: 2 });
    const { header, body } = binaryBody([1, 2, 3, 4, 5], 0);
    const headers = (length: number) => ({
      "inference-header-content-length": String(header.byteLength),
      "content-length": String(length),
    });
    // shorter and longer than declared
    await expect(
      readAlignedBody(request(headers(body.byteLength + 10), [body]), 1 << 20, pool),
    ).rejects.toThrow(BodyError);
    await expect(
      readAlignedBody(request(headers(body.byteLength - 10), [body]), 1 << 20, pool),
    ).rejects.toThrow(BodyError);
    // the client goes away mid-body
    const s = new PassThrough() as unknown as IncomingMessage & PassThrough;
    (s as { headers: Record<string, string> }).headers = headers(body.byteLength);
    const aborted = readAlignedBody(s, 1 << 20, pool);
    s.write(body.subarray(0, 10));
    s.emit("aborted");
    await expect(aborted).rejects.toThrow(/aborted/);
    expect(pool.slotsInUse).toBe(0);
    const ok = await readAlignedBody(request(headers(body.byteLength), [body]), 1 << 20, pool);
    expect(ok.buffer).toBe(memory);
    expect(pool.takePlaced()).toEqual({ slot: 4, allocation: 0 });
  });
});

// Archives over 2 GiB (issue 10): more than one Buffer or readFileSync holds. The test archives are sparse files:
// a stored entry of 4.5 GiB that is a hole (never written, so it costs no disk and no time), with zip64 sizes,
// offsets and end records, followed by real entries whose offsets are past 4 GiB.
import { closeSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ArchiveError } from "../../src/errors.js";
import { crc32 } from "../../src/frontends/crc32.js";
import { MemoryBudget } from "../../src/frontends/limits.js";
import { loadModel } from "../../src/frontends/load-model.js";
import { readZip } from "../../src/frontends/zip.js";
import { toFloat64Array } from "../../src/ir/tensor.js";
import { MODELS, tempDir as newTempDir } from "../helpers.js";
import { readEntries } from "./zip-writer.js";

const GiB = 1024 ** 3;

// Sparse, but their apparent sizes are gigabytes: remove them rather than leave them for tmp cleaners.
const made: string[] = [];
const tempDir = () => {
  const d = newTempDir();
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const HOLE = 4.5 * GiB;

interface SparseEntry {
  readonly name: string;
  /** The entry's bytes, or a hole of this many bytes whose first bytes are `head`. */
  readonly data?: Uint8Array;
  readonly hole?: { readonly size: number; readonly head: Uint8Array };
}

/** Writes a stored zip64 archive with positioned writes, leaving holes unwritten; returns its size. */
function writeSparseZip(path: string, entries: readonly SparseEntry[]): number {
  const fd = openSync(path, "w");
  const enc = new TextEncoder();
  const put = (bytes: Uint8Array, at: number) => writeSync(fd, bytes, 0, bytes.length, at);
  const central: Uint8Array[] = [];
  let offset = 0;
  try {
    for (const e of entries) {
      const name = enc.encode(e.name);
      const size = e.data?.length ?? e.hole!.size;
      const local = new Uint8Array(30 + name.length + 20);
      const l = new DataView(local.buffer);
      l.setUint32(0, 0x04034b50, true);
      l.setUint16(4, 45, true);
      l.setUint32(14, e.data ? crc32(e.data) : 0, true);
      l.setUint32(18, 0xffffffff, true);
      l.setUint32(22, 0xffffffff, true);
      l.setUint16(26, name.length, true);
      l.setUint16(28, 20, true);
      local.set(name, 30);
      l.setUint16(30 + name.length, 1, true);
      l.setUint16(32 + name.length, 16, true);
      l.setBigUint64(34 + name.length, BigInt(size), true);
      l.setBigUint64(42 + name.length, BigInt(size), true);
      put(local, offset);
      put(e.data ?? e.hole!.head, offset + local.length);
      const cd = new Uint8Array(46 + name.length + 28);
      const c = new DataView(cd.buffer);
      c.setUint32(0, 0x02014b50, true);
      c.setUint16(4, 45, true);
      c.setUint16(6, 45, true);
      c.setUint32(16, e.data ? crc32(e.data) : 0, true);
      c.setUint32(20, 0xffffffff, true);
      c.setUint32(24, 0xffffffff, true);
      c.setUint16(28, name.length, true);
      c.setUint16(30, 28, true);
      c.setUint32(42, 0xffffffff, true);
      cd.set(name, 46);
      c.setUint16(46 + name.length, 1, true);
      c.setUint16(48 + name.length, 24, true);
      c.setBigUint64(50 + name.length, BigInt(size), true);
      c.setBigUint64(58 + name.length, BigInt(size), true);
      c.setBigUint64(66 + name.length, BigInt(offset), true);
      central.push(cd);
      offset += local.length + size;
    }
    const cdOffset = offset;
    for (const cd of central) {
      put(cd, offset);
      offset += cd.length;
    }
    const tail = new Uint8Array(56 + 20 + 22);
    const t = new DataView(tail.buffer);
    t.setUint32(0, 0x06064b50, true);
    t.setBigUint64(4, 44n, true);
    t.setUint16(12, 45, true);
    t.setUint16(14, 45, true);
    t.setBigUint64(24, BigInt(entries.length), true);
    t.setBigUint64(32, BigInt(entries.length), true);
    t.setBigUint64(40, BigInt(offset - cdOffset), true);
    t.setBigUint64(48, BigInt(cdOffset), true);
    t.setUint32(56, 0x07064b50, true);
    t.setBigUint64(64, BigInt(offset), true);
    t.setUint32(72, 1, true);
    t.setUint32(76, 0x06054b50, true);
    t.setUint16(84, 0xffff, true);
    t.setUint16(86, 0xffff, true);
    t.setUint32(88, 0xffffffff, true);
    t.setUint32(92, 0xffffffff, true);
    put(tail, offset);
    return offset + tail.length;
  } finally {
    closeSync(fd);
  }
}

const enc = new TextEncoder();
const budget = () =>
  new MemoryBudget((d) => {
    throw new ArchiveError("big.zip", d);
  }, 64 << 20);

describe("archives over 2 GiB", () => {
  it("reads the directory and entries past 4 GiB by position, charging only what it reads", () => {
    const file = join(tempDir(), "big.zip");
    const size = writeSparseZip(file, [
      { name: "hole.bin", hole: { size: HOLE, head: enc.encode("first bytes of a huge entry") } },
      { name: "after/hello.txt", data: enc.encode("hello from past 4 GiB") },
    ]);
    expect(statSync(file).size).toBe(size);
    expect(size).toBeGreaterThan(4 * GiB);
    const b = budget();
    const t0 = performance.now();
    const zip = readZip(file, b);
    expect(zip.names).toEqual(["hole.bin", "after/hello.txt"]);
    expect(zip.size("hole.bin")).toBe(HOLE);
    expect(zip.text("after/hello.txt")).toBe("hello from past 4 GiB");
    expect(new TextDecoder().decode(zip.read("hole.bin", 27))).toBe("first bytes of a huge entry");
    expect(b.bytesUsed).toBeLessThan(4096);
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it("loads a model from a .pt2 over 4 GiB and computes what the small one computes", async () => {
    const dir = tempDir();
    const entries = readEntries(readFileSync(join(MODELS, "mlp.pt2")));
    const file = join(dir, "mlp_big.pt2");
    writeSparseZip(file, [
      ...Object.entries(entries).map(([name, data]) => ({ name, data })),
      { name: "mlp/extra/padding.bin", hole: { size: HOLE, head: new Uint8Array(1) } },
    ]);
    expect(statSync(file).size).toBeGreaterThan(4 * GiB);
    const big = await loadModel(file);
    const small = await loadModel(join(MODELS, "mlp.pt2"));
    const w = (m: typeof big) => Object.values(m.graph.weights).find((x) => x.target === "fc1.weight")!;
    expect(w(big).tensor.shape).toEqual([64, 20]);
    expect([...toFloat64Array(w(big).tensor)]).toEqual([...toFloat64Array(w(small).tensor)]);
    expect(big.graph.nodes.map((n) => n.op)).toEqual(small.graph.nodes.map((n) => n.op));
  });

  it("names a file that changed after its directory was read", () => {
    const file = join(tempDir(), "changing.zip");
    writeSparseZip(file, [
      { name: "a.txt", data: enc.encode("a") },
      { name: "hole.bin", hole: { size: 3 * GiB, head: new Uint8Array(1) } },
    ]);
    const zip = readZip(file, budget());
    writeSparseZip(file, [{ name: "a.txt", data: enc.encode("b") }]);
    expect(() => zip.read("a.txt")).toThrow(/changing\.zip: changed while it was being read/);
  });
});

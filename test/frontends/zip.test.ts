// Regression tests of issue 9 for the zip reader: integrity (CRC, encryption, duplicates, zip64 fields, the end
// record of a nested archive) and memory (bombs, entries sharing a stream, endless files).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ArchiveError } from "../../src/errors.js";
import { MemoryBudget, setLimits } from "../../src/frontends/limits.js";
import { loadPt2 } from "../../src/frontends/pt2/load.js";
import { parseZip, readZip } from "../../src/frontends/zip.js";
import { MODELS, tempDir } from "../helpers.js";
import { readEntries, writeZip } from "./zip-writer.js";

const enc = new TextEncoder();

function refusal(f: () => unknown): ArchiveError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ArchiveError);
    expect((e as Error).message).not.toContain("\n");
    return e as ArchiveError;
  }
  throw new Error("expected an ArchiveError");
}

const file = (bytes: Uint8Array, name = "x.pt2") => {
  const f = join(tempDir(), name);
  writeFileSync(f, bytes);
  return f;
};

describe("zip integrity", () => {
  it("reads what it writes, stored and deflated, with CRCs checked", () => {
    const zip = parseZip(
      writeZip([
        { name: "a", data: enc.encode("hello") },
        { name: "b", data: new Uint8Array(10000).fill(7), deflate: true },
      ]),
      "ok.zip",
    );
    expect(zip.names).toEqual(["a", "b"]);
    expect(zip.text("a")).toBe("hello");
    expect(zip.read("b")?.every((x) => x === 7)).toBe(true);
    expect(zip.read("b")?.length).toBe(10000);
  });

  it("refuses a wrong CRC, stored or deflated", () => {
    for (const deflate of [false, true]) {
      const zip = parseZip(
        writeZip([{ name: "w", data: enc.encode("weights"), crc: 1234, deflate }]),
        "c.zip",
      );
      expect(refusal(() => zip.read("w")).message).toMatch(
        /c\.zip: zip entry w is damaged \(its CRC does not match/,
      );
    }
  });

  it("refuses the encryption flag", () => {
    const e = refusal(() => parseZip(writeZip([{ name: "w", data: enc.encode("x"), flags: 1 }]), "e.zip"));
    expect(e.message).toContain("zip entry w is encrypted");
  });

  it("refuses duplicate names instead of letting the last one win", () => {
    const e = refusal(() =>
      parseZip(
        writeZip([
          { name: "w", data: enc.encode("a") },
          { name: "w", data: enc.encode("b") },
        ]),
        "d.zip",
      ),
    );
    expect(e.message).toContain("two zip entries named w");
  });

  it("refuses entries that share one stream (the overlapping-entry bomb)", () => {
    const big = new Uint8Array(1 << 20);
    const entries = [
      { name: "e0", data: big, deflate: true },
      ...[1, 2, 3, 4, 5, 6, 7].map((i) => ({ name: `e${i}`, data: big, sameAs: 0 })),
    ];
    const e = refusal(() => parseZip(writeZip(entries), "bomb.zip"));
    expect(e.message).toMatch(/zip entries e0 and e1 overlap/);
  });

  it("reads per-entry zip64 sizes and offsets without a zip64 end record", () => {
    const zip = parseZip(
      writeZip([
        { name: "a", data: enc.encode("first") },
        { name: "b", data: enc.encode("second entry"), zip64Extra: true },
      ]),
      "z64.zip",
    );
    expect(zip.text("b")).toBe("second entry");
    expect(zip.size("b")).toBe(12);
  });

  it("reports a truncated .pt2 that holds a nested archive as truncated, not as a bad compression type", () => {
    const inner = writeZip([{ name: "inner.txt", data: enc.encode("x".repeat(100)) }]);
    const entries = readEntries(readFileSync(join(MODELS, "mlp.pt2")));
    const outer = writeZip([
      ...Object.entries(entries).map(([name, data]) => ({ name, data })),
      { name: "mlp/data/sample_inputs/nested.zip", data: inner },
    ]);
    // cut the outer archive inside its central directory, after the nested archive's end record
    const cut = outer.subarray(0, outer.length - 60);
    const e = refusal(() => loadPt2(file(cut)));
    expect(e.code).toMatch(/archive\.(truncated|corrupt)/);
    expect(e.message).not.toMatch(/compression type/);
  });
});

describe("zip memory budget", () => {
  it("refuses an entry that inflates beyond its declared size", () => {
    const zip = parseZip(
      writeZip([{ name: "bomb", data: new Uint8Array(8 << 20), deflate: true, declaredSize: 16 }]),
      "lie.zip",
    );
    expect(refusal(() => zip.read("bomb")).message).toMatch(/inflates beyond its declared 16 bytes/);
  });

  it("inflates only the prefix a tensor needs, charging the budget for it alone", () => {
    const budget = new MemoryBudget((d) => {
      throw new ArchiveError("p.zip", d);
    }, 1 << 20);
    const zip = parseZip(
      writeZip([{ name: "w", data: new Uint8Array(64 << 20), deflate: true }]),
      "p.zip",
      budget,
    );
    const t0 = performance.now();
    expect(zip.read("w", 128)?.length).toBe(128);
    expect(budget.bytesUsed).toBe(128);
    expect(performance.now() - t0).toBeLessThan(2000);
    // the whole entry is over this budget
    expect(refusal(() => zip.read("w")).message).toMatch(/over the memory budget of 1\.0 MiB/);
  });

  it("reads a weight file that is a deflate bomb only as far as its tensor needs", () => {
    setLimits({ maxMemory: 64 << 20 });
    try {
      const entries = readEntries(readFileSync(join(MODELS, "mlp.pt2")));
      const raw = Object.entries(entries).map(([n, data]) =>
        n.endsWith("data/weights/weight_0")
          ? { name: n, data: new Uint8Array(128 << 20), deflate: true } // 128 KiB that inflate to 128 MiB
          : { name: n, data },
      );
      const bytes = writeZip(raw);
      expect(bytes.length).toBeLessThan(1 << 20);
      const t0 = performance.now();
      const m = loadPt2(file(bytes));
      expect(performance.now() - t0).toBeLessThan(3000);
      const w = Object.values(m.graph.weights).find((x) => x.target === "fc1.weight");
      expect(w?.tensor.shape).toEqual([64, 20]);
      expect([...((w?.tensor.data ?? [1]) as Float32Array)].every((x) => x === 0)).toBe(true);
    } finally {
      setLimits({ maxMemory: undefined });
    }
  });

  it("refuses an entry that must be read whole when its declared size is over the budget", () => {
    setLimits({ maxMemory: 2 << 20 });
    try {
      const entries = readEntries(readFileSync(join(MODELS, "mlp.pt2")));
      const padded = (data: Uint8Array) => {
        const out = new Uint8Array(data.length + (8 << 20)).fill(32);
        out.set(data);
        return out;
      };
      const raw = Object.entries(entries).map(([n, data]) =>
        n.endsWith("models/model.json") ? { name: n, data: padded(data), deflate: true } : { name: n, data },
      );
      const e = refusal(() => loadPt2(file(writeZip(raw))));
      expect(e.message).toMatch(
        /zip entry mlp\/models\/model\.json needs 8\.\d MiB, over the memory budget of 2\.0 MiB/,
      );
    } finally {
      setLimits({ maxMemory: undefined });
    }
  });

  it("stops reading /dev/zero at the budget", () => {
    setLimits({ maxMemory: 8 << 20 });
    try {
      const t0 = performance.now();
      const e = refusal(() => readZip("/dev/zero"));
      expect(e.code).toBe("archive.too-large");
      expect(e.message).toMatch(/^\/dev\/zero: is more than 8\.0 MiB, over the memory budget/);
      expect(performance.now() - t0).toBeLessThan(5000);
    } finally {
      setLimits({ maxMemory: undefined });
    }
  });
});

import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { writeNpy } from "../../src/util/npy.js";
import { tempDir, torchc } from "../helpers.js";
import { dynamicArchive } from "./make-dynamic.js";
import { golden, pickRows } from "./rows.js";

describe("torchc with a .pt2 exported with a dynamic batch", () => {
  const archive = dynamicArchive({ name: "mlp", batch: 4, min: 1, max: 8 });
  const { input, output } = golden("mlp");
  const dir = tempDir();
  const save = (name: string, rows: number[]) => {
    const f = join(dir, name);
    writeNpy(f, name.startsWith("x") ? pickRows(input, rows) : pickRows(output, rows));
    return f;
  };

  it("run: any batch in the range, interpreted and compiled, matches PyTorch's rows", () => {
    const x = save("x3.npy", [2, 0, 3]);
    const y = save("y3.npy", [2, 0, 3]);
    for (const extra of [[], ["--compiled"]]) {
      const r = torchc("run", archive, "--input", x, "--expect", y, ...extra);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/float32\[3, 10\].* ok/);
    }
  });

  it("run: a batch outside the exported range names the input file and the range", () => {
    const x = save("x9.npy", [0, 1, 2, 3, 0, 1, 2, 3, 0]);
    const r = torchc("run", archive, "--input", x);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/x9\.npy: dimension 0 is 9, outside the range 1–8/);
  });

  it("run --compiled --pipeline-rows: a batch over the piece size runs in pieces and matches PyTorch's rows", () => {
    const rows = [3, 1, 0, 2, 3, 1, 0];
    const x = save("x7.npy", rows);
    const y = save("y7.npy", rows);
    const r = torchc("run", archive, "--input", x, "--expect", y, "--compiled", "--pipeline-rows", "2");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/float32\[7, 10\].* ok/);
    const c = torchc("compile", archive, "--input-shape", "1x20:2x20:6x20", "--pipeline-rows", "2");
    expect(c.code).toBe(0);
    expect(c.out).toMatch(/host batches over 2 rows run as pipelined pieces of 2/);
  });

  it("--pipeline-rows without a batch range is one clear error", () => {
    const r = torchc("compile", archive, "--input-shape", "4x20", "--pipeline-rows", "2");
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/pipelineRows \(--pipeline-rows\) needs a batch range/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it("compile --input-shape min:opt:max reports the range and its buckets", () => {
    const r = torchc("compile", archive, "--input-shape", "1x20:2x20:6x20");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/dynamic: s0 in 1–6 \(opt 2\) for x \[s0, 20\]; buckets 1, 2, 4, 6/);
  });
});

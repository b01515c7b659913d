import { describe, expect, it } from "vitest";
import { rotateBatch } from "../../src/cli/commands/demo.js";
import { tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { torchc } from "../helpers.js";

describe("torchc demo", () => {
  it("compiles the bundled model, matches PyTorch on two inputs, and shows that other inputs would not match", () => {
    const r = torchc("demo");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    // The compile report: lowered, partitioned, built (not the interpreter).
    expect(r.out).toMatch(/lowering: \d+ → \d+ nodes/);
    expect(r.out).toMatch(/segment 0 {2}engine/);
    expect(r.out).toMatch(/backend reference: segment 0: reference layers/);
    const matches = [...r.out.matchAll(/^ {2}(input .*?)\s+(\d\.\d\de[+-]\d+) {2}match$/gm)];
    expect(matches.map((m) => m[1])).toEqual([
      "input A (tiny_resnet.input.npy)",
      "input B (A with its samples rotated by one)",
      "input A again",
    ]);
    for (const m of matches) expect(Number(m[2])).toBeLessThanOrEqual(1e-4);
    const far = [
      ...r.out.matchAll(/^ {2}(input B|all-zeros input)\s+(\d\.\d\de[+-]\d+) {2}clearly different$/gm),
    ];
    expect(far).toHaveLength(2);
    for (const m of far) expect(Number(m[2])).toBeGreaterThan(1e-2);
    expect(r.out).toMatch(/^ok: the compiled tiny_resnet reproduces PyTorch 2\.11/m);
  });

  it("fails, saying why, on a model whose output barely depends on its input", () => {
    const r = torchc("demo", "--model", "tiny_efficientnet");
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/TOO CLOSE/);
    expect(r.out).toMatch(/tiny_efficientnet's output barely depends on its input/);
  });

  it("names a fixture that does not exist in one line", () => {
    const r = torchc("demo", "--model", "no_such_model");
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: .*no_such_model\.pt2: no such fixture file.*\n$/);
  });

  it("rotates a batch by whole samples, whatever the dtype, and leaves a batch of one alone", () => {
    const x = tensorFromNumbers("float32", [3, 2], [1, 2, 3, 4, 5, 6]);
    expect([...toFloat64Array(rotateBatch(x)!)]).toEqual([3, 4, 5, 6, 1, 2]);
    const ids = tensorFromNumbers("int64", [2, 3], [7, 8, 9, 10, 11, 12]);
    expect([...toFloat64Array(rotateBatch(ids)!)]).toEqual([10, 11, 12, 7, 8, 9]);
    expect(rotateBatch(tensorFromNumbers("float32", [1, 4], [1, 2, 3, 4]))).toBeUndefined();
  });
});

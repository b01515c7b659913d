import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InputError } from "../../src/errors.js";
import { tensorFromNumbers, toFloat64Array } from "../../src/ir/tensor.js";
import { encodeNpy, parseNpy, readNpy } from "../../src/util/npy.js";
import { MODELS } from "../helpers.js";

describe("npy", () => {
  it("reads arrays numpy wrote", () => {
    const x = readNpy(join(MODELS, "tiny_text_encoder.input.npy"));
    expect(x.dtype).toBe("int64");
    expect(x.shape).toEqual([2, 12]);
    const vals = toFloat64Array(x);
    expect(vals.every((v) => Number.isInteger(v) && v >= 0 && v < 50)).toBe(true);
    const y = readNpy(join(MODELS, "mlp.input.npy"));
    expect(y.dtype).toBe("float32");
    expect(y.shape).toEqual([4, 20]);
  });

  it("round-trips every supported dtype", () => {
    for (const dtype of [
      "float32",
      "float16",
      "float64",
      "int64",
      "int32",
      "bool",
      "uint8",
      "int8",
    ] as const) {
      const t = tensorFromNumbers(
        dtype,
        [2, 3],
        [0, 1, 2, 3, 4, 5].map((v) => (dtype === "bool" ? v % 2 : v)),
      );
      const back = parseNpy(encodeNpy(t));
      expect(back.dtype).toBe(dtype);
      expect(back.shape).toEqual([2, 3]);
      expect([...toFloat64Array(back)]).toEqual([...toFloat64Array(t)]);
    }
    const scalar = parseNpy(encodeNpy(tensorFromNumbers("float32", [], [2.5])));
    expect(scalar.shape).toEqual([]);
  });

  it("rejects what it cannot read with a clear message", () => {
    expect(() => parseNpy(new Uint8Array([1, 2, 3]), "x.npy")).toThrow(/x\.npy: not a readable \.npy file/);
    const bytes = encodeNpy(tensorFromNumbers("float32", [4], [1, 2, 3, 4]));
    expect(() => parseNpy(bytes.subarray(0, bytes.length - 3), "cut.npy")).toThrow(/truncated/);
    expect(() => readNpy("/no/such/file.npy")).toThrow(InputError);
  });
});

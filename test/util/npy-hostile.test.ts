// Regression tests of issue 9 for .npy inputs: the header is held to NumPy's rules, dtype names that are
// JavaScript prototype properties are plain unknown dtypes, endless files stop at the budget, and writing into
// a missing folder is one line.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { InputError } from "../../src/errors.js";
import { setLimits } from "../../src/frontends/limits.js";
import { tensorFromNumbers } from "../../src/ir/tensor.js";
import { encodeNpy, parseNpy, readNpy, writeNpy } from "../../src/util/npy.js";
import { tempDir } from "../helpers.js";

/** A version-1 .npy with this header text and `data` bytes of payload. */
function npy(header: string, data = 64): Uint8Array {
  const head = new TextEncoder().encode(`${header}\n`);
  const major = head.length > 65535 ? 2 : 1;
  const pre = major === 1 ? 10 : 12;
  const out = new Uint8Array(pre + head.length + data);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  if (major === 1) new DataView(out.buffer).setUint16(8, head.length, true);
  else new DataView(out.buffer).setUint32(8, head.length, true);
  out.set(head, pre);
  return out;
}

function refusal(bytes: Uint8Array): InputError {
  let caught: unknown;
  try {
    parseNpy(bytes, "x.npy");
  } catch (e) {
    caught = e;
  }
  expect(caught, "expected an InputError").toBeInstanceOf(InputError);
  expect((caught as Error).message).toMatch(/^x\.npy: not a readable \.npy file: /);
  expect((caught as Error).message).not.toContain("\n");
  return caught as InputError;
}

describe("npy headers are held to NumPy's rules", () => {
  it("accepts NumPy's own headers, with either quote and optional trailing comma", () => {
    expect(
      parseNpy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), "x.npy").shape,
    ).toEqual([2, 3]);
    expect(parseNpy(npy('{"descr": "<i8", "fortran_order": False, "shape": (4,)}'), "x.npy").shape).toEqual([
      4,
    ]);
    expect(parseNpy(npy("{'descr': '|b1', 'fortran_order': False, 'shape': ()}"), "x.npy").shape).toEqual([]);
  });

  it("refuses a fractional size", () => {
    expect(refusal(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4.0, 20), }")).message).toMatch(
      /expected a non-negative integer in the shape/,
    );
  });

  it("refuses a descr hidden inside another string", () => {
    expect(refusal(npy("{'x': \"'descr': '<f4'\", 'fortran_order': False, 'shape': (2,)}")).message).toMatch(
      /unexpected key "x"/,
    );
  });

  it("refuses headers over NumPy's 10,000-byte limit", () => {
    const long = `{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }${" ".repeat(65000)}`;
    expect(refusal(npy(long)).message).toMatch(/more than NumPy's limit of 10000/);
  });

  it("refuses duplicate and missing keys, and trailing text", () => {
    expect(
      refusal(npy("{'descr': '<f4', 'descr': '<f8', 'fortran_order': False, 'shape': (2,)}")).message,
    ).toMatch(/appears twice/);
    expect(refusal(npy("{'descr': '<f4', 'fortran_order': False}")).message).toMatch(/has no 'shape'/);
    expect(refusal(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} extra")).message).toMatch(
      /after the dict/,
    );
  });

  for (const name of ["constructor", "__proto__", "toString", "hasOwnProperty"])
    it(`treats the dtype '${name}' as an unknown dtype`, () => {
      expect(refusal(npy(`{'descr': '${name}', 'fortran_order': False, 'shape': (2,)}`)).message).toMatch(
        new RegExp(`dtype "${name}" is not supported`),
      );
    });

  it("refuses a shape whose size overflows, before allocating", () => {
    expect(
      refusal(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4000000000, 4000000000)}")).message,
    ).toMatch(/data is truncated/);
  });

  it("round-trips what it writes", () => {
    const t = tensorFromNumbers("float32", [2, 2], [1, 2, 3, 4]);
    expect(parseNpy(encodeNpy(t)).shape).toEqual([2, 2]);
  });
});

describe("npy files", () => {
  it("stops reading /dev/zero at the budget", () => {
    setLimits({ maxMemory: 4 << 20 });
    try {
      expect(() => readNpy("/dev/zero")).toThrow(
        /^\/dev\/zero: is more than 4\.0 MiB, over the memory budget/,
      );
    } finally {
      setLimits({ maxMemory: undefined });
    }
  });

  it("writing into a missing folder is one line naming the folder", () => {
    const f = join(tempDir(), "no", "such", "out.npy");
    expect(() => writeNpy(f, tensorFromNumbers("float32", [1], [1]))).toThrow(
      /cannot write the output \(the folder .*no\/such does not exist\)$/,
    );
  });
});

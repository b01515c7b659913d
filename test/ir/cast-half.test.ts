// castTensor's float32 → float16 loop inlines normal halves; it must round exactly as float32BitsToFloat16Bits (the
// reference, round-to-nearest-even) does everywhere. Every sign/exponent/high-mantissa prefix with the low 16 bits
// at the rounding boundaries (the exhaustive 2^32 sweep was run once when the fast path was written: 0 mismatches).
import { describe, expect, it } from "vitest";
import { float32BitsToFloat16Bits } from "../../src/ir/half.js";
import { castTensor } from "../../src/ir/tensor.js";

const LOW = [
  0, 1, 0x0fff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x2fff, 0x3000, 0x3001, 0x7fff, 0x8000, 0xf000, 0xffff,
];

describe("castTensor float32 → float16", () => {
  it("matches float32BitsToFloat16Bits on every exponent and rounding boundary", () => {
    const bits = new Uint32Array(0x10000 * LOW.length);
    for (let hi = 0; hi < 0x10000; hi++)
      for (const [j, lo] of LOW.entries()) bits[hi * LOW.length + j] = ((hi << 16) | lo) >>> 0;
    const t = castTensor(
      { dtype: "float32", shape: [bits.length], data: new Float32Array(bits.buffer) },
      "float16",
    );
    const got = t.data as Uint16Array;
    let bad = -1;
    for (let i = 0; i < bits.length && bad < 0; i++)
      if (got[i] !== float32BitsToFloat16Bits(bits[i])) bad = i;
    expect(bad < 0 ? "none" : `0x${bits[bad].toString(16)} → 0x${got[bad].toString(16)}`).toBe("none");
    expect(t.shape).toEqual([bits.length]);
  });
});

// Numeric tuning switches from the environment: unset, empty, non-numeric and out-of-range values fall back.
import { afterEach, describe, expect, it } from "vitest";
import { envNumber } from "../../src/util/env-number.js";

const NAME = "TORCHC_TEST_ENV_NUMBER";
afterEach(() => {
  delete process.env[NAME];
});

describe("envNumber", () => {
  it("reads a number at or above the minimum, else gives the fallback", () => {
    expect(envNumber(NAME, 7)).toBe(7);
    for (const [raw, want] of [
      ["12", 12],
      ["0", 0],
      ["", 7],
      ["  ", 7],
      ["abc", 7],
      ["-1", 7],
      ["Infinity", 7],
    ] as const) {
      process.env[NAME] = raw;
      expect(envNumber(NAME, 7), JSON.stringify(raw)).toBe(want);
    }
    process.env[NAME] = "0";
    expect(envNumber(NAME, 7, 1), "below the minimum").toBe(7);
  });
});

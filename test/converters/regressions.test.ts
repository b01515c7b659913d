import { describe, expect, it } from "vitest";
import { ALL_CASES } from "./cases/index.js";
import { checkCase } from "./harness.js";
import { REGRESSIONS } from "./regressions.js";

describe("kept counterexamples", () => {
  for (const r of REGRESSIONS) {
    it(`${r.op} [${r.converter}]: ${r.note}`, () => {
      const spec = ALL_CASES.find((c) => c.op === r.op && c.converter === r.converter);
      expect(spec, "a regression must belong to a converter that has property cases").toBeDefined();
      checkCase(r.case, r.converter, { inputScaled: spec?.inputScaled });
    });
  }
});

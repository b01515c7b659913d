import { describe, it } from "vitest";
import { ALL_CASES } from "./cases/index.js";
import { FC_ONLY, runProperty } from "./fc-config.js";
import { checkCase } from "./harness.js";
import { REGRESSIONS } from "./regressions.js";

// For every converter candidate: random ops inside its supports() domain convert to a network whose layer
// reference agrees with the aten reference. Kept counterexamples run first, every time.

describe("converter properties", () => {
  for (const c of ALL_CASES) {
    const title = `${c.op} [${c.converter}]`;
    if (FC_ONLY && !title.includes(FC_ONLY)) continue;
    const kept = REGRESSIONS.filter((r) => r.op === c.op && r.converter === c.converter).map((r) => r.case);
    it(title, () =>
      runProperty(title, c.arb, (v) => checkCase(v, c.converter, { inputScaled: c.inputScaled }), kept),
    );
  }
});

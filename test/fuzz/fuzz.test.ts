// Mutation fuzzing of every input format (.pt2, .pt, .npy, .torchc) through the torchc command: each case must
// succeed or exit 1 with one error line; never a stack trace, a signal, more than 20 s or more than 2 GiB.
// `npm test` runs a short seeded run; `npm run test:fuzz` runs TORCHC_FUZZ_CASES (2,400) with a fresh seed.
// Replay a run with TORCHC_FUZZ_SEED=<seed> (and TORCHC_FUZZ_CASES); failing inputs are kept and listed.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FORMATS, formatReport, runFuzz } from "./harness.js";

const cases = Number(process.env.TORCHC_FUZZ_CASES ?? 240);
const seed = Number(process.env.TORCHC_FUZZ_SEED ?? process.env.TORCHC_FC_SEED ?? 1);

describe("mutation fuzzing of every input format", () => {
  it(`${cases} hostile or malformed files each get success or one error line`, {
    timeout: 60_000 + cases * 1000,
  }, async () => {
    const report = await runFuzz({ cases, seed, keep: join(import.meta.dirname, "found") });
    const text = formatReport(report, seed);
    if (report.failures.length > 0 || process.env.TORCHC_FUZZ_CASES) process.stderr.write(`${text}\n`);
    expect(report.failures.map((f) => `${f.format} ${f.seed} ${f.mutator} (${f.file}): ${f.reason}`)).toEqual(
      [],
    );
    for (const f of FORMATS) {
      const c = report.counts[f];
      expect(c.cases).toBeGreaterThanOrEqual(Math.floor(cases / FORMATS.length));
      // the mutations must reach past the first check: some cases load, some are refused
      if (cases >= 200) {
        expect(c.success, `${f}: no mutated file loaded`).toBeGreaterThan(0);
        expect(c.userError, `${f}: no mutated file was refused`).toBeGreaterThan(0);
      }
    }
  });
});

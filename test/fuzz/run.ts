// The mutation fuzzer from the command line:
//   npx tsx test/fuzz/run.ts [--cases 2400] [--seed N] [--keep test/fuzz/found]
// Prints the case counts per format and every failure; exits 1 when any case broke the promise.
import { parseArgs } from "node:util";
import { formatReport, runFuzz } from "./harness.js";

const { values } = parseArgs({
  options: { cases: { type: "string" }, seed: { type: "string" }, keep: { type: "string" } },
});
const seed = Number(values.seed ?? process.env.TORCHC_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const cases = Number(values.cases ?? process.env.TORCHC_FUZZ_CASES ?? 2400);
const t0 = performance.now();
const report = await runFuzz({ cases, seed, keep: values.keep, log: (l) => process.stdout.write(`${l}\n`) });
process.stdout.write(
  `${formatReport(report, seed)}\n  ${((performance.now() - t0) / 1000).toFixed(0)} s in all\n`,
);
process.exitCode = report.failures.length > 0 ? 1 : 0;

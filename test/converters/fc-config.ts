import fc from "fast-check";

/**
 * How the converter properties run. Override with environment variables:
 *   TORCHC_FC_RUNS   runs per converter (default 100)
 *   TORCHC_FC_SEED   fast-check seed: fixed in `npm test`, `random` in `npm run test:fuzz`, or a number to
 *                    replay a failure (printed when a property fails); see test/setup/fast-check-seed.ts
 *   TORCHC_FC_PATH   fast-check path of the shrunk counterexample (printed with the seed)
 *   TORCHC_FC_ONLY   run only properties whose title contains this text
 */
export const FC_RUNS = Number(process.env.TORCHC_FC_RUNS ?? 100);
export const FC_SEED =
  process.env.TORCHC_FC_SEED === undefined ? undefined : Number(process.env.TORCHC_FC_SEED);
export const FC_PATH = process.env.TORCHC_FC_PATH;
export const FC_ONLY = process.env.TORCHC_FC_ONLY;

/** Runs a property; on failure throws with the replay command and the counterexample as JSON. */
export function runProperty<T>(
  title: string,
  arb: fc.Arbitrary<T>,
  check: (value: T) => void,
  examples: readonly T[] = [],
  runs = FC_RUNS,
): void {
  const details = fc.check(
    fc.property(arb, (v) => {
      check(v);
    }),
    {
      numRuns: runs,
      ...(FC_SEED !== undefined ? { seed: FC_SEED } : {}),
      ...(FC_PATH !== undefined ? { path: FC_PATH } : {}),
      examples: examples.map((e) => [e] as [T]),
    },
  );
  if (!details.failed) return;
  const counterexample = details.counterexample ? JSON.stringify(details.counterexample[0]) : "(none)";
  const error =
    details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
  throw new Error(
    [
      `property '${title}' failed after ${details.numRuns} run(s) (${details.numShrinks} shrinks)`,
      `replay: TORCHC_FC_SEED=${details.seed} TORCHC_FC_PATH=${details.counterexamplePath} TORCHC_FC_ONLY='${title}' npx vitest run test/converters`,
      `counterexample (keep it in test/converters/regressions.ts): ${counterexample}`,
      `error: ${error}`,
    ].join("\n"),
  );
}

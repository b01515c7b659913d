/**
 * The fast-check seed for a test run, shared by vitest.config.ts (which resolves it once) and the setup file
 * (which applies it in every worker).
 *
 *   TORCHC_FC_SEED unset     the fixed CI seed below: `npm test` draws the same cases on every run
 *   TORCHC_FC_SEED=random    a fresh seed per run (`npm run test:fuzz`), printed so that a failure can be replayed
 *   TORCHC_FC_SEED=<int>     that seed (replay a failure printed by a property)
 *   TORCHC_FC_RUNS=<int>     runs per property (fast-check's default 100 otherwise)
 */
export const CI_SEED = 20261206;

/** The seed that TORCHC_FC_SEED names; throws on anything that is not an integer or "random". */
export function resolveSeed(value: string | undefined, random: () => number = Math.random): number {
  if (value === undefined || value === "") return CI_SEED;
  if (value === "random") return (Math.floor(random() * 0x1_0000_0000) | 0) ^ (Date.now() | 0);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < -0x8000_0000 || n > 0x7fff_ffff)
    throw new Error(`TORCHC_FC_SEED must be a 32-bit integer or "random", not '${value}'`);
  return n;
}

/** Runs per property from TORCHC_FC_RUNS, or undefined for fast-check's default. */
export function resolveRuns(value: string | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`TORCHC_FC_RUNS must be a positive integer, not '${value}'`);
  return n;
}

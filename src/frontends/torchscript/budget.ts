import { type Limits, limits } from "../limits.js";

/**
 * Budgets for interpreting TorchScript code from an archive: statements executed, loop iterations (all loops
 * together, so loops nested inside loops cannot multiply past it), list lengths and integer sizes. The
 * interpreter runs one model at a time, synchronously, so the counters are per load (`resetScriptBudget`).
 */
export class ScriptBudgetError extends Error {}

let state = fresh();

function fresh(): { steps: number; trips: number; l: Limits } {
  return { steps: 0, trips: 0, l: limits() };
}

export function resetScriptBudget(): void {
  state = fresh();
}

/** One statement executed; a message when the step budget is spent. */
export function chargeStep(): string | undefined {
  if (++state.steps <= state.l.maxScriptSteps) return undefined;
  return `the code ran more than ${state.l.maxScriptSteps} statements at compile time; refusing it (TORCHC_MAX_SCRIPT_STEPS raises the limit)`;
}

/** `n` more loop iterations. */
export function chargeTrips(n: number): void {
  state.trips += n;
  if (state.trips > state.l.maxLoopTrips)
    throw new ScriptBudgetError(
      `the code's loops ran more than ${state.l.maxLoopTrips} iterations in all at compile time; refusing it (TORCHC_MAX_LOOP_TRIPS raises the limit)`,
    );
}

export function checkListLength(n: number): void {
  if (!(n <= state.l.maxListLength))
    throw new ScriptBudgetError(
      `a list of ${n} items is longer than the budget of ${state.l.maxListLength} (TORCHC_MAX_LIST_LENGTH raises the limit)`,
    );
}

const INT64 = 2 ** 63;

/** TorchScript ints are int64: a result outside it (or past a double's exact range) is refused, not rounded. */
export function checkInt(v: number): number {
  if (!Number.isFinite(v) || v >= INT64 || v < -INT64)
    throw new ScriptBudgetError(`the integer ${v} overflows int64`);
  return v;
}

/** `range(lo, hi, step)` as numbers, its length checked before anything is built. */
export function rangeValues(lo: number, hi: number, step: number): number[] {
  if (step === 0) throw new ScriptBudgetError("range() arg 3 must not be zero");
  const n = Math.max(0, step > 0 ? Math.ceil((hi - lo) / step) : Math.ceil((lo - hi) / -step));
  checkListLength(n);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = lo + i * step;
  return out;
}

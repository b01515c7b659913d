import type { OpCase } from "./harness.js";

/**
 * Counterexamples fast-check found, kept as concrete cases (not seeds, which change meaning when a
 * generator changes). properties.test.ts runs each before the random draws of its converter, and
 * regressions.test.ts runs them all on their own.
 */
export interface Regression {
  readonly op: OpCase["op"];
  readonly converter: string;
  /** What went wrong, and what fixed it. */
  readonly note: string;
  readonly case: OpCase;
}

export const REGRESSIONS: readonly Regression[] = [];

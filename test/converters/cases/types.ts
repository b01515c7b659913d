import type fc from "fast-check";
import type { OpName } from "../../../src/ops/index.js";
import type { OpCase } from "../harness.js";

/** The draws for one converter candidate of one op, all inside its supports() domain. */
export interface CaseSpec {
  readonly op: OpName;
  readonly converter: string;
  readonly arb: fc.Arbitrary<OpCase>;
  /** Compare relative to the inputs' magnitude as well (see CheckOptions.inputScaled). */
  readonly inputScaled?: boolean | ((c: OpCase) => number);
}

export function spec(
  op: OpName,
  converter: string,
  arb: fc.Arbitrary<OpCase>,
  inputScaled: boolean | ((c: OpCase) => number) = false,
): CaseSpec {
  return { op, converter, arb, ...(inputScaled ? { inputScaled } : {}) };
}

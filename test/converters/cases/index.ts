import { ACTIVATION_CASES } from "./activation.js";
import { COMPARE_CASES } from "./compare.js";
import { ELEMENTWISE_CASES } from "./elementwise.js";
import type { CaseSpec } from "./types.js";
import { UNARY_CASES } from "./unary.js";

export type { CaseSpec } from "./types.js";

/** Every converter's property cases, family by family. */
export const ALL_CASES: readonly CaseSpec[] = [...ELEMENTWISE_CASES, ...UNARY_CASES, ...ACTIVATION_CASES, ...COMPARE_CASES];

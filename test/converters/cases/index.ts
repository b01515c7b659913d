import { ACTIVATION_CASES } from "./activation.js";
import { COMPARE_CASES } from "./compare.js";
import { CONVOLUTION_CASES } from "./convolution.js";
import { ELEMENTWISE_CASES } from "./elementwise.js";
import { MATMUL_CASES } from "./matmul.js";
import { NORMALIZATION_CASES } from "./normalization.js";
import { POOLING_CASES } from "./pooling.js";
import { ATTENTION_CASES } from "./attention.js";
import { CREATION_CASES } from "./creation.js";
import { INDEXING_CASES } from "./indexing.js";
import { JOIN_CASES } from "./join.js";
import { CAST_CASES, MISC_CASES, PADDING_CASES, RESIZE_CASES } from "./misc.js";
import { REDUCE_CASES } from "./reduce.js";
import { SHAPE_CASES } from "./shape.js";
import { SLICING_CASES } from "./slicing.js";
import { SOFTMAX_CASES } from "./softmax.js";
import type { CaseSpec } from "./types.js";
import { UNARY_CASES } from "./unary.js";

export type { CaseSpec } from "./types.js";

/** Every converter's property cases, family by family. */
export const ALL_CASES: readonly CaseSpec[] = [
  ...ELEMENTWISE_CASES, ...UNARY_CASES, ...ACTIVATION_CASES, ...COMPARE_CASES,
  ...CONVOLUTION_CASES,
  ...MATMUL_CASES,
  ...REDUCE_CASES,
  ...SOFTMAX_CASES,
  ...NORMALIZATION_CASES,
  ...POOLING_CASES,
  ...SHAPE_CASES,
  ...SLICING_CASES,
  ...JOIN_CASES,
  ...INDEXING_CASES,
  ...ATTENTION_CASES,
  ...CREATION_CASES,
  ...CAST_CASES,
  ...PADDING_CASES,
  ...RESIZE_CASES,
  ...MISC_CASES,
];

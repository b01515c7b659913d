import { type DType, isFloating } from "../../../src/ir/dtype.js";
import { functionalVariant, getOp, OP_NAMES, type OpName } from "../../../src/ops/index.js";
import type { OpCase } from "../harness.js";
import { ACTIVATION_CASES } from "./activation.js";
import { ATTENTION_CASES } from "./attention.js";
import { CAST_CASES } from "./cast.js";
import { COMPARE_CASES } from "./compare.js";
import { COMPOSITE_CASES } from "./composite.js";
import { CONVOLUTION_CASES } from "./convolution.js";
import { CREATION_CASES } from "./creation.js";
import { ELEMENTWISE_CASES } from "./elementwise.js";
import { INDEXING_CASES } from "./indexing.js";
import { JOIN_CASES } from "./join.js";
import { MATMUL_CASES } from "./matmul.js";
import { MISC_CASES } from "./misc.js";
import { NORMALIZATION_CASES } from "./normalization.js";
import { PADDING_CASES } from "./padding.js";
import { POOLING_CASES } from "./pooling.js";
import { QUANTIZE_CASES } from "./quantize.js";
import { REDUCE_CASES } from "./reduce.js";
import { RESIZE_CASES } from "./resize.js";
import { SHAPE_CASES } from "./shape.js";
import { SLICING_CASES } from "./slicing.js";
import { SOFTMAX_CASES } from "./softmax.js";
import { type CaseSpec, spec } from "./types.js";
import { UNARY_CASES } from "./unary.js";

export type { CaseSpec } from "./types.js";

const category = (d: DType) => (d === "bool" ? 0 : isFloating(d) ? 2 : 1);

/** PyTorch rejects an in-place op whose result cannot be stored in the written tensor (float into int …). */
function castsInPlace(functional: OpName, c: OpCase): boolean {
  const def = getOp(functional)!;
  const written = c.args[def.schema[0].name];
  if (written?.kind !== "tensor") return false;
  const [out] = def.infer(def.parse(c.args), (v) => c.tensors[v]);
  return category(out.dtype) <= category(c.tensors[written.name].dtype);
}

/**
 * In-place overloads reuse their functional op's cases, with the written tensor renamed to `self`: their
 * converters are derived from the functional ones (src/converters/inplace.ts), so the cases are too.
 */
function inplaceCases(functional: readonly CaseSpec[]): CaseSpec[] {
  const out: CaseSpec[] = [];
  for (const op of OP_NAMES) {
    const f = functionalVariant(op);
    if (!f) continue;
    const first = getOp(f)!.schema[0].name;
    for (const c of functional.filter((x) => x.op === f)) {
      const arb = c.arb
        .filter((v) => castsInPlace(f, v))
        .map((v) => {
          const { [first]: written, ...rest } = v.args;
          return { ...v, op, args: { self: written, ...rest } };
        });
      out.push(spec(op, c.converter, arb, c.inputScaled));
    }
  }
  return out;
}

/** Every converter's property cases, family by family. */
const FUNCTIONAL_CASES: readonly CaseSpec[] = [
  ...ELEMENTWISE_CASES,
  ...UNARY_CASES,
  ...COMPOSITE_CASES,
  ...ACTIVATION_CASES,
  ...COMPARE_CASES,
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
  ...QUANTIZE_CASES,
];

export const ALL_CASES: readonly CaseSpec[] = [...FUNCTIONAL_CASES, ...inplaceCases(FUNCTIONAL_CASES)];

import fc from "fast-check";
import type { OpName } from "../../../src/ops/index.js";
import { B, D, dimArb, I, NONE, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import { type CaseSpec, spec } from "./types.js";

function softmaxCase(op: OpName, flavour: "dtype" | "half") {
  return shapeArb(0, 4).chain((s) =>
    fc.tuple(tensor(s, "float32", { min: -8, max: 8 }), dimArb(s.length), fc.boolean()).map(([x, d, flag]) =>
      opCase(
        op,
        {
          self: T("x"),
          dim: I(d),
          ...(flavour === "dtype" ? { dtype: flag ? D("float32") : NONE } : { half_to_float: B(false) }),
        },
        { x },
      ),
    ),
  );
}

export const SOFTMAX_CASES: CaseSpec[] = [
  spec("aten.softmax.int", "softmax", softmaxCase("aten.softmax.int", "dtype")),
  spec("aten._softmax.default", "softmax", softmaxCase("aten._softmax.default", "half")),
  spec("aten.log_softmax.int", "log_softmax", softmaxCase("aten.log_softmax.int", "dtype")),
  spec("aten._log_softmax.default", "log_softmax", softmaxCase("aten._log_softmax.default", "half")),
];

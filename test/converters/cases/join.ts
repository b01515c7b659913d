import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import { dimArb, I, opCase, shapeArb, Ts, tensor } from "../arbitraries.js";
import type { TensorSpec } from "../harness.js";
import { type CaseSpec, spec } from "./types.js";

const dtypes = fc.constantFrom<DType[]>(["float32"], ["int64"], ["int32", "float32"], ["bool", "int64"]);

export const JOIN_CASES: CaseSpec[] = [
  spec(
    "aten.cat.default",
    "concatenation",
    fc
      .tuple(shapeArb(1, 4), fc.integer({ min: 1, max: 3 }), dtypes, fc.boolean())
      .chain(([s, n, ds, legacyEmpty]) =>
        dimArb(s.length).chain((d) => {
          const axis = d < 0 ? d + s.length : d;
          return fc.array(fc.integer({ min: 0, max: 3 }), { minLength: n, maxLength: n }).chain((lens) =>
            fc
              .tuple(
                ...lens.map((len, i) =>
                  tensor(
                    s.map((x, j) => (j === axis ? len : x)),
                    ds[i % ds.length],
                  ),
                ),
              )
              .map((parts) => {
                const tensors: Record<string, TensorSpec> = {};
                const names = parts.map((p, i) => {
                  tensors[`t${i}`] = p;
                  return `t${i}`;
                });
                if (legacyEmpty && s.length > 1) {
                  tensors.e = { dtype: ds[0], shape: [0], data: [] };
                  names.splice(1, 0, "e");
                }
                return opCase("aten.cat.default", { tensors: Ts(...names), dim: I(d) }, tensors);
              }),
          );
        }),
      ),
  ),
  spec(
    "aten.stack.default",
    "stack",
    fc.tuple(shapeArb(0, 3), fc.integer({ min: 1, max: 3 }), dtypes).chain(([s, n, ds]) =>
      fc
        .tuple(
          dimArb(s.length + 1),
          fc.tuple(...Array.from({ length: n }, (_, i) => tensor(s, ds[i % ds.length]))),
        )
        .map(([d, parts]) => {
          const tensors: Record<string, TensorSpec> = {};
          parts.forEach((p, i) => {
            tensors[`t${i}`] = p;
          });
          return opCase("aten.stack.default", { tensors: Ts(...Object.keys(tensors)), dim: I(d) }, tensors);
        }),
    ),
  ),
];

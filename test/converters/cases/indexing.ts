import fc from "fast-check";
import type { DType } from "../../../src/ir/dtype.js";
import type { Arg } from "../../../src/ir/graph.js";
import { broadcastableTo, dimArb, I, numel, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import type { TensorSpec } from "../harness.js";
import { type CaseSpec, spec } from "./types.js";

const indexDtype = fc.constantFrom<DType>("int64", "int32");

/** Valid indices for an axis of `size`, negative ones included. */
function indices(shape: number[], size: number, dtype: DType): fc.Arbitrary<TensorSpec> {
  return fc
    .array(fc.integer({ min: -size, max: size - 1 }), { minLength: numel(shape), maxLength: numel(shape) })
    .map((data) => ({ dtype, shape, data }));
}

export const INDEXING_CASES: CaseSpec[] = [
  spec(
    "aten.embedding.default",
    "gather",
    fc
      .tuple(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 4 }),
        shapeArb(0, 3),
        indexDtype,
        fc.boolean(),
      )
      .chain(([n, d, s, dt, constant]) =>
        fc
          .tuple(
            tensor([n, d], "float32", {}, constant),
            indices(s, n, dt).map((t) => ({ ...t, data: t.data.map((v) => (v < 0 ? v + n : v)) })),
          )
          .map(([w, ix]) =>
            opCase("aten.embedding.default", { weight: T("w"), indices: T("i") }, { w, i: ix }),
          ),
      ),
  ),
  spec(
    "aten.index_select.default",
    "gather",
    fc
      .tuple(shapeArb(1, 3), indexDtype, fc.integer({ min: 0, max: 4 }))
      .chain(([s, dt, k]) =>
        dimArb(s.length).chain((d) =>
          fc
            .tuple(tensor(s), indices([k], s[d < 0 ? d + s.length : d], dt))
            .map(([x, ix]) =>
              opCase("aten.index_select.default", { self: T("x"), dim: I(d), index: T("i") }, { x, i: ix }),
            ),
        ),
      ),
  ),
  spec(
    "aten.gather.default",
    "gather-elements",
    fc.tuple(shapeArb(1, 3), indexDtype).chain(([s, dt]) =>
      dimArb(s.length).chain((d) => {
        const axis = d < 0 ? d + s.length : d;
        return fc
          .tuple(...s.map((n, i) => fc.integer({ min: i === axis ? 1 : 1, max: i === axis ? 4 : n })))
          .chain((is) =>
            fc.tuple(
              tensor(s),
              indices(is, s[axis], dt).map((t) => ({
                ...t,
                data: t.data.map((v) => (v < 0 ? v + s[axis] : v)),
              })),
            ),
          )
          .map(([x, ix]) =>
            opCase("aten.gather.default", { self: T("x"), dim: I(d), index: T("i") }, { x, i: ix }),
          );
      }),
    ),
  ),
  spec(
    "aten.index.Tensor",
    "index-gather",
    fc.tuple(shapeArb(1, 4, 3), indexDtype, shapeArb(0, 2, 3)).chain(([s, dt, b]) =>
      fc
        .array(fc.boolean(), { minLength: s.length, maxLength: s.length })
        .filter((mask) => mask.some(Boolean))
        .chain((mask) => {
          const last = mask.lastIndexOf(true);
          return fc
            .tuple(
              tensor(s),
              ...mask.map((m, i) =>
                m ? broadcastableTo(b).chain((bs) => indices(bs, s[i], dt)) : fc.constant(null),
              ),
            )
            .map(([x, ...ixs]) => {
              const tensors: Record<string, TensorSpec> = { x };
              const names: (string | null)[] = ixs.slice(0, last + 1).map((t, i) => {
                if (t === null) return null;
                tensors[`i${i}`] = t as TensorSpec;
                return `i${i}`;
              });
              const indicesArg: Arg = { kind: "tensors", names };
              return opCase("aten.index.Tensor", { self: T("x"), indices: indicesArg }, tensors);
            });
        }),
    ),
  ),
];

import fc from "fast-check";
import { broadcastableTo, F, I, opCase, shapeArb, T, tensor } from "../arbitraries.js";
import { type CaseSpec, spec } from "./types.js";

const dim = fc.integer({ min: 1, max: 4 });

/** torch.matmul operands of every rank combination 1..4, batch dims broadcasting. */
const matmulShapes = fc
  .tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 4 }), dim, dim, dim, shapeArb(0, 2, 3))
  .chain(([ra, rb, m, k, n, batch]) =>
    fc.tuple(broadcastableTo(batch), fc.boolean()).map(([b2, swap]) => {
      const [ba, bb] = swap ? [b2, batch] : [batch, b2];
      const a = ra === 1 ? [k] : [...ba.slice(Math.max(0, ba.length - (ra - 2))), m, k];
      const b = rb === 1 ? [k] : [...bb.slice(Math.max(0, bb.length - (rb - 2))), k, n];
      return [a, b] as [number[], number[]];
    }),
  );

export const MATMUL_CASES: CaseSpec[] = [
  spec(
    "aten.mm.default",
    "matmul",
    fc
      .tuple(dim, dim, dim, fc.constantFrom("float32" as const, "int64" as const))
      .chain(([m, k, n, d]) =>
        fc
          .tuple(tensor([m, k], d), tensor([k, n], d))
          .map(([a, b]) => opCase("aten.mm.default", { self: T("a"), mat2: T("b") }, { a, b })),
      ),
  ),
  spec(
    "aten.bmm.default",
    "matmul",
    fc
      .tuple(dim, dim, dim, dim)
      .chain(([bs, m, k, n]) =>
        fc
          .tuple(tensor([bs, m, k]), tensor([bs, k, n]))
          .map(([a, b]) => opCase("aten.bmm.default", { self: T("a"), mat2: T("b") }, { a, b })),
      ),
  ),
  spec(
    "aten.matmul.default",
    "matmul",
    matmulShapes.chain(([sa, sb]) =>
      fc
        .tuple(tensor(sa), tensor(sb))
        .map(([a, b]) => opCase("aten.matmul.default", { self: T("a"), other: T("b") }, { a, b })),
    ),
  ),
  spec(
    "aten.linear.default",
    "linear",
    fc
      .tuple(shapeArb(0, 3, 3), dim, dim, fc.boolean(), fc.boolean())
      .chain(([lead, k, n, bias, constant]) =>
        fc
          .tuple(
            tensor([...lead, k]),
            tensor([n, k], "float32", {}, constant),
            tensor([n], "float32", {}, constant),
          )
          .map(([x, w, b]) =>
            opCase(
              "aten.linear.default",
              { input: T("x"), weight: T("w"), ...(bias ? { bias: T("b") } : {}) },
              bias ? { x, w, b } : { x, w },
            ),
          ),
      ),
  ),
  spec(
    "aten.addmm.default",
    "addmm",
    fc
      .tuple(dim, dim, dim, fc.constantFrom(1, 0, 0.5, 2), fc.constantFrom(1, -1, 0.5))
      .chain(([m, k, n, beta, alpha]) =>
        fc.tuple(broadcastableTo([m, n]), tensor([m, k]), tensor([k, n])).chain(([cs, a, b]) =>
          tensor(cs).map((c) =>
            opCase(
              "aten.addmm.default",
              {
                self: T("c"),
                mat1: T("a"),
                mat2: T("b"),
                beta: Number.isInteger(beta) ? I(beta) : F(beta),
                alpha: Number.isInteger(alpha) ? I(alpha) : F(alpha),
              },
              { c, a, b },
            ),
          ),
        ),
      ),
  ),
];

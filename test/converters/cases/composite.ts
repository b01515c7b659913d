import fc from "fast-check";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { B, broadcastPair, F, I, Is, NONE, opCase, S, shapeArb, T, Ts, tensor } from "../arbitraries.js";
import { type CaseSpec, spec } from "./types.js";

const addc = (op: OpName, divide: boolean) =>
  broadcastPair(0, 3).chain(([s1, s2]) =>
    fc
      .tuple(
        tensor(s1),
        tensor(s2),
        tensor(s2, "float32", divide ? { awayFromZero: 0.5 } : {}),
        fc.constantFrom(1, -0.5, 2.5),
      )
      .map(([x, a, b, v]) =>
        opCase(op, { self: T("x"), tensor1: T("a"), tensor2: T("b"), value: F(v) }, { x, a, b }),
      ),
  );

const vectorNorm = shapeArb(1, 3).chain((s) =>
  fc
    .tuple(
      tensor(s),
      fc.constantFrom(2, 1, 0, 3, 0.5, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
      fc.option(
        fc.uniqueArray(fc.integer({ min: 0, max: s.length - 1 }), { minLength: 1, maxLength: s.length }),
        {
          nil: null,
        },
      ),
      fc.boolean(),
    )
    .map(([x, ord, dim, keepdim]) =>
      opCase(
        "aten.linalg_vector_norm.default",
        { self: T("x"), ord: F(ord), dim: dim === null ? NONE : Is(...dim), keepdim: B(keepdim) },
        { x },
      ),
    ),
);

/** Equations real networks use (attention, bilinear pooling, MaxViT's relative attention) and general ones. */
const EINSUMS: [string, number][] = [
  ["ij,jk->ik", 2],
  ["bij,bjk->bik", 3],
  ["bhqd,bhkd->bhqk", 4],
  ["bhqk,bhkd->bqhd", 4],
  ["bnc,bmc->bnm", 3],
  ["i,j->ij", 1],
  ["ij->ji", 1],
  ["ijk->ki", 1],
  ["ab,bc,cd->ad", 3],
  ["...ij,...jk->...ik", 2],
  ["bij,bjk", 2],
  ["ii->i", 1],
  ["bii,bi->bi", 2],
];

const LETTERS = "abcdefghijklmnopqrstuvwxyz";

const einsum = fc.constantFrom(...EINSUMS).chain(([eq]) => {
  const terms = eq.split("->")[0].split(",");
  // one size per label; an ellipsis stands for two dims (broadcast: the first operand's outer one is 1)
  return fc
    .tuple(
      fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 26, maxLength: 26 }),
      fc.integer({ min: 1, max: 3 }),
    )
    .chain(([sizes, outer]) => {
      const shapeOf = (term: string, k: number) =>
        term
          .split("...")
          .flatMap((part, i) => [
            ...(i > 0 ? (k === 0 ? [1, 2] : [outer, 2]) : []),
            ...[...part].map((l) => sizes[LETTERS.indexOf(l)]),
          ]);
      const shapes = terms.map(shapeOf);
      return fc.tuple(...shapes.map((s) => tensor(s))).map((ts) => {
        const tensors = Object.fromEntries(ts.map((t, i) => [`x${i}`, t]));
        return opCase(
          "aten.einsum.default",
          { equation: S(eq), tensors: Ts(...ts.map((_, i) => `x${i}`)) },
          tensors,
        );
      });
    });
});

const asStrided = fc
  .tuple(shapeArb(1, 3, 4, 1), fc.constantFrom<"view" | "expand" | "gather">("view", "expand", "gather"))
  .chain(([s, kind]) => {
    const n = s.reduce((a, d) => a * d, 1);
    const contiguous = (sz: number[]) => {
      const st = new Array<number>(sz.length);
      let p = 1;
      for (let i = sz.length - 1; i >= 0; i--) {
        st[i] = p;
        p *= sz[i];
      }
      return st;
    };
    let args: fc.Arbitrary<{ size: number[]; stride: number[]; offset: number }>;
    if (kind === "view") args = fc.constant({ size: [n], stride: [1], offset: 0 });
    else if (kind === "expand")
      args = fc
        .integer({ min: 1, max: 3 })
        .map((r) => ({ size: [r, ...s], stride: [0, ...contiguous(s)], offset: 0 }));
    else
      args = fc
        .tuple(
          fc.integer({ min: 1, max: 3 }),
          fc.integer({ min: 1, max: 3 }),
          fc.integer({ min: 0, max: 3 }),
          fc.integer({ min: 0, max: 2 }),
        )
        .filter(([r, c, sr, off]) => off + (r - 1) * sr + (c - 1) < n)
        .map(([r, c, sr, off]) => ({ size: [r, c], stride: [sr, 1], offset: off }));
    return fc.tuple(tensor(s), args).map(([x, a]) =>
      opCase(
        "aten.as_strided.default",
        {
          self: T("x"),
          size: Is(...a.size),
          stride: Is(...a.stride),
          storage_offset: { kind: "int", value: a.offset },
        },
        { x },
      ),
    );
  });

function aaCase(op: OpName, vec: boolean) {
  return fc
    .tuple(
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 1, max: 9 }),
      fc.integer({ min: 1, max: 9 }),
      fc.boolean(),
    )
    .chain(([h, w, oh, ow, align]) =>
      tensor([1, 2, h, w]).map((x) => {
        const args: Record<string, Arg> = vec
          ? { input: T("x"), output_size: Is(oh, ow), align_corners: B(align), scale_factors: NONE }
          : { self: T("x"), output_size: Is(oh, ow), align_corners: B(align) };
        return opCase(op, args, { x });
      }),
    );
}

/** repeat_interleave with an int count, along a dim or over the flattened input (dim None). */
const repeatInterleave = shapeArb(1, 3, 4).chain((s) =>
  fc
    .tuple(
      fc.integer({ min: 0, max: 3 }),
      fc.option(fc.integer({ min: -s.length, max: s.length - 1 }), { nil: null }),
    )
    .chain(([repeats, dim]) =>
      tensor(s).map((x) =>
        opCase(
          "aten.repeat_interleave.self_int",
          { self: T("x"), repeats: I(repeats), dim: dim === null ? NONE : I(dim) },
          { x },
        ),
      ),
    ),
);

const sliceScatter = shapeArb(1, 3, 5).chain((s) =>
  fc
    .tuple(
      fc.integer({ min: 0, max: s.length - 1 }),
      fc.option(fc.integer({ min: -6, max: 6 }), { nil: null }),
      fc.option(fc.integer({ min: -6, max: 6 }), { nil: null }),
      fc.integer({ min: 1, max: 3 }),
    )
    .chain(([dim, start, end, step]) => {
      const n = s[dim];
      const clamp = (v: number | null, d: number) =>
        v === null ? d : Math.min(Math.max(v < 0 ? v + n : v, 0), n);
      const lo = clamp(start, 0);
      const hi = Math.max(clamp(end, n), lo);
      const len = Math.ceil((hi - lo) / step);
      return fc.tuple(tensor(s), tensor(s.map((d, i) => (i === dim ? len : d)))).map(([x, src]) =>
        opCase(
          "aten.slice_scatter.default",
          {
            self: T("x"),
            src: T("src"),
            dim: { kind: "int", value: dim },
            start: start === null ? NONE : { kind: "int", value: start },
            end: end === null ? NONE : { kind: "int", value: end },
            step: { kind: "int", value: step },
          },
          { x, src },
        ),
      );
    }),
);

const selectScatter = shapeArb(1, 3, 4).chain((s) =>
  fc
    .tuple(fc.integer({ min: 0, max: s.length - 1 }), fc.integer({ min: 0, max: 3 }), fc.boolean())
    .chain(([dim, i, neg]) => {
      const index = (i % s[dim]) - (neg ? s[dim] : 0);
      return fc.tuple(tensor(s), tensor(s.filter((_, d) => d !== dim))).map(([x, src]) =>
        opCase(
          "aten.select_scatter.default",
          {
            self: T("x"),
            src: T("src"),
            dim: { kind: "int", value: dim },
            index: { kind: "int", value: index },
          },
          { x, src },
        ),
      );
    }),
);

export const COMPOSITE_CASES: CaseSpec[] = [
  spec("aten.slice_scatter.default", "scatter-select", sliceScatter),
  spec("aten.select_scatter.default", "scatter-select", selectScatter),
  spec("aten.addcmul.default", "addcmul", addc("aten.addcmul.default", false)),
  spec("aten.addcdiv.default", "addcdiv", addc("aten.addcdiv.default", true)),
  spec("aten.linalg_vector_norm.default", "vector-norm", vectorNorm, true),
  spec("aten.einsum.default", "einsum-bmm", einsum, true),
  spec("aten.as_strided.default", "as-strided", asStrided),
  spec(
    "aten._upsample_bilinear2d_aa.default",
    "bilinear-aa-matmul",
    aaCase("aten._upsample_bilinear2d_aa.default", false),
    true,
  ),
  spec(
    "aten._upsample_bilinear2d_aa.vec",
    "bilinear-aa-matmul",
    aaCase("aten._upsample_bilinear2d_aa.vec", true),
    true,
  ),
  spec(
    "aten._upsample_bicubic2d_aa.default",
    "bicubic-aa-matmul",
    aaCase("aten._upsample_bicubic2d_aa.default", false),
    true,
  ),
  spec(
    "aten._upsample_bicubic2d_aa.vec",
    "bicubic-aa-matmul",
    aaCase("aten._upsample_bicubic2d_aa.vec", true),
    true,
  ),
  spec(
    "aten.upsample_bicubic2d.default",
    "bicubic-matmul",
    aaCase("aten.upsample_bicubic2d.default", false),
    true,
  ),
  spec("aten.upsample_bicubic2d.vec", "bicubic-matmul", aaCase("aten.upsample_bicubic2d.vec", true), true),
  spec("aten.repeat_interleave.self_int", "repeat-interleave-broadcast", repeatInterleave),
];

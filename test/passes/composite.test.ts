// The composite ops' decompositions (src/passes/decompositions/composite.ts) through the default pipeline: the
// lowered graph holds only core ops and computes what the op's own reference computes (two independent
// computations: the op's float64 definition, and the core ops' references).
import { describe, expect, it } from "vitest";
import { DEFAULT_REGISTRY, graphContext, selectConverter } from "../../src/converters/index.js";
import type { Arg } from "../../src/ir/graph.js";
import { nonCoreOps } from "../../src/passes/core-ops.js";
import { defaultPipeline } from "../../src/passes/pipeline.js";
import { expectSameResults, float, ints, lower, none, opsOf, TestGraph } from "./graphs.js";

const S = (value: string): Arg => ({ kind: "string", value });
const B = (value: boolean): Arg => ({ kind: "bool", value });
const Ts = (...names: string[]): Arg => ({ kind: "tensors", names });

function lowersToCore(build: (g: TestGraph) => string, rtol = 1e-5, allowed: string[] = []) {
  const g = new TestGraph();
  const graph = g.build(build(g));
  const { graph: out } = lower(graph, ...defaultPipeline());
  expect([...nonCoreOps(out).keys()].filter((o) => !allowed.includes(o))).toEqual([]);
  expectSameResults(graph, out, rtol);
  return out;
}

describe("composite decompositions", () => {
  it("addcmul / addcdiv with broadcasting and a value", () => {
    lowersToCore((g) => {
      const x = g.input("x", [2, 3]);
      const a = g.input("a", [3]);
      const b = g.input("b", [2, 1]);
      const m = g.node("aten.addcmul.default", { self: x, tensor1: a, tensor2: b, value: float(0.3) });
      return g.node("aten.addcdiv.default", { self: m, tensor1: x, tensor2: m, value: float(-2) });
    });
  });

  for (const ord of [2, 1, 0, 3, 0.5, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
    for (const dim of [null, [1], [0, 2]] as const) {
      it(`linalg_vector_norm ord=${ord} dim=${JSON.stringify(dim)}`, () => {
        lowersToCore(
          (g) =>
            g.node("aten.linalg_vector_norm.default", {
              self: g.input("x", [2, 3, 4]),
              ord: float(ord),
              dim: dim === null ? none : ints([...dim]),
              keepdim: B(dim?.length === 1),
            }),
          1e-5,
          ord === 0 ? ["aten.ne.Scalar"] : [], // the count of nonzeros needs a comparison
        );
      });
    }
  }

  const einsums: [string, number[][]][] = [
    [
      "ij,jk->ik",
      [
        [3, 4],
        [4, 5],
      ],
    ],
    [
      "bij,bjk->bik",
      [
        [2, 3, 4],
        [2, 4, 5],
      ],
    ],
    [
      "bhqd,bhkd->bhqk",
      [
        [2, 3, 4, 5],
        [2, 3, 6, 5],
      ],
    ],
    [
      "bhqk,bhkd->bqhd",
      [
        [2, 3, 4, 6],
        [2, 3, 6, 5],
      ],
    ],
    [
      "ij,jk",
      [
        [3, 4],
        [4, 5],
      ],
    ],
    ["i,j->ij", [[3], [4]]],
    ["ij->ji", [[3, 4]]],
    ["ijk->j", [[2, 3, 4]]],
    [
      "...ij,...jk->...ik",
      [
        [2, 1, 3, 4],
        [5, 4, 2],
      ],
    ],
    [
      "bnc,bmc->bnm",
      [
        [2, 7, 8],
        [2, 5, 8],
      ],
    ],
    ["i,i->", [[5], [5]]],
    [
      "ab,bc,cd->ad",
      [
        [2, 3],
        [3, 4],
        [4, 5],
      ],
    ],
    [
      "abc,cd,ae->bde",
      [
        [2, 3, 4],
        [4, 5],
        [2, 6],
      ],
    ],
  ];
  for (const [eq, shapes] of einsums) {
    it(`einsum ${eq} ${JSON.stringify(shapes)}`, () => {
      const out = lowersToCore((g) =>
        g.node("aten.einsum.default", {
          equation: S(eq),
          tensors: Ts(...shapes.map((s, i) => g.input(`x${i}`, s))),
        }),
      );
      expect(opsOf(out)).not.toContain("aten.einsum.default");
    });
  }

  for (const [eq, shapes] of [
    ["ii->i", [[3, 3]]],
    ["ii", [[4, 4]]],
    [
      "bii,bi->bi",
      [
        [2, 3, 3],
        [2, 3],
      ],
    ],
    [
      "iij,jk->ik",
      [
        [3, 3, 4],
        [4, 2],
      ],
    ],
  ] as [string, number[][]][]) {
    it(`einsum with a diagonal ${eq} ⇒ a constant gather, then bmm`, () => {
      const out = lowersToCore(
        (g) =>
          g.node("aten.einsum.default", {
            equation: S(eq),
            tensors: Ts(...shapes.map((s, i) => g.input(`x${i}`, s))),
          }),
        1e-5,
        ["aten.index.Tensor"],
      );
      expect(opsOf(out)).toContain("aten.index.Tensor");
    });
  }

  const strided: [number[], number[], number, string[]][] = [
    [[4, 3], [3, 1], 0, ["aten.view.default"]],
    [[2, 3, 4], [0, 4, 1], 0, ["aten.view.default", "aten.expand.default"]],
    [[2, 2], [1, 4], 1, ["aten.view.default", "aten.index.Tensor"]],
    [[3, 3], [2, 1], 2, ["aten.view.default", "aten.index.Tensor"]],
  ];
  for (const [size, stride, offset, ops] of strided) {
    it(`as_strided size=${size} stride=${stride} offset=${offset} ⇒ ${ops.join(" + ")}`, () => {
      const g = new TestGraph();
      const x = g.input("x", [3, 4]);
      const r = g.node("aten.relu.default", { self: x });
      const y = g.node("aten.as_strided.default", {
        self: r,
        size: ints(size),
        stride: ints(stride),
        storage_offset: { kind: "int", value: offset },
      });
      const graph = g.build(y);
      const { graph: out } = lower(graph, ...defaultPipeline());
      expect(opsOf(out).filter((o) => o !== "aten.relu.default")).toEqual(ops);
      expectSameResults(graph, out);
    });
  }

  it("as_strided of a permuted view is left to LibTorch (it reads the base's storage in PyTorch)", () => {
    const g = new TestGraph();
    const x = g.input("x", [3, 4]);
    const p = g.node("aten.permute.default", { self: x, dims: ints([1, 0]) });
    const y = g.node("aten.as_strided.default", { self: p, size: ints([2, 2]), stride: ints([1, 4]) });
    const graph = g.build(y);
    const { graph: out } = lower(graph, ...defaultPipeline());
    expect(opsOf(out)).toContain("aten.as_strided.default");
    const node = out.nodes.find((n) => n.op === "aten.as_strided.default")!;
    const sel = selectConverter(DEFAULT_REGISTRY, node, graphContext(out));
    expect(sel.ok).toBe(false);
    expect(JSON.stringify(sel)).toMatch(/base storage/);
  });

  it("slice_scatter and select_scatter ⇒ where over constant maps", () => {
    lowersToCore(
      (g) => {
        const x = g.input("x", [4, 6]);
        const s = g.node("aten.slice_scatter.default", {
          self: x,
          src: g.input("s", [4, 2]),
          dim: { kind: "int", value: 1 },
          start: { kind: "int", value: 1 },
          end: { kind: "int", value: -1 },
          step: { kind: "int", value: 3 },
        });
        return g.node("aten.select_scatter.default", {
          self: s,
          src: g.input("r", [6]),
          dim: { kind: "int", value: 0 },
          index: { kind: "int", value: 2 },
        });
      },
      1e-6,
      ["aten.index.Tensor"],
    );
  });

  for (const [opName, args] of [
    ["aten._upsample_bilinear2d_aa.default", { output_size: ints([4, 3]), align_corners: B(false) }],
    ["aten._upsample_bicubic2d_aa.default", { output_size: ints([4, 3]), align_corners: B(false) }],
    ["aten._upsample_bicubic2d_aa.default", { output_size: ints([12, 5]), align_corners: B(true) }],
    ["aten.upsample_bicubic2d.default", { output_size: ints([14, 3]), align_corners: B(false) }],
    ["aten.upsample_bicubic2d.default", { output_size: ints([5, 11]), align_corners: B(true) }],
  ] as const) {
    it(`${opName} ${JSON.stringify(args.output_size)} ⇒ two linears with constant weights`, () => {
      const out = lowersToCore((g) => g.node(opName, { self: g.input("x", [2, 3, 9, 7]), ...args }));
      expect(opsOf(out).filter((o) => o === "aten.linear.default")).toHaveLength(2);
    });
  }
  for (const dim of [1, -1, null]) {
    it(`repeat_interleave.self_int dim=${dim} ⇒ reshape, expand, reshape`, () => {
      const out = lowersToCore((g) =>
        g.node("aten.repeat_interleave.self_int", {
          self: g.input("x", [2, 3, 4]),
          repeats: { kind: "int", value: 3 },
          dim: dim === null ? none : { kind: "int", value: dim },
        }),
      );
      expect(opsOf(out)).toContain("aten.expand.default");
    });
  }
  it("_upsample_bilinear2d_aa.vec with scale factors", () => {
    lowersToCore((g) =>
      g.node("aten._upsample_bilinear2d_aa.vec", {
        input: g.input("x", [1, 2, 14, 10]),
        output_size: none,
        align_corners: B(false),
        scale_factors: { kind: "floats", value: [0.5, 0.3] },
      }),
    );
  });
});

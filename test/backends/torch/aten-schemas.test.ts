// Ops outside torchc's catalogue reach LibTorch through PyTorch's own schemas (src/backends/torch/aten-schemas.ts):
// the dispatcher stack is built from the schema (defaults filled, kinds encoded) and the result types come from
// the graph. Ops the stack cannot carry are refused with the argument named.
import { describe, expect, it } from "vitest";
import { ATEN_SCHEMAS, ATEN_SCHEMAS_TORCH } from "../../../src/backends/torch/aten-schemas.js";
import { formatPlan } from "../../../src/backends/torch/encoded-arg.js";
import { callSchema, schemaFromText } from "../../../src/backends/torch/op-schema.js";
import { planFallback } from "../../../src/backends/torch/plan-segment.js";
import { GraphBuilder } from "../../../src/ir/builder.js";
import type { Arg, TensorType } from "../../../src/ir/graph.js";

const f32 = (...shape: number[]): TensorType => ({ dtype: "float32", shape });
const T = (name: string): Arg => ({ kind: "tensor", name });

/** A one-node graph whose output types are given (as a .pt2 archive records them). */
function graphOf(
  op: string,
  inputs: Record<string, TensorType>,
  args: Record<string, Arg>,
  outs: TensorType[],
) {
  const b = new GraphBuilder();
  for (const [n, t] of Object.entries(inputs)) b.addInput(n, t);
  const names = b.addNode(
    op,
    args,
    outs.map((type, i) => ({ name: `out${i}`, type })),
    {},
    "n",
  );
  b.setOutputs(names);
  return b.build();
}

function planned(
  op: string,
  inputs: Record<string, TensorType>,
  args: Record<string, Arg>,
  outs: TensorType[],
) {
  const plan = planFallback(graphOf(op, inputs, args, outs));
  if (!("steps" in plan)) throw new Error(plan.unsupported.map((u) => u.reason).join("; "));
  return plan;
}

describe("aten overloads outside the op catalogue", () => {
  it("plans pixel_shuffle, topk (two results, defaults filled) and slice_scatter (optional ints)", () => {
    const ps = planned(
      "aten.pixel_shuffle.default",
      { x: f32(1, 8, 3, 3) },
      { self: T("x"), upscale_factor: { kind: "int", value: 2 } },
      [f32(1, 2, 6, 6)],
    );
    expect(formatPlan(ps.steps[0].call)).toBe("aten::pixel_shuffle(self=%x, upscale_factor=2)");
    const tk = planned(
      "aten.topk.default",
      { x: f32(4, 5) },
      { self: T("x"), k: { kind: "int", value: 2 } },
      [f32(4, 2), { dtype: "int64", shape: [4, 2] }],
    );
    expect(tk.steps[0].call.returns).toBe(2);
    expect(formatPlan(tk.steps[0].call)).toBe("aten::topk(self=%x, k=2, dim=-1, largest=true, sorted=true)");
    const ss = planned(
      "aten.slice_scatter.default",
      { x: f32(4, 6), s: f32(4, 2) },
      { self: T("x"), src: T("s"), dim: { kind: "int", value: 1 }, end: { kind: "int", value: 2 } },
      [f32(4, 6)],
    );
    expect(formatPlan(ss.steps[0].call)).toBe(
      "aten::slice_scatter(self=%x, src=%s, dim=1, start=None, end=Some(2), step=1)",
    );
  });

  it("holds every aten overload of the generating torch, and each entry parses or is refused with a reason", () => {
    // The seed had 11 hand-copied ops; the zoo then met repeat_interleave.self_int and upsample_bicubic2d.vec
    // outside it. The generated table is PyTorch's whole aten namespace.
    expect(Object.keys(ATEN_SCHEMAS).length).toBeGreaterThan(3000);
    expect(ATEN_SCHEMAS_TORCH).toMatch(/^2\.\d+/);
    for (const op of Object.keys(ATEN_SCHEMAS)) {
      const s = callSchema(op);
      if ("unsupported" in s) expect(s.unsupported.length).toBeGreaterThan(10);
      else expect(s.schema.length).toBeGreaterThanOrEqual(0);
    }
    const ri = planned(
      "aten.repeat_interleave.self_Tensor",
      { x: f32(2, 3), r: { dtype: "int64", shape: [3] } },
      { self: T("x"), repeats: T("r"), dim: { kind: "int", value: 1 } },
      [f32(2, 7)],
    );
    expect(formatPlan(ri.steps[0].call)).toBe(
      "aten::repeat_interleave.self_Tensor(self=%x, repeats=%r, dim=Some(1), output_size=None)",
    );
  });

  it("turns numbers in Tensor slots of table ops into 0-d constants", () => {
    const plan = planned(
      "aten.atan2.default",
      { x: f32(3) },
      { self: T("x"), other: { kind: "float", value: 2 } },
      [f32(3)],
    );
    const other = plan.steps[0].call.args[1];
    expect(other.kind).toBe("tensor");
    expect(Object.keys(plan.constants)).toHaveLength(1);
  });

  it("refuses what it cannot call, naming why", () => {
    const unknown = planFallback(
      graphOf("aten.not_an_op.default", { x: f32(2) }, { self: T("x") }, [f32(2)]),
    );
    expect("unsupported" in unknown && unknown.unsupported[0].reason).toMatch(/aten schema table/);
    const table = {
      "aten.foo_.default": "Tensor(a!) self -> Tensor(a!)",
      "aten.count.default": "Tensor self -> int",
      "aten.named.default": "Tensor self, Dimname dim -> Tensor",
    };
    expect(callSchema("aten.foo_.default", table)).toEqual({
      unsupported: expect.stringMatching(/writes into its arguments/),
    });
    expect(callSchema("aten.count.default", table)).toEqual({
      unsupported: expect.stringMatching(/tensor results only/),
    });
    expect(callSchema("aten.named.default", table)).toEqual({
      unsupported: expect.stringMatching(/Dimname/),
    });
  });

  it("reads Generator? = None as a None optional, and list results", () => {
    const s = schemaFromText(
      "aten.bernoulli.p",
      "Tensor self, float p=0.5, *, Generator? generator=None -> Tensor",
    );
    if ("unsupported" in s) throw new Error(s.unsupported);
    expect(s.schema.map((a) => `${a.type} ${a.name}`)).toEqual([
      "Tensor self",
      "float p",
      "Tensor? generator",
    ]);
    expect(s.schema[2].default).toEqual({ kind: "none" });
    const l = schemaFromText(
      "aten.unsafe_split.Tensor",
      "Tensor self, SymInt split_size, int dim=0 -> Tensor[]",
    );
    expect("returns" in l && l.returns).toBe("list");
  });
});

// Writes through views (torch.export's `x[a:b, c:d] = v` → slice → slice → copy_) must reach the base tensor and
// its other views. Swin-T builds its shifted-window attention mask this way; before this pass torchc's value
// graph dropped the writes and the mask stayed zero.
import { describe, expect, it } from "vitest";
import { toFloat64Array } from "../../src/ir/tensor.js";
import { interpret } from "../../src/ops/index.js";
import { functionalizeViews } from "../../src/passes/functionalize-views.js";
import { defaultPipeline } from "../../src/passes/pipeline.js";
import { float, inputsFor, int, ints, lower, opsOf, TestGraph } from "./graphs.js";

/** torchvision's region ids, written here from the definition (h, w slices of [0,-ws), [-ws,-s), [-s, end)). */
function regionIds(H: number, W: number, ws: number, s: number): number[] {
  const r = (x: number, n: number) => (x < n - ws ? 0 : x < n - s ? 1 : 2);
  const ids: number[] = [];
  for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) ids.push(r(h, H) * 3 + r(w, W));
  return ids;
}

/** The mask construction as torch.export's default IR records it. */
function swinMaskGraph(H: number, W: number, ws: number, s: number, write: "copy_" | "fill_" = "copy_") {
  const g = new TestGraph();
  const x = g.input("x", [1, 4]);
  const mask = g.node("aten.new_zeros.default", { self: x, size: ints([H, W]) });
  const big = Number.MAX_SAFE_INTEGER; // PyTorch writes sys.maxsize for an open end
  const slices: [number, number][] = [
    [0, -ws],
    [-ws, -s],
    [-s, big],
  ];
  let count = 0;
  for (const [h0, h1] of slices)
    for (const [w0, w1] of slices) {
      const a = g.node("aten.slice.Tensor", {
        self: mask,
        dim: int(0),
        start: int(h0),
        end: int(h1),
        step: int(1),
      });
      const b = g.node("aten.slice.Tensor", {
        self: a,
        dim: int(1),
        start: int(w0),
        end: int(w1),
        step: int(1),
      });
      if (write === "copy_")
        g.node("aten.copy_.default", { self: b, src: g.weight(`count${count}`, [], { values: [count] }) });
      else g.node("aten.fill_.Scalar", { self: b, value: float(count) });
      count++;
    }
  // reads of the base after the writes, as torchvision's view/permute/reshape of attn_mask
  const v = g.node("aten.view.default", { self: mask, size: ints([H / ws, ws, W / ws, ws]) });
  const y = g.node("aten.add.Tensor", { self: v, other: float(0) });
  return g.build(y);
}

describe("functionalize-view-mutations", () => {
  it("Swin's shifted-window mask: writes through slices reach the base", () => {
    const graph = swinMaskGraph(14, 14, 7, 3);
    const inputs = inputsFor(graph);
    const want = regionIds(14, 14, 7, 3);
    // the raw graph, as torchc evaluated it before: every write lost
    const before = Array.from(toFloat64Array(interpret(graph, inputs)[0]));
    expect(before.every((v) => v === 0)).toBe(true);
    const { graph: fixed, trace } = lower(graph, functionalizeViews);
    expect(opsOf(fixed)).not.toContain("aten.copy_.default");
    expect(trace.entries.filter((e) => e.rule === "write-through-view")).toHaveLength(9);
    expect(Array.from(toFloat64Array(interpret(fixed, inputs)[0]))).toEqual(want);
    // and through the whole pipeline (folded to a constant, or computed: either way the same numbers)
    const { graph: lowered } = lower(graph, ...defaultPipeline());
    expect(Array.from(toFloat64Array(interpret(lowered, inputs)[0]))).toEqual(want);
    // one value per write (a 0-d source) over a new_zeros base: the whole mask folds to a constant
    expect(opsOf(lowered).filter((o) => /where|copy|index|new_zeros|full/.test(o))).toEqual([]);
  });

  it("the same mask written with fill_.Scalar", () => {
    const graph = swinMaskGraph(14, 21, 7, 3, "fill_");
    const inputs = inputsFor(graph);
    const { graph: lowered } = lower(graph, ...defaultPipeline());
    expect(Array.from(toFloat64Array(interpret(lowered, inputs)[0]))).toEqual(regionIds(14, 21, 7, 3));
  });

  it("a write through a select and a permute, read through the base and through another view", () => {
    const g = new TestGraph();
    const x = g.input("x", [2, 3, 4]);
    const base = g.node("aten.mul.Tensor", { self: x, other: float(1) });
    const other = g.node("aten.select.int", { self: base, dim: int(2), index: int(1) }); // view taken before
    const p = g.node("aten.permute.default", { self: base, dims: ints([2, 0, 1]) });
    const sel = g.node("aten.select.int", { self: p, dim: int(0), index: int(1) }); // = base[:, :, 1]
    const src = g.input("src", [2, 3]);
    g.node("aten.add_.Tensor", { self: sel, other: src });
    const r1 = g.node("aten.relu.default", { self: base });
    const r2 = g.node("aten.neg.default", { self: other });
    const graph = g.build(r1, r2);
    const inputs = inputsFor(graph);
    const [xv, sv] = inputs.map((t) => Array.from(toFloat64Array(t)));
    // expected from the definition: base[i][j][1] += src[i][j]
    const baseWant = xv.map((v, k) => {
      const [i, j, l] = [Math.floor(k / 12), Math.floor(k / 4) % 3, k % 4];
      return l === 1 ? v + sv[i * 3 + j] : v;
    });
    const { graph: fixed } = lower(graph, functionalizeViews);
    const [o1, o2] = interpret(fixed, inputs).map((t) => Array.from(toFloat64Array(t)));
    expect(o1).toEqual(baseWant.map((v) => Math.max(v, 0)).map((v) => Math.fround(v)));
    const colWant = [0, 1, 2, 3, 4, 5].map((k) => -Math.fround(baseWant[k * 4 + 1]));
    for (const [k, v] of o2.entries()) expect(v).toBeCloseTo(colWant[k], 5);
  });

  it("leaves graphs without writes through views alone", () => {
    const g = new TestGraph();
    const x = g.input("x", [3]);
    const r = g.node("aten.relu.default", { self: x });
    g.node("aten.add_.Tensor", { self: r, other: float(1) });
    const graph = g.build(r);
    expect(lower(graph, functionalizeViews).graph).toBe(graph);
  });
});

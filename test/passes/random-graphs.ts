// Random small graphs for property tests: a recipe (plain data fast-check can draw and shrink) is turned
// into a well-typed graph of convs, batch norms, activations, adds, views, permutes and no-ops, in both
// the default-IR and the core-ATen spelling.
import fc from "fast-check";
import type { Graph } from "../../src/ir/graph.js";
import { BATCH_NORM } from "../../src/passes/fold-batch-norm.js";
import { bool, float, int, ints, none, TestGraph } from "./graphs.js";

export interface Step {
  readonly kind: number;
  /** Which earlier value to use (modulo the count), and a second one for binary ops. */
  readonly a: number;
  readonly b: number;
  readonly size: number;
  readonly flag: boolean;
}

export interface Recipe {
  readonly batch: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly steps: readonly Step[];
  /** Also return this earlier value (modulo the count), so some intermediates have two uses. */
  readonly extraOutput: number | null;
}

const KINDS = 14;

export const recipes: fc.Arbitrary<Recipe> = fc.record({
  batch: fc.integer({ min: 1, max: 2 }),
  channels: fc.integer({ min: 1, max: 4 }),
  height: fc.integer({ min: 2, max: 5 }),
  width: fc.integer({ min: 2, max: 5 }),
  steps: fc.array(
    fc.record({
      kind: fc.integer({ min: 0, max: KINDS - 1 }),
      a: fc.nat(),
      b: fc.nat(),
      size: fc.integer({ min: 1, max: 4 }),
      flag: fc.boolean(),
    }),
    { minLength: 1, maxLength: 8 },
  ),
  extraOutput: fc.option(fc.nat(), { nil: null }),
});

interface Value {
  readonly name: string;
  readonly shape: readonly number[];
}

/** Builds the graph a recipe describes. Every value stays [N, C, H, W] (views and permutes come back). */
export function buildRandomGraph(r: Recipe): Graph {
  const g = new TestGraph();
  const values: Value[] = [
    {
      name: g.input("x", [r.batch, r.channels, r.height, r.width]),
      shape: [r.batch, r.channels, r.height, r.width],
    },
  ];
  const pick = (i: number) => values[i % values.length];
  const push = (name: string, shape: readonly number[]) => values.push({ name, shape });
  let w = 0;
  const weight = (shape: number[], lo = -1, hi = 1) => g.weight(`w${w++}`, shape, { lo, hi });

  for (const s of r.steps) {
    const v = pick(s.a);
    const [n, c, h, wd] = v.shape;
    switch (s.kind) {
      case 0:
      case 1: {
        // conv (default IR or core spelling), maybe depthwise, maybe followed by a batch norm.
        const depthwise = s.flag && s.size % 2 === 0;
        const cout = depthwise ? c : s.size;
        const k = s.size >= 3 ? 3 : 1;
        const wgt = weight([cout, depthwise ? 1 : c, k, k]);
        const bias = s.size % 2 === 1 ? weight([cout]) : none;
        const common = {
          input: v.name,
          weight: wgt,
          bias,
          stride: ints([1, 1]),
          padding: ints([k >> 1, k >> 1]),
          dilation: ints([1, 1]),
          groups: int(depthwise ? c : 1),
        };
        const conv =
          s.kind === 0
            ? g.node("aten.conv2d.default", common)
            : g.node("aten.convolution.default", {
                ...common,
                transposed: bool(false),
                output_padding: ints([0, 0]),
              });
        const bnArgs = {
          input: conv,
          weight: weight([cout]),
          bias: weight([cout]),
          running_mean: weight([cout]),
          running_var: weight([cout], 0.5, 2),
          momentum: float(0.1),
          eps: float(1e-5),
        };
        const out = !s.flag
          ? conv
          : s.kind === 0
            ? g.node("aten.batch_norm.default", {
                ...bnArgs,
                training: bool(false),
                cudnn_enabled: bool(true),
              })
            : g.nodeOutputs(BATCH_NORM, bnArgs)[0];
        push(out, [n, cout, h, wd]);
        break;
      }
      case 2:
        push(
          g.node(
            ["aten.relu.default", "aten.relu6.default", "aten.silu.default", "aten.sigmoid.default"][
              s.size - 1
            ],
            { self: v.name },
          ),
          v.shape,
        );
        break;
      case 3: {
        // core ATen's silu / hardswish spelling
        if (s.flag) {
          push(
            g.node("aten.mul.Tensor", {
              self: v.name,
              other: g.node("aten.sigmoid.default", { self: v.name }),
            }),
            v.shape,
          );
        } else {
          const p = g.node("aten.add.Tensor", { self: v.name, other: int(3) });
          const cl = g.node("aten.clamp.default", {
            self: g.node("aten.clamp.default", { self: p, min: int(0) }),
            max: int(6),
          });
          push(
            g.node("aten.div.Tensor", {
              self: g.node("aten.mul.Tensor", { self: v.name, other: cl }),
              other: int(6),
            }),
            v.shape,
          );
        }
        break;
      }
      case 4: {
        const u = values.find((x, i) => i >= s.b % values.length && x.shape.join() === v.shape.join()) ?? v;
        push(
          g.node(s.flag ? "aten.add.Tensor" : "aten.mul.Tensor", { self: v.name, other: u.name }),
          v.shape,
        );
        break;
      }
      case 5: {
        const flat = s.flag
          ? g.node("aten.reshape.default", { self: v.name, shape: ints([n, -1]) })
          : g.node("aten.flatten.using_ints", { self: v.name, start_dim: int(2) });
        push(g.node("aten.view.default", { self: flat, size: ints([n, c, h, wd]) }), v.shape);
        break;
      }
      case 6: {
        const u = g.node("aten.unsqueeze.default", { self: v.name, dim: int(s.size % 4) });
        const t = g.node("aten.squeeze.dim", { self: u, dim: int(s.size % 4) });
        push(g.node("aten.reshape.default", { self: t, shape: ints([n, c, h, wd]) }), v.shape);
        break;
      }
      case 7: {
        const nhwc = g.node("aten.permute.default", { self: v.name, dims: ints([0, 2, 3, 1]) });
        const r2 = s.flag ? g.node("aten.relu.default", { self: nhwc }) : nhwc;
        push(g.node("aten.permute.default", { self: r2, dims: ints([0, 3, 1, 2]) }), v.shape);
        break;
      }
      case 8:
        push(
          g.node(
            ["aten.clone.default", "aten.alias.default", "aten.detach.default", "aten.contiguous.default"][
              s.size - 1
            ],
            { self: v.name },
          ),
          v.shape,
        );
        break;
      case 9:
        push(g.node("aten.dropout.default", { input: v.name, p: float(0.25), train: bool(false) }), v.shape);
        break;
      case 10:
        push(
          g.node("aten.mul.Tensor", { self: v.name, other: s.flag ? int(1) : float(s.size / 2) }),
          v.shape,
        );
        break;
      case 11: {
        // a squeeze-excite gate: mean → conv-free scale → sigmoid → mul
        const m = g.node("aten.mean.dim", { self: v.name, dim: ints([2, 3]), keepdim: bool(true) });
        const gate = g.node("aten.sigmoid.default", {
          self: g.node("aten.mul.Tensor", { self: m, other: weight([1, c, 1, 1]) }),
        });
        push(g.node("aten.mul.Tensor", { self: v.name, other: gate }), v.shape);
        break;
      }
      case 12: {
        // a weight computed from weights (folds) added to the activation
        const bias = g.node("aten.view.default", {
          self: g.node("aten.mul.Tensor", { self: weight([c]), other: float(2) }),
          size: ints([1, c, 1, 1]),
        });
        push(g.node("aten.add.Tensor", { self: v.name, other: bias }), v.shape);
        break;
      }
      default: {
        const x2 = g.node("aten.hardtanh.default", {
          self: v.name,
          min_val: float(-s.size),
          max_val: float(s.size),
        });
        push(g.node("aten.expand.default", { self: x2, size: ints([-1, c, h, wd]) }), v.shape);
      }
    }
  }
  const last = values[values.length - 1].name;
  const outputs = r.extraOutput === null ? [last] : [last, pick(r.extraOutput).name];
  return g.build(...outputs);
}

/**
 * Pre-norm transformer blocks (timm's ViT/DeiT `Block`) as torch.export's default IR spells them: x + proj(sdpa(qkv
 * (norm1(x)))), then x + fc2(gelu(fc1(norm2(x)))), `depth` times, then a final norm. For CPU tests of the CUDA
 * plan's fusion (emulated) at sizes that run in seconds.
 */
import type { Graph } from "../../../src/ir/graph.js";
import { AtenGraph, F, I, Is } from "./aten-graph.js";

export interface BlockSizes {
  readonly B: number;
  /** Tokens. */
  readonly N: number;
  readonly C: number;
  readonly heads: number;
  readonly depth: number;
  /** MLP hidden width (default 4·C). */
  readonly hidden?: number;
  /** GELU's approximation (default "none": erf, as nn.GELU()). */
  readonly gelu?: "none" | "tanh";
}

export function preNormBlocksGraph(s: BlockSizes): Graph {
  const graph = new AtenGraph();
  const weight = (name: string, shape: readonly number[], lo: number, hi: number) =>
    graph.weight(name, shape, { lo, hi });
  const node = (op: string, args: Parameters<AtenGraph["node"]>[1]) => graph.node(op, args);
  const { B, N, C, heads } = s;
  const hd = C / heads;
  const hidden = s.hidden ?? 4 * C;
  const norm = (x: string, name: string) =>
    node("aten.layer_norm.default", {
      input: x,
      normalized_shape: Is([C]),
      weight: weight(`${name}_w`, [C], 0.5, 1.5),
      bias: weight(`${name}_b`, [C], -0.3, 0.3),
      eps: F(1e-6),
    });
  const linear = (x: string, name: string, k: number, n: number) =>
    node("aten.linear.default", {
      input: x,
      weight: weight(`${name}_w`, [n, k], -1 / Math.sqrt(k), 1 / Math.sqrt(k)),
      bias: weight(`${name}_b`, [n], -0.1, 0.1),
    });
  let x = graph.input("x", [B, N, C]);
  for (let d = 0; d < s.depth; d++) {
    const qkv = linear(norm(x, `b${d}_norm1`), `b${d}_qkv`, C, 3 * C);
    let q5 = node("aten.reshape.default", { self: qkv, shape: Is([B, N, 3, heads, hd]) });
    q5 = node("aten.permute.default", { self: q5, dims: Is([2, 0, 3, 1, 4]) });
    const [q, k, v] = [0, 1, 2].map((i) => node("aten.select.int", { self: q5, dim: I(0), index: I(i) }));
    let a = node("aten.scaled_dot_product_attention.default", { query: q, key: k, value: v });
    a = node("aten.transpose.int", { self: a, dim0: I(1), dim1: I(2) });
    a = node("aten.reshape.default", { self: a, shape: Is([B, N, C]) });
    x = node("aten.add.Tensor", { self: x, other: linear(a, `b${d}_proj`, C, C) });
    const h = linear(norm(x, `b${d}_norm2`), `b${d}_fc1`, C, hidden);
    const g = node("aten.gelu.default", {
      self: h,
      approximate: { kind: "string", value: s.gelu ?? "none" },
    });
    x = node("aten.add.Tensor", { self: x, other: linear(g, `b${d}_fc2`, hidden, C) });
  }
  return graph.build(norm(x, "norm"));
}

/**
 * Swin-T building blocks as torch.export's default IR spells them (torchvision's `shifted_window_attention`,
 * `PatchMerging`, `SwinTransformerBlock`), at configurable sizes: for CPU tests of lowering + converters + the
 * CUDA plan (emulated), and for the GPU test that runs them on the device.
 */
import { AtenGraph, F, I, Is } from "./aten-graph.js";

export interface SwinSizes {
  readonly B: number;
  readonly H: number;
  readonly W: number;
  readonly C: number;
  readonly heads: number;
  readonly window: number;
  readonly shift: number;
}

/** torchvision's relative_position_index for a window×window window (int64, [window⁴]). */
export function relativePositionIndex(ws: number): number[] {
  const coords: [number, number][] = [];
  for (let i = 0; i < ws; i++) for (let j = 0; j < ws; j++) coords.push([i, j]);
  const out: number[] = [];
  for (const a of coords)
    for (const b of coords) out.push((a[0] - b[0] + ws - 1) * (2 * ws - 1) + (a[1] - b[1] + ws - 1));
  return out;
}

/** torchvision's shifted-window mask region ids over the padded map [H, W] (before the view/permute). */
export function shiftRegionIds(H: number, W: number, ws: number, shift: number): number[] {
  const region = (x: number, n: number) => (x < n - ws ? 0 : x < n - shift ? 1 : 2);
  const ids: number[] = [];
  for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) ids.push(region(h, H) * 3 + region(w, W));
  return ids;
}

/**
 * One shifted-window attention block with its residual and MLP, NHWC in and out:
 * x + attn(norm1(x)), then + mlp(norm2(·)). `mask` selects how the attention mask is built: from a constant
 * region-id map (what folding leaves) or from the input through new_zeros (ops on activations).
 */
export function swinBlockGraph(
  s: SwinSizes,
  opts: { maskFromInput?: boolean; maskBySliceWrites?: boolean } = {},
) {
  const g = new AtenGraph();
  const { B, H, W, C, heads, window: ws, shift } = s;
  const hd = C / heads;
  const nW = (H / ws) * (W / ws);
  const N = ws * ws;
  const x = g.input("x", [B, H, W, C]);
  const small = { lo: -0.3, hi: 0.3 };
  const n1 = g.node("aten.layer_norm.default", {
    input: x,
    normalized_shape: Is([C]),
    weight: g.weight("norm1_w", [C], { lo: 0.5, hi: 1.5 }),
    bias: g.weight("norm1_b", [C], small),
    eps: F(1e-5),
  });
  const padded = g.node("aten.constant_pad_nd.default", {
    self: n1,
    pad: Is([0, 0, 0, 0, 0, 0]),
    value: F(0),
  });
  let v =
    shift > 0
      ? g.node("aten.roll.default", { self: padded, shifts: Is([-shift, -shift]), dims: Is([1, 2]) })
      : padded;
  v = g.node("aten.view.default", { self: v, size: Is([B, H / ws, ws, W / ws, ws, C]) });
  v = g.node("aten.permute.default", { self: v, dims: Is([0, 1, 3, 2, 4, 5]) });
  v = g.node("aten.reshape.default", { self: v, shape: Is([B * nW, N, C]) });
  const qkv = g.node("aten.linear.default", {
    input: v,
    weight: g.weight("qkv_w", [3 * C, C], small),
    bias: g.weight("qkv_b", [3 * C], small),
  });
  let q5 = g.node("aten.reshape.default", { self: qkv, shape: Is([B * nW, N, 3, heads, hd]) });
  q5 = g.node("aten.permute.default", { self: q5, dims: Is([2, 0, 3, 1, 4]) });
  let q = g.node("aten.select.int", { self: q5, dim: I(0), index: I(0) });
  const k = g.node("aten.select.int", { self: q5, dim: I(0), index: I(1) });
  const val = g.node("aten.select.int", { self: q5, dim: I(0), index: I(2) });
  q = g.node("aten.mul.Tensor", { self: q, other: F(hd ** -0.5) });
  const kt = g.node("aten.transpose.int", { self: k, dim0: I(-2), dim1: I(-1) });
  let attn = g.node("aten.matmul.default", { self: q, other: kt });
  // relative position bias: table[index] → [N, N, heads] → [heads, N, N] → [1, heads, N, N]
  const table = g.weight("rel_table", [(2 * ws - 1) * (2 * ws - 1), heads], small);
  const index = g.weight("rel_index", [N * N], { values: relativePositionIndex(ws) });
  const idx64 = g.node("aten._to_copy.default", { self: index, dtype: { kind: "dtype", value: "int64" } });
  let bias = g.node("aten.index.Tensor", { self: table, indices: { kind: "tensors", names: [idx64] } });
  bias = g.node("aten.view.default", { self: bias, size: Is([N, N, heads]) });
  bias = g.node("aten.permute.default", { self: bias, dims: Is([2, 0, 1]) });
  bias = g.node("aten.contiguous.default", { self: bias });
  bias = g.node("aten.unsqueeze.default", { self: bias, dim: I(0) });
  attn = g.node("aten.add.Tensor", { self: attn, other: bias });
  if (shift > 0) {
    let ids: string;
    if (opts.maskBySliceWrites) {
      // torchvision's own construction as torch.export records it: attn_mask = x.new_zeros((H, W)), then
      // attn_mask[h0:h1, w0:w1] = count for the 3×3 regions (slice → slice → copy_ of a 0-d constant)
      ids = g.node("aten.new_zeros.default", { self: x, size: Is([H, W]) });
      const cuts: [number, number][] = [
        [0, -ws],
        [-ws, -shift],
        [-shift, Number.MAX_SAFE_INTEGER],
      ];
      let count = 0;
      for (const [h0, h1] of cuts)
        for (const [w0, w1] of cuts) {
          const a = g.node("aten.slice.Tensor", {
            self: ids,
            dim: I(0),
            start: I(h0),
            end: I(h1),
            step: I(1),
          });
          const b = g.node("aten.slice.Tensor", { self: a, dim: I(1), start: I(w0), end: I(w1), step: I(1) });
          g.node("aten.copy_.default", { self: b, src: g.weight(`count_${count}`, [], { values: [count] }) });
          count++;
        }
    } else if (opts.maskFromInput) {
      // new_zeros on the activation, then + a constant id map (ops the engine must run)
      const z = g.node("aten.new_zeros.default", { self: x, size: Is([H, W]) });
      ids = g.node("aten.add.Tensor", {
        self: z,
        other: g.weight("region_ids", [H, W], { values: shiftRegionIds(H, W, ws, shift) }),
      });
    } else ids = g.weight("region_ids", [H, W], { values: shiftRegionIds(H, W, ws, shift) });
    let m = g.node("aten.view.default", { self: ids, size: Is([H / ws, ws, W / ws, ws]) });
    m = g.node("aten.permute.default", { self: m, dims: Is([0, 2, 1, 3]) });
    m = g.node("aten.reshape.default", { self: m, shape: Is([nW, N]) });
    const a = g.node("aten.unsqueeze.default", { self: m, dim: I(1) });
    const b = g.node("aten.unsqueeze.default", { self: m, dim: I(2) });
    m = g.node("aten.sub.Tensor", { self: a, other: b });
    const ne = g.node("aten.ne.Scalar", { self: m, other: I(0) });
    m = g.node("aten.masked_fill.Scalar", { self: m, mask: ne, value: F(-100) });
    const eq = g.node("aten.eq.Scalar", { self: m, other: I(0) });
    m = g.node("aten.masked_fill.Scalar", { self: m, mask: eq, value: F(0) });
    attn = g.node("aten.view.default", { self: attn, size: Is([B, nW, heads, N, N]) });
    let mm = g.node("aten.unsqueeze.default", { self: m, dim: I(1) });
    mm = g.node("aten.unsqueeze.default", { self: mm, dim: I(0) });
    attn = g.node("aten.add.Tensor", { self: attn, other: mm });
    attn = g.node("aten.view.default", { self: attn, size: Is([-1, heads, N, N]) });
  }
  attn = g.node("aten.softmax.int", { self: attn, dim: I(-1) });
  let o = g.node("aten.matmul.default", { self: attn, other: val });
  o = g.node("aten.transpose.int", { self: o, dim0: I(1), dim1: I(2) });
  o = g.node("aten.reshape.default", { self: o, shape: Is([B * nW, N, C]) });
  o = g.node("aten.linear.default", {
    input: o,
    weight: g.weight("proj_w", [C, C], small),
    bias: g.weight("proj_b", [C], small),
  });
  o = g.node("aten.view.default", { self: o, size: Is([B, H / ws, W / ws, ws, ws, C]) });
  o = g.node("aten.permute.default", { self: o, dims: Is([0, 1, 3, 2, 4, 5]) });
  o = g.node("aten.reshape.default", { self: o, shape: Is([B, H, W, C]) });
  if (shift > 0) o = g.node("aten.roll.default", { self: o, shifts: Is([shift, shift]), dims: Is([1, 2]) });
  o = g.node("aten.slice.Tensor", { self: o, dim: I(1), start: I(0), end: I(H), step: I(1) });
  o = g.node("aten.slice.Tensor", { self: o, dim: I(2), start: I(0), end: I(W), step: I(1) });
  o = g.node("aten.contiguous.default", { self: o });
  const r1 = g.node("aten.add.Tensor", { self: x, other: o });
  const n2 = g.node("aten.layer_norm.default", {
    input: r1,
    normalized_shape: Is([C]),
    weight: g.weight("norm2_w", [C], { lo: 0.5, hi: 1.5 }),
    bias: g.weight("norm2_b", [C], small),
    eps: F(1e-5),
  });
  let h = g.node("aten.linear.default", {
    input: n2,
    weight: g.weight("fc1_w", [2 * C, C], small),
    bias: g.weight("fc1_b", [2 * C], small),
  });
  h = g.node("aten.gelu.default", { self: h });
  h = g.node("aten.linear.default", {
    input: h,
    weight: g.weight("fc2_w", [C, 2 * C], small),
    bias: g.weight("fc2_b", [C], small),
  });
  const y = g.node("aten.add.Tensor", { self: r1, other: h });
  return g.build(y);
}

/** torchvision's PatchMerging: the four stride-2 sub-grids concatenated on channels, layer norm, linear. */
export function patchMergingGraph(B: number, H: number, W: number, C: number) {
  const g = new AtenGraph();
  const x = g.input("x", [B, H, W, C]);
  const sub = (h0: number, w0: number) => {
    const a = g.node("aten.slice.Tensor", {
      self: x,
      dim: I(-3),
      start: I(h0),
      end: I(Number.MAX_SAFE_INTEGER),
      step: I(2),
    });
    return g.node("aten.slice.Tensor", {
      self: a,
      dim: I(-2),
      start: I(w0),
      end: I(Number.MAX_SAFE_INTEGER),
      step: I(2),
    });
  };
  const cat = g.node("aten.cat.default", {
    tensors: { kind: "tensors", names: [sub(0, 0), sub(1, 0), sub(0, 1), sub(1, 1)] },
    dim: I(-1),
  });
  const n = g.node("aten.layer_norm.default", {
    input: cat,
    normalized_shape: Is([4 * C]),
    weight: g.weight("w", [4 * C], { lo: 0.5, hi: 1.5 }),
    bias: g.weight("b", [4 * C], { lo: -0.3, hi: 0.3 }),
    eps: F(1e-5),
  });
  const y = g.node("aten.linear.default", {
    input: n,
    weight: g.weight("red", [2 * C, 4 * C], { lo: -0.3, hi: 0.3 }),
  });
  return g.build(y);
}

/** Swin-T's stem and head: conv 4×4/4 → permute to NHWC → layer norm …, then layer norm → NCHW → avg pool → linear. */
export function stemAndHeadGraph(B: number, S: number, C: number, classes: number) {
  const g = new AtenGraph();
  const x = g.input("x", [B, 3, S, S]);
  let v = g.node("aten.conv2d.default", {
    input: x,
    weight: g.weight("patch_w", [C, 3, 4, 4], { lo: -0.3, hi: 0.3 }),
    bias: g.weight("patch_b", [C], { lo: -0.3, hi: 0.3 }),
    stride: Is([4, 4]),
  });
  v = g.node("aten.permute.default", { self: v, dims: Is([0, 2, 3, 1]) });
  v = g.node("aten.layer_norm.default", {
    input: v,
    normalized_shape: Is([C]),
    weight: g.weight("n0_w", [C], { lo: 0.5, hi: 1.5 }),
    bias: g.weight("n0_b", [C], { lo: -0.3, hi: 0.3 }),
    eps: F(1e-5),
  });
  v = g.node("aten.gelu.default", { self: v });
  v = g.node("aten.layer_norm.default", {
    input: v,
    normalized_shape: Is([C]),
    weight: g.weight("n1_w", [C], { lo: 0.5, hi: 1.5 }),
    bias: g.weight("n1_b", [C], { lo: -0.3, hi: 0.3 }),
    eps: F(1e-5),
  });
  v = g.node("aten.permute.default", { self: v, dims: Is([0, 3, 1, 2]) });
  v = g.node("aten.adaptive_avg_pool2d.default", { self: v, output_size: Is([1, 1]) });
  v = g.node("aten.flatten.using_ints", { self: v, start_dim: I(1), end_dim: I(-1) });
  v = g.node("aten.linear.default", {
    input: v,
    weight: g.weight("head_w", [classes, C], { lo: -0.3, hi: 0.3 }),
    bias: g.weight("head_b", [classes], { lo: -0.3, hi: 0.3 }),
  });
  return g.build(v);
}

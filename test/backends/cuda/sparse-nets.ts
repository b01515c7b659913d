// Small networks with 2:4-pruned linear weights for the sparse-weights tests (no vitest here).
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { type Tensor, tensorFromNumbers, toFloat64Array } from "../../../src/ir/tensor.js";
import { NetworkBuilder } from "../../../src/network/builder.js";
import type { Network } from "../../../src/network/network.js";

/** 2:4 magnitude pruning along the last axis: in each group of four, the two largest |w| stay. */
export function prune24(w: Tensor): Tensor {
  const v = toFloat64Array(w);
  for (let g = 0; g < v.length; g += 4) {
    const order = [0, 1, 2, 3].sort((a, b) => Math.abs(v[g + b]) - Math.abs(v[g + a]));
    v[g + order[2]] = 0;
    v[g + order[3]] = 0;
  }
  return tensorFromNumbers(w.dtype, w.shape, v);
}

export interface LinearSpec {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  /** Prune the weight 2:4 (default true). */
  readonly sparse?: boolean;
  readonly bias?: boolean;
  /** "gelu" is the tanh GELU, the one a matmul epilogue fuses (default "relu"). */
  readonly activation?: "relu" | "gelu" | "none";
  readonly seed?: number;
}

/** y = act(x[M,K] · Wᵀ + b), as the aten.linear converter writes it; returns the weights too. */
export function linearNet(s: LinearSpec): { net: Network; weight: Tensor; bias?: Tensor } {
  const r = rng(s.seed ?? 3);
  const b = new NetworkBuilder();
  const x = b.addInput("x", { dtype: "float32", shape: [s.m, s.k] });
  const dense = randomTensor(r, "float32", [s.n, s.k], Math.sqrt(3 / s.k));
  const weight = s.sparse === false ? dense : prune24(dense);
  let y = b.add({
    type: "matmul",
    inputs: [x, b.constant(weight, "w")],
    transposeA: false,
    transposeB: true,
  });
  const bias = s.bias === false ? undefined : randomTensor(r, "float32", [s.n], 0.1);
  if (bias) y = b.add({ type: "elementwise", inputs: [y, b.constant(bias, "b")], op: "add" });
  const act = s.activation ?? "relu";
  if (act !== "none")
    y = b.add({ type: "activation", inputs: [y], fn: { kind: act === "relu" ? "relu" : "gelu_tanh" } });
  // A last op, so the matmul's epilogue writes an internal fp16 tensor rather than the fp32 output.
  y = b.add({ type: "unary", inputs: [y], op: "neg" });
  return { net: b.build([{ tensor: y, as: "y" }]), weight, bias };
}

/** The host-only engine plan of `net` (every matmul accepted) and its matmul steps. */
export function planOf(net: Network, precision: "fp16" | "fp32" = "fp16") {
  const plan = planCudaEngine(net, { precision });
  const matmuls = plan.steps.filter((s) => s.kind === "matmul");
  return { plan, matmuls };
}

/** 2:4 magnitude pruning of a conv weight [Cout, Cin, kh, kw] along Cin at each kernel position. */
export function prune24Conv(w: Tensor): Tensor {
  const [cout, cin, kh, kw] = w.shape;
  const v = toFloat64Array(w);
  const at = (o: number, c: number, i: number) => (o * cin + c) * kh * kw + i;
  for (let o = 0; o < cout; o++)
    for (let i = 0; i < kh * kw; i++)
      for (let c = 0; c < cin; c += 4) {
        const order = [0, 1, 2, 3].sort(
          (a, b) => Math.abs(v[at(o, c + b, i)]) - Math.abs(v[at(o, c + a, i)]),
        );
        v[at(o, c + order[2], i)] = 0;
        v[at(o, c + order[3], i)] = 0;
      }
  return tensorFromNumbers(w.dtype, w.shape, v);
}

/** conv 1×1 (pruned) → relu → conv 3×3 (pruned) → relu → conv 1×1 (dense), NCHW [2, 16, 8, 8]. */
export function convNet(): Network {
  const r = rng(9);
  const b = new NetworkBuilder();
  let y = b.addInput("x", { dtype: "float32", shape: [2, 16, 8, 8] });
  const conv = (cout: number, k: number, pruned: boolean, name: string) => {
    const cin = b.typeOf(y).shape[1];
    const w = randomTensor(r, "float32", [cout, cin, k, k], Math.sqrt(3 / (cin * k * k)));
    const p = (k - 1) / 2;
    y = b.add({
      type: "convolution",
      inputs: [y, b.constant(pruned ? prune24Conv(w) : w, name)],
      stride: [1, 1],
      padding: [p, p],
      dilation: [1, 1],
      groups: 1,
    });
    y = b.add({ type: "activation", inputs: [y], fn: { kind: "relu" } });
  };
  conv(32, 1, true, "c1");
  conv(32, 3, true, "c2");
  conv(16, 1, false, "c3");
  return b.build([{ tensor: y, as: "y" }]);
}

export interface Conv1x1Spec {
  readonly stride?: number;
  /** Height and width of the map (default 8). */
  readonly hw?: number;
  readonly act?: "relu" | "silu";
  /**
   * Add the convolution's input before the activation (16 → 16 channels), as a ResNet block's last one does. The
   * input is then made by a dense 1×1 convolution first, so that the residual is an fp16 channels-last tensor.
   */
  readonly residual?: boolean;
}

/**
 * x [2, 16, hw, hw] (→ dense 1×1 conv → relu, with a residual) → 1×1 conv 16 → 32 (16 → 16 with a residual),
 * pruned 2:4, with bias → (+ its input) → act → neg, the last op so the convolution writes an internal fp16
 * tensor. The pruned convolution is the network's last.
 */
export function conv1x1Net(s: Conv1x1Spec): { net: Network; weight: Tensor; bias: Tensor } {
  const r = rng(13);
  const b = new NetworkBuilder();
  const hw = s.hw ?? 8;
  let x = b.addInput("x", { dtype: "float32", shape: [2, 16, hw, hw] });
  const conv = (input: string, w: Tensor, bias: Tensor, stride: number, name: string) =>
    b.add({
      type: "convolution",
      inputs: [input, b.constant(w, `${name}.w`), b.constant(bias, `${name}.b`)],
      stride: [stride, stride],
      padding: [0, 0],
      dilation: [1, 1],
      groups: 1,
    });
  if (s.residual) {
    const w = randomTensor(r, "float32", [16, 16, 1, 1], Math.sqrt(3 / 16));
    x = conv(x, w, randomTensor(r, "float32", [16], 0.1), 1, "stem");
    x = b.add({ type: "activation", inputs: [x], fn: { kind: "relu" } });
  }
  const cout = s.residual ? 16 : 32;
  const weight = prune24Conv(randomTensor(r, "float32", [cout, 16, 1, 1], Math.sqrt(3 / 16)));
  const bias = randomTensor(r, "float32", [cout], 0.1);
  let y = conv(x, weight, bias, s.stride ?? 1, "pruned");
  if (s.residual) y = b.add({ type: "elementwise", inputs: [y, x], op: "add" });
  y = b.add({ type: "activation", inputs: [y], fn: { kind: s.act ?? "relu" } });
  y = b.add({ type: "unary", inputs: [y], op: "neg" });
  return { net: b.build([{ tensor: y, as: "y" }]), weight, bias };
}

/**
 * Synthetic networks with seeded random weights, built as converters would emit them (batch norm as scale
 * layers, linear as matmul + bias add, flatten as a shuffle): small ones per layer family for tests, and
 * EfficientNet-B0 (timm's efficientnet_b0 layer for layer, 224×224) for benchmarks.
 */
import type { DType } from "../../../ir/dtype.js";
import { numel, type Tensor, tensorFromNumbers } from "../../../ir/tensor.js";
import { NetworkBuilder } from "../../../network/builder.js";
import type { ActivationFn } from "../../../network/layers/activation.js";
import type { Network } from "../../../network/network.js";

/** Mulberry32: a small seeded generator, so failing cases replay. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomTensor(
  r: () => number,
  dtype: DType,
  shape: readonly number[],
  scale = 1,
  offset = 0,
): Tensor {
  const n = numel(shape);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = offset + (r() * 2 - 1) * scale;
  return tensorFromNumbers(dtype, shape, v);
}

export class NetMaker {
  readonly b = new NetworkBuilder();
  readonly r: () => number;
  private n = 0;

  constructor(
    seed: number,
    readonly dtype: DType = "float32",
  ) {
    this.r = rng(seed);
  }

  input(name: string, shape: number[]): string {
    return this.b.addInput(name, { dtype: this.dtype, shape });
  }

  const(shape: number[], scale = 1, offset = 0): string {
    return this.b.constant(randomTensor(this.r, this.dtype, shape, scale, offset), `w${this.n++}`);
  }

  conv(
    x: string,
    cout: number,
    k: number,
    opts: { stride?: number; groups?: number; bias?: boolean; pad?: number; dilation?: number } = {},
  ): string {
    const cin = this.b.typeOf(x).shape[1];
    const g = opts.groups ?? 1;
    const fan = (cin / g) * k * k;
    const w = this.const([cout, cin / g, k, k], Math.sqrt(3 / fan));
    const inputs: [string, string] | [string, string, string] = opts.bias
      ? [x, w, this.const([cout], 0.1)]
      : [x, w];
    const s = opts.stride ?? 1;
    const d = opts.dilation ?? 1;
    const p = opts.pad ?? Math.floor(((k - 1) * d) / 2);
    return this.b.add({
      type: "convolution",
      inputs,
      stride: [s, s],
      padding: [p, p],
      dilation: [d, d],
      groups: g,
    });
  }

  bn(x: string): string {
    const c = this.b.typeOf(x).shape[1];
    return this.b.add({
      type: "scale",
      inputs: [x, this.const([c], 0.3, 1), this.const([c], 0.2)],
      channelAxis: 1,
    });
  }

  act(x: string, fn: ActivationFn): string {
    return this.b.add({ type: "activation", inputs: [x], fn });
  }

  silu(x: string): string {
    return this.act(x, { kind: "silu" });
  }

  add(a: string, b: string): string {
    return this.b.add({ type: "elementwise", inputs: [a, b], op: "add" });
  }

  mul(a: string, b: string): string {
    return this.b.add({ type: "elementwise", inputs: [a, b], op: "mul" });
  }

  gap(x: string): string {
    return this.b.add({ type: "adaptive_pooling", inputs: [x], mode: "avg", outputSize: [1, 1] });
  }

  /** Squeeze-excite as timm writes it: pool → 1×1 conv → SiLU → 1×1 conv → sigmoid → scale. */
  se(x: string, reduced: number): string {
    const c = this.b.typeOf(x).shape[1];
    let s = this.gap(x);
    s = this.silu(this.conv(s, reduced, 1, { bias: true }));
    s = this.act(this.conv(s, c, 1, { bias: true }), { kind: "sigmoid" });
    return this.mul(x, s);
  }

  linear(x: string, out: number): string {
    const shape = this.b.typeOf(x).shape;
    const inF = shape[shape.length - 1];
    const w = this.const([out, inF], Math.sqrt(3 / inF));
    const y = this.b.add({ type: "matmul", inputs: [x, w], transposeA: false, transposeB: true });
    return this.add(y, this.const([out], 0.1));
  }

  flatten(x: string): string {
    const s = this.b.typeOf(x).shape;
    return this.b.add({
      type: "shuffle",
      inputs: [x],
      firstTranspose: null,
      reshape: [s[0], numel(s.slice(1))],
      secondTranspose: null,
    });
  }

  build(outputs: string[]): Network {
    return this.b.build(outputs.map((t, i) => ({ tensor: t, as: `out${i}` })));
  }
}

/** conv-bn-silu → depthwise-bn-silu → squeeze-excite → 1×1 conv-bn → residual add: one MBConv block. */
export function mbconvNet(batch: number, c = 16, hw = 12, seed = 1): Network {
  const m = new NetMaker(seed);
  const x = m.input("x", [batch, c, hw, hw]);
  let y = m.silu(m.bn(m.conv(x, c * 4, 1)));
  y = m.silu(m.bn(m.conv(y, c * 4, 3, { groups: c * 4 })));
  y = m.se(y, Math.max(1, c / 4));
  y = m.bn(m.conv(y, c, 1));
  y = m.add(y, x);
  const head = m.linear(m.flatten(m.gap(y)), 10);
  return m.build([head, y]);
}

/**
 * A 3×3 stem (so that the block's input is channels-last in fp16 plans), then expand 1×1 + SiLU → depthwise + SiLU →
 * squeeze-excite → project 1×1 (+ residual when cin = cout): the generated 1×1 convolutions, the SE scale read in
 * place and the pooling summed by the depthwise kernel (session 8) at chosen sizes.
 */
export function seBlockNet(
  batch: number,
  cin: number,
  mid: number,
  cout: number,
  hw: number,
  seed = 9,
): Network {
  const m = new NetMaker(seed);
  const x = m.silu(m.conv(m.input("x", [batch, cin, hw, hw]), cin, 3, { bias: true }));
  let y = m.silu(m.conv(x, mid, 1, { bias: true }));
  y = m.silu(m.conv(y, mid, 3, { groups: mid, bias: true }));
  y = m.se(y, Math.max(1, Math.floor(mid / 4)));
  y = m.conv(y, cout, 1, { bias: true });
  if (cin === cout) y = m.add(y, x);
  return m.build([y]);
}

interface StageSpec {
  expand: number;
  kernel: number;
  stride: number;
  out: number;
  repeats: number;
}

const EFFNET_B0: readonly StageSpec[] = [
  { expand: 1, kernel: 3, stride: 1, out: 16, repeats: 1 },
  { expand: 6, kernel: 3, stride: 2, out: 24, repeats: 2 },
  { expand: 6, kernel: 5, stride: 2, out: 40, repeats: 2 },
  { expand: 6, kernel: 3, stride: 2, out: 80, repeats: 3 },
  { expand: 6, kernel: 5, stride: 1, out: 112, repeats: 3 },
  { expand: 6, kernel: 5, stride: 2, out: 192, repeats: 4 },
  { expand: 6, kernel: 3, stride: 1, out: 320, repeats: 1 },
];

/** timm efficientnet_b0 (eval mode: batch norm as affine scale layers, no drop path), random weights. */
export function efficientNetB0(batch: number, seed = 7, resolution = 224): Network {
  const m = new NetMaker(seed);
  const x = m.input("x", [batch, 3, resolution, resolution]);
  let y = m.silu(m.bn(m.conv(x, 32, 3, { stride: 2 })));
  let cin = 32;
  for (const st of EFFNET_B0) {
    for (let i = 0; i < st.repeats; i++) {
      const stride = i === 0 ? st.stride : 1;
      const mid = cin * st.expand;
      let h = y;
      if (st.expand !== 1) h = m.silu(m.bn(m.conv(h, mid, 1)));
      h = m.silu(m.bn(m.conv(h, mid, st.kernel, { stride, groups: mid })));
      h = m.se(h, Math.max(1, Math.floor(cin * 0.25)));
      h = m.bn(m.conv(h, st.out, 1));
      if (stride === 1 && cin === st.out) h = m.add(h, y);
      y = h;
      cin = st.out;
    }
  }
  y = m.silu(m.bn(m.conv(y, 1280, 1)));
  const logits = m.linear(m.flatten(m.gap(y)), 1000);
  return m.build([logits]);
}

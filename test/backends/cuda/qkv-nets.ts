// Attention over q, k and v sliced out of one qkv projection, the way timm's ViT blocks make them: the networks the
// strided-view tests (strided-views.test.ts, flash-attention.test.ts) plan.
import type { DType } from "../../../src/ir/dtype.js";
import { NetworkBuilder } from "../../../src/network/builder.js";
import type { Network } from "../../../src/network/network.js";

export interface QkvNet {
  readonly B: number;
  readonly T: number;
  readonly H: number;
  readonly D: number;
  readonly dtype: DType;
  readonly scale?: number;
  /** Step of the feature slice (2: every other feature, so the head dim is strided). */
  readonly featureStep?: number;
  /** Attention on [B·H, T, D] (the merged batch·heads axis has no single stride in the projection). */
  readonly mergedHeads?: boolean;
}

/** The input `x` [B, T, 3·H·D·step] of qkvNet. */
export const qkvInputShape = (c: QkvNet): number[] => [c.B, c.T, 3 * c.H * c.D * (c.featureStep ?? 1)];

/** The projection: tanh(x), an activation (strided views are made of arena tensors) with its values spread. */
function project(b: NetworkBuilder, c: QkvNet): string {
  const x = b.addInput("x", { dtype: c.dtype, shape: qkvInputShape(c) });
  return b.add({ type: "activation", inputs: [x], fn: { kind: "tanh" } });
}

/** x → tanh → [B, T, 3, H, D·step] → [3, B, H, T, D·step] → q, k, v slices → attention; and q, k, v's names. */
export function qkvNet(c: QkvNet): { net: Network; operands: [string, string, string] } {
  const F = c.D * (c.featureStep ?? 1);
  const b = new NetworkBuilder();
  const r = b.add({
    type: "shuffle",
    inputs: [project(b, c)],
    firstTranspose: null,
    reshape: [c.B, c.T, 3, c.H, F],
    secondTranspose: [2, 0, 3, 1, 4],
  });
  const [q, k, v] = [0, 1, 2].map((i) => {
    const s = b.add({
      type: "slice",
      inputs: [r],
      starts: [i, 0, 0, 0, 0],
      ends: [i + 1, c.B, c.H, c.T, F],
      steps: [1, 1, 1, 1, c.featureStep ?? 1],
    });
    const shape = c.mergedHeads ? [c.B * c.H, c.T, c.D] : [c.B, c.H, c.T, c.D];
    return b.add({
      type: "shuffle",
      inputs: [s],
      firstTranspose: null,
      reshape: shape,
      secondTranspose: null,
    });
  });
  const y = b.add({ type: "attention", inputs: [q, k, v], scale: c.scale ?? 0.3, causal: false });
  return { net: b.build([{ tensor: y, as: "y" }]), operands: [q, k, v] };
}

/** The projection alone: its output is what the projection tensor of qkvNet holds for the same x. */
export function qkvProjectionNet(c: QkvNet): Network {
  const b = new NetworkBuilder();
  return b.build([{ tensor: project(b, c), as: "qkv" }]);
}

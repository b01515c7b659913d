// Attention outputs stored in the order their transpose asks for (plan/attention-layout.ts): timm's
// [B, tokens, heads, dim] and nn.MultiheadAttention's sequence-first [tokens, B, heads, dim]; the transpose and
// the head merge after it are views, and the projection reads the attention output in place.
import { afterEach, describe, expect, it } from "vitest";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { NetworkBuilder } from "../../../src/network/builder.js";
import type { Network } from "../../../src/network/network.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { compareTensors } from "../../../src/util/compare.js";
import { emulateEngine, hasGxx } from "./emulate.js";

const [B, H, T, D] = [2, 3, 16, 16];

/** attention → transpose `perm` → merge heads → linear. */
function headMerge(perm: readonly number[]): Network {
  const b = new NetworkBuilder();
  const [q, k, v] = ["q", "k", "v"].map((n) => b.addInput(n, { dtype: "float32", shape: [B, H, T, D] }));
  const a = b.add({ type: "attention", inputs: [q, k, v], scale: 0.25, causal: false });
  const shape = perm.map((a) => [B, H, T, D][a]);
  const t = b.add({
    type: "shuffle",
    inputs: [a],
    firstTranspose: perm,
    reshape: null,
    secondTranspose: null,
  });
  const merged = b.add({
    type: "shuffle",
    inputs: [t],
    firstTranspose: null,
    reshape: [shape[0], shape[1], shape[2] * shape[3]],
    secondTranspose: null,
  });
  const w = b.constant(randomTensor(rng(2), "float32", [8, shape[2] * shape[3]], 0.3));
  const y = b.add({ type: "matmul", inputs: [merged, w], transposeA: false, transposeB: true });
  return b.build([{ tensor: y, as: "y" }]);
}

afterEach(() => {
  delete process.env.TORCHC_ATTENTION_LAYOUT;
});

describe("attention outputs in their reader's order", () => {
  for (const [name, perm] of [
    ["batch, tokens, heads (timm)", [0, 2, 1, 3]],
    ["tokens, batch, heads (nn.MultiheadAttention)", [2, 0, 1, 3]],
  ] as const) {
    it(`${name}: no copy between attention and the projection; same numbers`, () => {
      const net = headMerge(perm);
      for (const precision of ["fp32", "fp16"] as const) {
        const plan = planCudaEngine(net, { precision });
        // (an output copy may follow the projection)
        expect(plan.steps.map((s) => s.kind).slice(0, 2)).toEqual(["attention", "matmul"]);
        const attention = plan.steps[0];
        expect(attention.kind === "attention" && plan.infos.get(attention.layer.output)?.layout).toEqual(
          perm,
        );
        process.env.TORCHC_ATTENTION_LAYOUT = "0";
        expect(
          planCudaEngine(net, { precision })
            .steps.map((s) => s.kind)
            .slice(0, 3),
        ).toEqual(["attention", "element", "matmul"]);
        delete process.env.TORCHC_ATTENTION_LAYOUT;
      }
    });

    it.skipIf(!hasGxx())(`${name}: the emulated plan computes the reference`, () => {
      const net = headMerge(perm);
      const r = rng(5);
      const inputs = Object.fromEntries(net.inputs.map((n) => [n, randomTensor(r, "float32", [B, H, T, D])]));
      const [want] = runNetworkReference(net, inputs);
      const { outputs } = emulateEngine(net, inputs, { precision: "fp32" });
      expect(compareTensors(outputs[0], want).relative).toBeLessThan(1e-5);
    });
  }

  it("keeps row-major storage for a transpose that moves the feature axis", () => {
    const net = headMerge([0, 1, 3, 2]);
    const plan = planCudaEngine(net, { precision: "fp16" });
    const attention = plan.steps[0];
    expect(attention.kind === "attention" && plan.infos.get(attention.layer.output)?.layout).toEqual([
      0, 1, 2, 3,
    ]);
  });
});

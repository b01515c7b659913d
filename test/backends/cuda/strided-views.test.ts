// Strided q/k/v views (plan/strided-views.ts): which slice chains become views of the projection, and that the
// ones which cannot (no single stride per axis, a strided feature axis, a misaligned offset) keep their copies and
// still compute the reference's numbers.
import { describe, expect, it } from "vitest";
import { addressedElements, type TensorInfo } from "../../../src/backends/cuda/plan/tensors.js";
import { planCudaEngine } from "../../../src/backends/cuda/plan.js";
import { randomTensor, rng } from "../../../src/backends/cuda/testing/nets.js";
import { runNetworkReference } from "../../../src/network/reference/index.js";
import { compareTensors } from "../../../src/util/compare.js";
import { emulateEngine, hasGxx } from "./emulate.js";
import { type QkvNet, qkvNet } from "./qkv-nets.js";

type Qkv = Omit<QkvNet, "dtype">;

function check(c: Qkv, precision: "fp32" | "fp16") {
  const { net } = qkvNet({ ...c, dtype: "float32" });
  const plan = planCudaEngine(net, { precision });
  const attention = plan.steps.find((s) => s.kind === "attention");
  const operands = attention?.kind === "attention" ? attention.layer.inputs.slice(0, 3) : [];
  return {
    net,
    plan,
    strided: operands.map((t) => plan.infos.get(t)?.strides !== undefined),
    copies: plan.steps.filter((s) => s.kind === "element" && s.group.layers.some((l) => l.type === "slice"))
      .length,
  };
}

const BASE: Qkv = { B: 2, T: 10, H: 2, D: 16 };

describe("q, k and v as strided views of their projection", () => {
  it("the timm chain becomes three views in both precisions, at offsets 0, H·D and 2·H·D", () => {
    for (const precision of ["fp32", "fp16"] as const) {
      const { plan, strided, copies } = check(BASE, precision);
      expect(strided).toEqual([true, true, true]);
      expect(copies).toBe(0);
      const offsets = [...plan.infos.values()].filter((i) => i.shape.length === 4 && i.offset !== undefined);
      expect(new Set(offsets.map((i) => i.offset))).toEqual(new Set([0, 32, 64]));
    }
  });

  for (const [name, c] of [
    ["merged batch·heads read by attention (no single stride)", { ...BASE, mergedHeads: true }],
    ["every other feature (the head dim is not contiguous)", { ...BASE, featureStep: 2 }],
    ["offsets of 4 elements (not 16-byte aligned)", { ...BASE, H: 1, D: 4 }],
  ] as const) {
    it(`${name}: keeps the copies`, () => {
      const { strided, copies } = check(c, "fp16");
      expect(strided).toEqual([false, false, false]);
      expect(copies).toBeGreaterThan(0);
    });
  }

  it.skipIf(!hasGxx())("views and copies alike compute the reference's numbers (emulated plan)", () => {
    for (const c of [
      BASE,
      { ...BASE, mergedHeads: true },
      { ...BASE, featureStep: 2 },
      { ...BASE, H: 1, D: 4 },
    ]) {
      const { net } = qkvNet({ ...c, dtype: "float32" });
      const inputs = { x: randomTensor(rng(4), "float32", net.tensors.x.shape, 1.5) };
      const [want] = runNetworkReference(net, inputs);
      const { outputs } = emulateEngine(net, inputs, { precision: "fp32" });
      expect(compareTensors(outputs[0], want).relative, JSON.stringify(c)).toBeLessThan(1e-5);
    }
  });
});

describe("the elements a view addresses (what a kernel's index type must hold)", () => {
  const info = (shape: number[], extra: Partial<TensorInfo> = {}): TensorInfo => ({
    name: "t",
    shape,
    logicalDType: "float16",
    storage: "float16",
    layout: shape.map((_, i) => i),
    role: "activation",
    ...extra,
  });

  it("a dense tensor: its numel; a strided view: up to its last element in the root", () => {
    expect(addressedElements(info([2, 3, 4]))).toBe(24);
    // v of a [2, 4, 3·8] qkv projection: offset 16, rows 24 apart
    const v = info([2, 4, 8], { strides: [96, 24, 1], offset: 16, viewOf: "qkv" });
    expect(addressedElements(v)).toBe(16 + 96 + 3 * 24 + 7 + 1);
    expect(addressedElements(v)).toBe(2 * 4 * 24);
    expect(addressedElements(info([0, 4], { strides: [4, 1], offset: 8 }))).toBe(0);
  });
});

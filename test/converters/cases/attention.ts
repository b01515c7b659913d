import fc from "fast-check";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { B, broadcastableTo, F, NONE, opCase, T, tensor } from "../arbitraries.js";
import type { TensorSpec } from "../harness.js";
import { type CaseSpec, spec } from "./types.js";

const d = (max: number) => fc.integer({ min: 1, max });

function sdpaCase(op: OpName, flash: boolean) {
  return fc
    .record({
      batch: fc.constantFrom<number[]>([], [2], [1, 2]),
      hk: d(2),
      group: flash ? fc.constant(1) : d(2),
      L: d(4),
      S: d(4),
      E: d(4),
      Ev: d(3),
      mask: fc.constantFrom("none", "bool", "float", "causal"),
      scale: fc.option(fc.constantFrom(0.5, 1, 0.125), { nil: null }),
    })
    .chain((g) => {
      const gqa = g.group > 1 && g.batch.length > 0;
      const hq = gqa ? g.hk * g.group : g.hk;
      const lead = (h: number) => (g.batch.length > 0 ? [...g.batch.slice(0, -1), h] : []);
      const q = [...lead(hq), g.L, g.E];
      const k = [...lead(gqa ? g.hk : hq), g.S, g.E];
      const v = [...lead(gqa ? g.hk : hq), g.S, g.Ev];
      const maskShape = broadcastableTo([...lead(hq), g.L, g.S]);
      return fc
        .tuple(
          tensor(q),
          tensor(k),
          tensor(v),
          maskShape.chain((ms) => tensor(ms, g.mask === "bool" ? "bool" : "float32")),
        )
        .map(([qt, kt, vt, mt]) => {
          const tensors: Record<string, TensorSpec> = { q: qt, k: kt, v: vt };
          const hasMask = g.mask === "bool" || g.mask === "float";
          if (hasMask) tensors.m = mt;
          const mask: Arg = hasMask ? T("m") : NONE;
          const scale: Arg = g.scale === null ? NONE : F(g.scale);
          const args: Record<string, Arg> = flash
            ? {
                query: T("q"),
                key: T("k"),
                value: T("v"),
                dropout_p: F(0),
                is_causal: B(g.mask === "causal"),
                attn_mask: mask,
                scale,
              }
            : {
                query: T("q"),
                key: T("k"),
                value: T("v"),
                attn_mask: mask,
                dropout_p: F(0),
                is_causal: B(g.mask === "causal"),
                scale,
                enable_gqa: B(gqa),
              };
          return opCase(op, args, tensors, flash ? [1] : undefined);
        });
    });
}

export const ATTENTION_CASES: CaseSpec[] = [
  spec(
    "aten.scaled_dot_product_attention.default",
    "attention",
    sdpaCase("aten.scaled_dot_product_attention.default", false),
  ),
  spec(
    "aten._scaled_dot_product_flash_attention_for_cpu.default",
    "attention",
    sdpaCase("aten._scaled_dot_product_flash_attention_for_cpu.default", true),
  ),
];

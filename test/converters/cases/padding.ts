import fc from "fast-check";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { F, Is, NONE, opCase, S, shapeArb, T, tensor } from "../arbitraries.js";
import { type CaseSpec, spec } from "./types.js";

function padCase(
  op: OpName,
  mode: "constant" | "reflect" | "replicate" | "circular",
  dims: number | null,
  extra: (v: number) => Record<string, Arg>,
) {
  return fc
    .tuple(
      shapeArb(dims === null ? 1 : dims + 1, dims === null ? 4 : dims + 2, 4, 2),
      fc.double({ min: -2, max: 2, noNaN: true }).map(Math.fround),
    )
    .chain(([s, value]) => {
      const n = dims ?? Math.min(s.length, 3);
      const padded = s.slice(s.length - n).reverse();
      const amounts = padded.flatMap((size) => {
        const lo = mode === "constant" ? -Math.min(1, size - 1) : 0;
        const hi = mode === "reflect" ? size - 1 : mode === "circular" ? size : 3;
        const a = fc.integer({ min: lo, max: Math.min(hi, 3) });
        return [a, a];
      });
      return fc.tuple(tensor(s), ...amounts).map(([x, ...pad]) =>
        opCase(
          op,
          {
            self: T("x"),
            [op.includes("_pad") && !op.includes("constant") ? "padding" : "pad"]: Is(...(pad as number[])),
            ...extra(value),
          },
          { x },
        ),
      );
    });
}

export const PADDING_CASES: CaseSpec[] = [
  spec(
    "aten.constant_pad_nd.default",
    "padding",
    padCase("aten.constant_pad_nd.default", "constant", null, (v) => ({ value: F(v) })),
  ),
  ...(["constant", "reflect", "replicate", "circular"] as const).map((mode) =>
    spec(
      "aten.pad.default",
      "padding",
      padCase("aten.pad.default", mode, null, (v) => ({
        mode: S(mode),
        value: mode === "constant" ? F(v) : NONE,
      })),
    ),
  ),
  ...([1, 2, 3] as const).flatMap((n) => [
    spec(
      `aten.reflection_pad${n}d.default`,
      "padding",
      padCase(`aten.reflection_pad${n}d.default`, "reflect", n, () => ({})),
    ),
    spec(
      `aten.replication_pad${n}d.default`,
      "padding",
      padCase(`aten.replication_pad${n}d.default`, "replicate", n, () => ({})),
    ),
  ]),
];

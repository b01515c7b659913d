import fc from "fast-check";
import type { Arg } from "../../../src/ir/graph.js";
import type { OpName } from "../../../src/ops/index.js";
import { B, F, Is, NONE, opCase, T, tensor } from "../arbitraries.js";
import { type CaseSpec, spec } from "./types.js";

function resizeCase(op: OpName, linear: boolean, vec: boolean) {
  return (
    fc
      .tuple(
        fc.constantFrom([1, 2], [2], [1, 1]),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.constantFrom(0.5, 1, 1.5, 2, 3),
        fc.constantFrom(0.5, 1, 2, 2.5),
        fc.boolean(),
        fc.boolean(),
      )
      // PyTorch rejects empty outputs, so scales never shrink a dim to 0.
      .filter(([, h, w, sh, sw]) => Math.floor(h * sh) >= 1 && Math.floor(w * sw) >= 1)
      .chain(([lead, h, w, sh, sw, useScales, align]) => {
        const out = [Math.floor(h * sh), Math.floor(w * sw)];
        return tensor([...lead, h, w]).map((x) => {
          const alignArg: Record<string, Arg> = linear ? { align_corners: B(align) } : {};
          const args: Record<string, Arg> = vec
            ? {
                input: T("x"),
                output_size: useScales ? NONE : Is(...out),
                ...alignArg,
                scale_factors: useScales ? { kind: "floats", value: [sh, sw] } : NONE,
              }
            : {
                self: T("x"),
                output_size: Is(...out),
                ...alignArg,
                ...(useScales ? { scales_h: F(sh), scales_w: F(sw) } : {}),
              };
          return opCase(op, args, { x });
        });
      })
  );
}

export const RESIZE_CASES: CaseSpec[] = [
  spec(
    "aten.upsample_nearest2d.default",
    "resize-nearest",
    resizeCase("aten.upsample_nearest2d.default", false, false),
  ),
  spec(
    "aten.upsample_nearest2d.vec",
    "resize-nearest",
    resizeCase("aten.upsample_nearest2d.vec", false, true),
  ),
  spec(
    "aten.upsample_bilinear2d.default",
    "resize-linear",
    resizeCase("aten.upsample_bilinear2d.default", true, false),
  ),
  spec(
    "aten.upsample_bilinear2d.vec",
    "resize-linear",
    resizeCase("aten.upsample_bilinear2d.vec", true, true),
  ),
];

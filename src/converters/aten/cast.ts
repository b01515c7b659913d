import { cast } from "../impl/tensors.js";
import { type AnyCandidate, type ConverterSpec, converter, SUPPORTED } from "../types.js";
import { outType } from "./common.js";

/** Every `.to(...)` flavour: a cast to the result dtype (device and layout moves are no-ops in an engine). */
const toDtype: ConverterSpec<{ readonly self: string }> = {
  name: "cast",
  supports: () => SUPPORTED,
  convert: (node, a, net) => [cast(net.net, net.input(a.self), outType(node, net).dtype)],
};

export const CAST_CONVERTERS: readonly AnyCandidate[] = [
  converter("aten._to_copy.default", toDtype),
  converter("aten.to.dtype", toDtype),
  converter("aten.to.device", toDtype),
  converter("aten.to.other", toDtype),
  converter("aten.to.dtype_layout", toDtype),
  converter("aten.to.prim_dtype", toDtype),
  converter("aten.to.prim_Device", toDtype),
  converter("aten.type_as.default", toDtype),
];

import { TorchcError } from "../../errors.js";
import type { Node } from "../../ir/graph.js";
import { formatLocation } from "../../ir/graph.js";

/** LibTorch refused a call of a fallback segment (the C++ exception text went to stderr). */
export class TorchFallbackError extends TorchcError {
  constructor(
    readonly node: Node,
    readonly call: string,
    detail: string,
  ) {
    super(`LibTorch fallback: ${call} failed for ${formatLocation(node)}: ${detail}`, "torch.call");
    this.name = "TorchFallbackError";
  }
}

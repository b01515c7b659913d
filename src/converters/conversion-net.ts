import type { Graph } from "../ir/graph.js";
import { NetworkBuilder } from "../network/builder.js";
import { graphContext } from "./context.js";
import type { ConversionNet, ConvertContext, EngineCapabilities } from "./types.js";

/**
 * Binds graph values to network tensors while a segment is converted. A weight becomes a constant layer the
 * first time a converter asks for it; a value without a binding is a bug in the segment's inputs.
 */
export class SegmentConversion implements ConversionNet {
  readonly net = new NetworkBuilder();
  private readonly ctx: ConvertContext;
  private readonly bound = new Map<string, string>();

  constructor(
    readonly graph: Graph,
    caps?: EngineCapabilities,
  ) {
    this.ctx = graphContext(graph, caps);
  }

  get caps(): EngineCapabilities {
    return this.ctx.caps;
  }

  // Arrow properties, so converters may pass them around unbound (e.g. `ctx.typeOf` as a callback).
  readonly typeOf = (value: string) => this.ctx.typeOf(value);
  readonly constantOf = (value: string) => this.ctx.constantOf(value);
  readonly isUsed = (value: string): boolean => this.ctx.isUsed(value);

  bind(value: string, tensor: string): void {
    this.bound.set(value, tensor);
  }

  input(value: string): string {
    const t = this.bound.get(value);
    if (t !== undefined) return t;
    const w = this.graph.weights[value];
    if (w) {
      const c = this.net.constant(w.tensor, value);
      this.bound.set(value, c);
      return c;
    }
    throw new Error(`value '${value}' is neither an input of the segment nor produced inside it`);
  }
}

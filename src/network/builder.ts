import type { TensorType } from "../ir/graph.js";
import type { Tensor } from "../ir/tensor.js";
import { inferLayer, type Layer, LayerShapeError, type LayerSpec } from "./layers/index.js";
import type { Network } from "./network.js";

/** A network output: the tensor and the name the network should give it. */
export interface NetworkOutput {
  readonly tensor: string;
  readonly as?: string;
}

/**
 * Assembles a network, inferring each layer's output type as it is added (so a converter bug fails at the
 * layer that caused it). Generated tensor names contain '/', which graph value names never do, so the
 * names of network inputs and outputs cannot collide with them.
 */
export class NetworkBuilder {
  private readonly inputs: string[] = [];
  private readonly layers: Layer[] = [];
  private readonly tensors: Record<string, TensorType> = {};
  private readonly constants: Record<string, Tensor> = {};
  private readonly constantTensors = new Map<string, string>();
  private readonly layerNames = new Set<string>();
  private scope = "net";

  addInput(name: string, type: TensorType): string {
    if (name in this.tensors) throw new Error(`NetworkBuilder: tensor '${name}' defined twice`);
    this.tensors[name] = { dtype: type.dtype, shape: [...type.shape] };
    this.inputs.push(name);
    return name;
  }

  typeOf(tensor: string): TensorType {
    const t = this.tensors[tensor];
    if (!t) throw new Error(`NetworkBuilder: unknown tensor '${tensor}'`);
    return t;
  }

  has(tensor: string): boolean {
    return tensor in this.tensors;
  }

  /** Runs `fn` with layer names prefixed by `scope` (the aten node a converter is working on). */
  withScope<T>(scope: string, fn: () => T): T {
    const saved = this.scope;
    this.scope = scope.replaceAll("/", "_") || "net";
    try {
      return fn();
    } finally {
      this.scope = saved;
    }
  }

  /** Adds a layer and returns its output tensor. `hint` names the layer within the current scope. */
  add(spec: LayerSpec, hint?: string): string {
    return this.addNamed(spec, this.freshLayerName(hint ?? spec.type));
  }

  /**
   * Adds a copy of `layer` (a layer of another network, e.g. one being rewritten) reading `inputs`; it keeps
   * its name where that is still free. Returns its output tensor.
   */
  copy(layer: Layer, inputs: readonly string[]): string {
    const { name, output: _output, ...rest } = layer;
    // a layer without its name and output is its spec; TypeScript's rest of a union keeps only common keys
    return this.addNamed({ ...rest, inputs } as LayerSpec, this.freshName(name));
  }

  private addNamed(spec: LayerSpec, name: string): string {
    const layer = { ...spec, name, output: name } as Layer;
    for (const input of layer.inputs) {
      if (!(input in this.tensors)) throw new LayerShapeError(layer.type, `input '${input}' is not defined`);
    }
    this.tensors[name] = inferLayer(
      layer,
      layer.inputs.map((i) => this.tensors[i]),
    );
    this.layers.push(Object.freeze(layer));
    return name;
  }

  /**
   * A constant layer for `tensor`. With a `key` (a graph weight name) the same key always yields the same
   * tensor, so a weight read by several nodes is stored once.
   */
  constant(tensor: Tensor, key?: string): string {
    const existing = key === undefined ? undefined : this.constantTensors.get(key);
    if (existing) return existing;
    const weight = this.freshWeightKey(key ?? `${this.scope}/constant`);
    this.constants[weight] = tensor;
    const spec: LayerSpec = {
      type: "constant",
      inputs: [],
      weight,
      dtype: tensor.dtype,
      shape: tensor.shape,
    };
    const out = key === undefined ? this.add(spec) : this.withScope("weights", () => this.add(spec, key));
    if (key !== undefined) this.constantTensors.set(key, out);
    return out;
  }

  /**
   * Freezes the network. An output whose tensor a layer produced is renamed to `as`; an input, a tensor
   * already claimed by another output, or a constant gets an identity layer so each output has its own name.
   */
  build(outputs: readonly NetworkOutput[]): Network {
    const rename = new Map<string, string>();
    const outNames: string[] = [];
    const inputs = new Set(this.inputs);
    for (const o of outputs) {
      const target = o.as ?? o.tensor;
      if (outNames.includes(target)) throw new Error(`NetworkBuilder: output '${target}' named twice`);
      if (target === o.tensor && !rename.has(o.tensor)) {
        outNames.push(target);
        continue;
      }
      if (target !== o.tensor && target in this.tensors) {
        throw new Error(`NetworkBuilder: output name '${target}' is already a tensor of the network`);
      }
      const producer = this.layers.find((l) => l.output === o.tensor);
      if (producer && producer.type !== "constant" && !rename.has(o.tensor) && !inputs.has(o.tensor)) {
        rename.set(o.tensor, target);
      } else {
        const source = rename.get(o.tensor) ?? o.tensor;
        this.layers.push(
          Object.freeze({
            type: "identity",
            name: `${target}/identity`,
            inputs: [source],
            output: target,
          } as Layer),
        );
        this.tensors[target] = this.tensors[o.tensor];
      }
      outNames.push(target);
    }
    const r = (t: string) => rename.get(t) ?? t;
    const layers = this.layers.map((l) =>
      rename.size === 0
        ? l
        : (Object.freeze({ ...l, inputs: l.inputs.map(r), output: r(l.output) }) as Layer),
    );
    const tensors: Record<string, TensorType> = {};
    for (const [k, v] of Object.entries(this.tensors)) tensors[r(k)] = v;
    return Object.freeze({
      inputs: Object.freeze([...this.inputs]),
      outputs: Object.freeze(outNames),
      layers: Object.freeze(layers),
      tensors: Object.freeze(tensors),
      constants: Object.freeze({ ...this.constants }),
    });
  }

  private freshLayerName(hint: string): string {
    return this.freshName(`${this.scope}/${hint}`);
  }

  private freshName(base: string): string {
    let name = base;
    for (let i = 1; this.layerNames.has(name) || name in this.tensors; i++) name = `${base}_${i}`;
    this.layerNames.add(name);
    return name;
  }

  private freshWeightKey(base: string): string {
    let key = base;
    for (let i = 1; key in this.constants; i++) key = `${base}_${i}`;
    return key;
  }
}

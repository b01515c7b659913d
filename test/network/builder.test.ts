import { describe, expect, it } from "vitest";
import { NetworkBuilder } from "../../src/network/builder.js";
import { LayerShapeError } from "../../src/network/layers/base.js";
import { formatNetwork } from "../../src/network/printer.js";
import { runNetworkReference } from "../../src/network/reference/index.js";
import { checkNetwork } from "../../src/network/verify.js";
import { iota, nums, t } from "./helpers.js";

const f32 = (shape: number[]) => ({ dtype: "float32" as const, shape });

describe("NetworkBuilder", () => {
  it("infers each layer's type as it is added", () => {
    const net = new NetworkBuilder();
    const x = net.addInput("x", f32([2, 3, 8, 8]));
    const w = net.constant(iota([4, 3, 3, 3]), "conv.weight");
    const y = net.add({
      type: "convolution",
      inputs: [x, w],
      stride: [2, 2],
      padding: [1, 1],
      dilation: [1, 1],
      groups: 1,
    });
    expect(net.typeOf(y)).toEqual(f32([2, 4, 4, 4]));
    const p = net.add({ type: "adaptive_pooling", inputs: [y], mode: "avg", outputSize: [1, 1] });
    expect(net.typeOf(p).shape).toEqual([2, 4, 1, 1]);
  });

  it("rejects a layer whose inputs do not fit, naming the layer", () => {
    const net = new NetworkBuilder();
    const a = net.addInput("a", f32([2, 3]));
    const b = net.addInput("b", f32([4, 5]));
    expect(() => net.add({ type: "matmul", inputs: [a, b], transposeA: false, transposeB: false })).toThrow(
      LayerShapeError,
    );
    expect(() => net.add({ type: "matmul", inputs: [a, b], transposeA: false, transposeB: false })).toThrow(
      /inner dimensions differ/,
    );
  });

  it("stores a weight read twice once", () => {
    const net = new NetworkBuilder();
    const w1 = net.constant(iota([3]), "w");
    const w2 = net.constant(iota([3]), "w");
    expect(w1).toBe(w2);
    const network = net.build([{ tensor: w1, as: "out" }]);
    expect(Object.keys(network.constants)).toHaveLength(1);
  });

  it("names outputs after the graph values, adding identities only where needed", () => {
    const net = new NetworkBuilder();
    const x = net.addInput("x", f32([4]));
    const y = net.add({ type: "activation", inputs: [x], fn: { kind: "relu" } });
    const network = net.build([
      { tensor: y, as: "y" },
      { tensor: y, as: "y_again" },
      { tensor: x, as: "x_out" },
    ]);
    expect(network.outputs).toEqual(["y", "y_again", "x_out"]);
    expect(checkNetwork(network)).toEqual([]);
    expect(network.layers.map((l) => l.type)).toEqual(["activation", "identity", "identity"]);
    const [a, b, c] = runNetworkReference(network, [t([4], [-1, 2, -3, 4])]);
    expect(nums(a)).toEqual([0, 2, 0, 4]);
    expect(nums(b)).toEqual([0, 2, 0, 4]);
    expect(nums(c)).toEqual([-1, 2, -3, 4]);
  });

  it("prints one layer a line", () => {
    const net = new NetworkBuilder();
    const x = net.addInput("x", f32([2, 3]));
    const y = net.withScope("softmax_1", () =>
      net.add({ type: "softmax", inputs: [x], axis: 1, log: false }),
    );
    const text = formatNetwork(net.build([{ tensor: y, as: "out" }]));
    expect(text).toContain("%out: float32[2, 3] = softmax(%x) axis=1 log=false");
  });

  it("checks input types when running", () => {
    const net = new NetworkBuilder();
    const x = net.addInput("x", f32([2]));
    const network = net.build([{ tensor: x, as: "y" }]);
    expect(() => runNetworkReference(network, [iota([3])])).toThrow(/expected float32\[2\]/);
  });
});

describe("NetworkBuilder.copy", () => {
  it("adds another network's layer under its own name, reading the tensors it is given", () => {
    const a = new NetworkBuilder();
    const x = a.addInput("x", f32([2, 3]));
    const relu = a.withScope("block", () => a.add({ type: "activation", inputs: [x], fn: { kind: "relu" } }));
    const source = a.build([{ tensor: relu }]).layers[0];
    const b = new NetworkBuilder();
    const z = b.addInput("z", f32([2, 3]));
    const out = b.copy(source, [z]);
    expect(out).toBe("block/activation");
    expect(b.copy(source, [z])).toBe("block/activation_1");
    const net = b.build([{ tensor: out, as: "y" }]);
    expect(net.layers[0]).toMatchObject({ type: "activation", name: "block/activation", inputs: ["z"] });
  });

  it("shape-checks a copy like any added layer", () => {
    const a = new NetworkBuilder();
    const p = a.addInput("p", f32([2, 3]));
    const sum = a.add({ type: "elementwise", op: "add", inputs: [p, p] });
    const layer = a.build([{ tensor: sum }]).layers[0];
    const b = new NetworkBuilder();
    const u = b.addInput("u", f32([2, 3]));
    const v = b.addInput("v", f32([4]));
    expect(() => b.copy(layer, [u, v])).toThrow(LayerShapeError);
  });
});
